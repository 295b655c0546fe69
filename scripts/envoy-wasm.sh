#!/usr/bin/env bash
# Run envoy/envoy-wasm.yaml: build the proxy-wasm filter, bundle the configuration directory
# (`claimgate bundle`, checked as serve would load it), fill both into the Envoy config and
# start Envoy on it. Arguments are `claimgate bundle`'s (`--config DIR`, `--dev`); the rendered
# Envoy config is written to $CLAIMGATE_ENVOY_OUT (default: a temporary file).
set -euo pipefail
cd "$(dirname "$0")/.."

wasm="$(scripts/build-wasm.sh | tail -n 1)"
bundle="$(mktemp)"
cargo run -q -- bundle --out "$bundle" "$@"
out="${CLAIMGATE_ENVOY_OUT:-$(mktemp --suffix=.yaml)}"
# A JSON string is a YAML double-quoted scalar, so the bundle goes in as one.
python3 - "$wasm" "$bundle" "$out" <<'PY'
import json, sys
wasm, bundle, out = sys.argv[1:]
text = open("envoy/envoy-wasm.yaml").read()
text = text.replace("CLAIMGATE_WASM", json.dumps(wasm))
text = text.replace("CLAIMGATE_BUNDLE", json.dumps(open(bundle).read()))
open(out, "w").write(text)
PY
rm -f "$bundle"
echo "envoy config: $out" >&2
exec "${CLAIMGATE_TEST_ENVOY:-envoy}" -c "$out" --disable-hot-restart

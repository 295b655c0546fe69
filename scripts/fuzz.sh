#!/usr/bin/env bash
# Coverage-guided fuzzing of claimgate (cargo-fuzz and libFuzzer, on nightly).
#
#   scripts/fuzz.sh [--smoke] [--seconds N] [TARGET...]
#
# Builds the targets once, then runs each for N seconds, one at a time: 600 by default, 20
# with --smoke (what scripts/test.sh runs). Exits non-zero if any target finds a crash, a
# timeout or an out-of-memory input, and prints the input's path. Each target starts from
# its committed seeds (fuzz/corpus/TARGET, read only) and keeps what it learns in
# fuzz/work/TARGET (not committed); logs go to fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(check_codec token config_loader glob normalize)

usage() {
  echo "usage: scripts/fuzz.sh [--smoke] [--seconds N] [TARGET...]  (targets: ${ALL[*]})"
}

smoke=0
seconds=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --seconds) seconds="${2:?--seconds needs a number}"; shift ;;
    --seconds=*) seconds="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *)
      if [[ " ${ALL[*]} " != *" $1 "* ]]; then
        echo "error: no fuzz target named $1" >&2
        usage >&2
        exit 2
      fi
      targets+=("$1")
      ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
if [ -z "${seconds}" ]; then
  if [ "${smoke}" = 1 ]; then seconds=20; else seconds=600; fi
fi
if ! [[ "${seconds}" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: --seconds takes a positive whole number" >&2
  exit 2
fi

# rustup does not install toolchains on demand here (RUSTUP_AUTO_INSTALL=0 may be set).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly toolchain (libFuzzer's instrumentation needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Without AddressSanitizer: claimgate forbids unsafe code, so ASan would mostly instrument the
# C of aws-lc-sys (built and tested upstream) at a large cost in build time, while libFuzzer
# finds panics, timeouts and excess memory without it. Optimized, with debug assertions and
# overflow checks; README.md ("Fuzzing") has the measurements. fuzz/ is its own workspace,
# so its build goes to fuzz/target and leaves the main target directory alone.
BUILD=(--sanitizer none --release --debug-assertions --target-dir fuzz/target)

start=$(date +%s)
for t in "${targets[@]}"; do
  cargo +nightly fuzz build "${BUILD[@]}" "$t"
done
echo "fuzz build: $(( $(date +%s) - start ))s"

mkdir -p fuzz/logs
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  log="fuzz/logs/$t.log"
  echo "fuzzing $t for ${seconds}s (log: $log)"
  began=$(date +%s)
  # -timeout: one input taking this long is a finding (the matchers and parsers are linear;
  # a check of the largest input takes milliseconds). The first corpus directory receives
  # new inputs; the committed seeds are only read.
  if cargo +nightly fuzz run "${BUILD[@]}" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed+=("$t")
    artifact=$(grep -oE "(Test unit|artifact) written to [^ ]+" "$log" | tail -1 | awk '{print $NF}' || true)
    echo "error: $t failed; input: ${artifact:-see $log}" >&2
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | head -5 >&2 || true
  fi
  execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1 || true)
  summary+=("$(printf '%-14s %-6s %6ss %12s execs' "$t" "$result" "$(( $(date +%s) - began ))" "${execs:-?}")")
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi

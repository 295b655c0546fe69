#!/usr/bin/env bash
# Build the proxy-wasm filter (envoy/filter) for wasm32-wasip1 and print the .wasm file's path
# as the last line. Installs the target with rustup when it is missing. The wasm build is
# always optimized: it is small, and an unoptimized filter is many times slower in Envoy.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    rustup target add "$target" >&2
fi
cargo build -p claimgate-filter --target "$target" --release >&2
echo "$PWD/target/$target/release/claimgate_filter.wasm"

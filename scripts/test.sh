#!/usr/bin/env bash
# Runs the whole test suite: builds the component (.wasm), then runs the unit
# tests of every crate and the integration tests (real .wasm in banatie-host,
# against a Garage S3 server and a provider double, all on 127.0.0.1).
# Needs: the wasm32-wasip2 target, Garage 2.5.0 and redis-server (`.ci/run`
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
# The wasmCloud flavour first (kept under its own name), then the Spin one.
cargo build --target wasm32-wasip2 --release -p banatie-live --features wasmcloud
cp target/wasm32-wasip2/release/banatie_live.wasm target/wasm32-wasip2/release/banatie_live_wasmcloud.wasm
cargo build --target wasm32-wasip2 --release -p banatie-live
cargo test --workspace --no-fail-fast "$@"

#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs
# (scripts/setup.sh; skipped when present), builds the component in both
# flavours, then runs the unit tests of every crate and the integration tests
# (the real .wasm in banatie-host against Garage, Redis, provider doubles,
# headless Chromium and schemathesis, all on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# The wasmCloud flavour first (kept under its own name), then the Spin one.
cargo build --target wasm32-wasip2 --release -p banatie-live --features wasmcloud
cp target/wasm32-wasip2/release/banatie_live.wasm target/wasm32-wasip2/release/banatie_live_wasmcloud.wasm
cargo build --target wasm32-wasip2 --release -p banatie-live
cargo test --workspace --no-fail-fast "$@"

#!/usr/bin/env bash
# Runs the whole test suite: builds the component (.wasm), then runs the unit
# tests of every crate and the integration tests (real .wasm in banatie-host,
# against a Garage S3 server and a provider double, all on 127.0.0.1).
# Needs: the wasm32-wasip2 target and Garage 2.5.0 (`.ci/run` installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --target wasm32-wasip2 --release -p banatie-live
cargo test --workspace --no-fail-fast "$@"

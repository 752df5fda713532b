#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs
# (scripts/setup.sh; skipped when present), builds the component in its three
# flavours (Spin, wasmCloud 1.x, wasmCloud 2), then runs the unit tests of
# every crate and the integration tests (the real .wasm in banatie-host and in
# the real `spin up`, against Garage, Redis, provider doubles, headless
# Chromium and schemathesis, all on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# The wasmCloud flavours first (kept under their own names), then the Spin one.
for flavour in wasmcloud wasmcloud2; do
  cargo build --target wasm32-wasip2 --release -p banatie-live --features "$flavour"
  cp target/wasm32-wasip2/release/banatie_live.wasm "target/wasm32-wasip2/release/banatie_live_$flavour.wasm"
done
cargo build --target wasm32-wasip2 --release -p banatie-live
# The fuzz targets live outside the workspace; they must keep compiling
# against banatie-core (CI runs them, `cargo test` would not see them).
cargo check --quiet --manifest-path fuzz/Cargo.toml
# The operators' CLI, which the integration tests run (target/debug/banatie).
cargo build -p banatie-cli
# README's first command (`cargo run -p banatie-host -- up --dev --build`) is
# run, as written, by a test (host_cli::readmes_first_command_…): its build is
# made here, alone, not under the suite's load (it took over 9 minutes there).
cargo build -p banatie-host
cargo test --workspace --no-fail-fast "$@"

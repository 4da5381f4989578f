#!/usr/bin/env bash
# Installs what Arca's tests need (on Debian, as root when something is missing; the S3 test server with
# cargo) and runs every test.
#   scripts/test.sh          all tiers: unit tests, storage conformance, API and cluster suites
#   scripts/test.sh --fast   unit tests only (seconds; for every commit)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/arca-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if have apt-get; then
    [ -n "${ARCA_APT_UPDATED:-}" ] || { apt-get update -qq; export ARCA_APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    echo "missing $*: install it with your package manager" >&2
    exit 1
  fi
}

have cc || apt_install build-essential
have curl || apt_install curl ca-certificates
if ! have cargo; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! have cargo; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95
  . "$HOME/.cargo/env"
fi
cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked

if [ "${1:-}" = "--fast" ]; then
  exec cargo nextest run --workspace --profile ci --locked -E 'not package(arca-tests)'
fi

# The S3 suite (tests/tests/archive_s3.rs) runs a real S3-compatible server, s3s-fs from crates.io
# (0.14.1: later releases need Rust 1.96), built once into cargo's bin directory; the harness finds it
# through ARCA_S3_SERVER. Set ARCA_S3_SERVER to use another build of it.
S3S_VERSION=0.14.1
if [ -z "${ARCA_S3_SERVER:-}" ]; then
  cargo_root="${CARGO_HOME:-$HOME/.cargo}"
  if ! "$cargo_root/bin/s3s-fs" --version 2>/dev/null | grep -qx "s3s-fs $S3S_VERSION"; then
    env -u CARGO_TARGET_DIR cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked \
      --root "$cargo_root"
  fi
  export ARCA_S3_SERVER="$cargo_root/bin/s3s-fs"
fi

# Formatting is part of the build: a diff fails the run (rustfmt comes with the toolchain).
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
fi

# The suites start real `arca` processes: build the binary together with the tests.
cargo build --workspace --bins --tests --locked
cargo nextest run --workspace --profile ci --locked

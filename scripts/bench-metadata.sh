#!/usr/bin/env bash
# Metadata write benchmark (release build): one node versus three processes on this machine.
#   scripts/bench-metadata.sh [--writes N] [--concurrency C]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/arca-target}"
cargo build --release --locked -p arca-node -p arca-tests --bins
exec "$CARGO_TARGET_DIR/release/arca-bench-metadata" "$@"

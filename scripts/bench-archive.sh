#!/usr/bin/env bash
# Archive benchmark (release build) on the public corpus: Arca import (msg/s, MB/s, durable), stored pack
# and index bytes, objects written, GETs per fetch and search p50/p99, against notmuch and mu indexing and
# searching the same messages as a Maildir, with every target marked PASS or MISS.
#   scripts/bench-archive.sh [--shared DIR] [--rounds N] [--peer-timeout SECS] [--limit N] [--no-peers]
#   scripts/bench-archive.sh --stores 8 [--no-peers]   1 store against 8 stores holding the corpus (cross-store
#   dedupe cost: import, re-import and search of both in one table, with ratios)
# Needs python3 (corpus unpacker); installs notmuch, maildir-utils (mu) and strace with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/arca-target}"
missing=()
command -v notmuch >/dev/null || missing+=(notmuch)
command -v mu >/dev/null || missing+=(maildir-utils)
command -v strace >/dev/null || missing+=(strace)
if ((${#missing[@]})); then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
fi
cargo build --release --locked -p arca-node -p arca-tests --bins
exec "$CARGO_TARGET_DIR/release/arca-bench-archive" "$@"

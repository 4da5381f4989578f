#!/usr/bin/env bash
# Cluster benchmark (release build) on real `arca` processes started by the test harness: search p50/p99
# over 1 shard on 1 node, 16 shards on 1 node and 16 shards on 3 nodes (with the p99 ratio against one
# shard); import msg/s and CPU per message on one node and through 3 nodes; failover times after kill -9
# of the node serving the write store (lease 2000 ms); and the time of `arca shard move` of a store of
# 100,000 tiny messages. One table, every target marked PASS or MISS. Messages are small synthetic mails.
# Peer comparisons (notmuch, mu) are in scripts/bench-archive.sh; this table has none.
#   scripts/bench-cluster.sh [--searches N] [--store-messages N] [--import-messages N] [--kills N]
#                            [--move-messages N] [--only search,import,failover,move]
# Defaults (200 searches, 50 messages per store, 20,000 imported, 3 kills, 100,000 moved) take a few
# minutes on 2 cores; e.g. --kills 10 --move-messages 1000000 scales up.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/arca-target}"
cargo build --release --locked -p arca-node -p arca-tests --bins
exec "$CARGO_TARGET_DIR/release/arca-bench-cluster" "$@"

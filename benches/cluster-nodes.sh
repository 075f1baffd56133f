#!/usr/bin/env bash
# The single node (WAL) against one node and three nodes in cluster mode
# with every role, on one tansu broker, alternating, 3 rounds of 15 s
# (docs/performance/README.md, "Cluster mode: one node and three").
# Each run measures what is acknowledged, the index's rate and lag, how
# soon everything acknowledged is searchable, and CPU per node. Run from
# the repository root after `cargo build --release -p logway -p
# logway-bench`; the tansu binary is the one ./test.sh installs.
# Output: $OUT/{wal,one,three}-N.log.
set -euo pipefail
B="${CARGO_TARGET_DIR:-target}/release/ingest-bench"
OUT="${OUT:-/tmp/cluster-nodes}"
SECONDS_EACH="${SECONDS_EACH:-15}"
mkdir -p "$OUT"
. "$(dirname "$0")/tansu.sh"
for r in 1 2 3; do
  "$B" --seconds "$SECONDS_EACH" > "$OUT/wal-$r.log" 2>&1
  for n in one three; do
    nodes=1; [ "$n" = three ] && nodes=3
    broker "$OUT/broker"
    "$B" --seconds "$SECONDS_EACH" --config benches/configs/cluster-all.toml --nodes "$nodes" \
      --cpu-of "$BROKER" > "$OUT/$n-$r.log" 2>&1 || echo "$n-$r failed: see $OUT/$n-$r.log"
    kill -9 "$BROKER"; wait "$BROKER" 2>/dev/null || true
  done
done
grep -H -E "accepted|ack latency|indexed|index lag|searchable|CPU|RSS" "$OUT"/*.log

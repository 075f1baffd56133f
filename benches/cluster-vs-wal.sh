#!/usr/bin/env bash
# The single node (WAL) against cluster mode's gateway role on one tansu
# broker, alternating, 3 rounds of 15 s (docs/performance/README.md,
# "Cluster mode's gateway role"). Run from the repository root after
# `cargo build --release -p logway -p logway-bench`; the tansu binary is
# the one ./test.sh installs. Output: $OUT/wal-N.log, $OUT/kafka-N.log.
set -euo pipefail
B="${CARGO_TARGET_DIR:-target}/release/ingest-bench"
OUT="${OUT:-/tmp/cluster-vs-wal}"
mkdir -p "$OUT"
. "$(dirname "$0")/tansu.sh"
for r in 1 2 3; do
  "$B" --seconds 15 --ack-only > "$OUT/wal-$r.log" 2>&1
  broker "$OUT/broker"
  "$B" --seconds 15 --ack-only --config benches/configs/cluster.toml --cpu-of "$BROKER" \
    > "$OUT/kafka-$r.log" 2>&1
  kill -9 "$BROKER"; wait "$BROKER" 2>/dev/null || true
done
grep -H -E "accepted|ack latency|CPU" "$OUT"/*.log

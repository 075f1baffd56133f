#!/usr/bin/env bash
# The single node (WAL) against cluster mode's gateway role on one tansu
# broker, alternating, 3 rounds of 15 s (docs/performance/README.md,
# "Cluster mode's gateway role"). Run from the repository root after
# `cargo build --release -p logway -p logway-bench`; the tansu binary is
# the one ./test.sh installs. Output: $OUT/wal-N.log, $OUT/kafka-N.log.
set -euo pipefail
B="${CARGO_TARGET_DIR:-target}/release/ingest-bench"
T="${TANSU:-${TEST_CLIENTS_DIR:-$HOME/.cache/logway-clients}/tansu/bin/tansu}"
OUT="${OUT:-/tmp/cluster-vs-wal}"
mkdir -p "$OUT"
for r in 1 2 3; do
  "$B" --seconds 15 --ack-only > "$OUT/wal-$r.log" 2>&1
  rm -rf "$OUT/broker" && mkdir -p "$OUT/broker"
  (cd "$OUT/broker" && RUST_LOG=warn exec "$T" broker \
    --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
    --storage-engine sqlite://tansu.db > broker.log 2>&1) &
  broker=$!
  sleep 1
  "$B" --seconds 15 --ack-only --config benches/configs/cluster.toml --cpu-of "$broker" \
    > "$OUT/kafka-$r.log" 2>&1
  kill -9 "$broker"; wait "$broker" 2>/dev/null || true
done
grep -H -E "accepted|ack latency|CPU" "$OUT"/*.log

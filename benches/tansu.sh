# Sourced by the cluster benchmarks: `broker DIR` starts a fresh tansu
# broker (the binary ./test.sh installs, or $TANSU) on 127.0.0.1:19092 with
# its data in DIR and sets BROKER to its pid.
T="${TANSU:-${TEST_CLIENTS_DIR:-$HOME/.cache/logway-clients}/tansu/bin/tansu}"
broker() {
  rm -rf "$1" && mkdir -p "$1"
  (cd "$1" && RUST_LOG=warn exec "$T" broker \
    --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 \
    --storage-engine sqlite://tansu.db > broker.log 2>&1) &
  BROKER=$!
  sleep 1
}

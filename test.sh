#!/usr/bin/env bash
# The whole test suite, from a fresh machine with nothing but rustup:
# checks (and, as root, installs) the real clients the tests drive, then
# runs every test. CI runs this too (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
# The example WASM filters (filters/) are built for wasm32-wasip2:
# rust-toolchain.toml names the target; older rustup versions need it added.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# Real clients the tests drive: curl (HTTPS), util-linux logger and rsyslog
# (syslog, rsyslog forwarding with omfwd, omelasticsearch), zstd and jq
# (archived objects), python3 (the docs and dependency checks, Python
# clients), Debian's python3-elasticsearch 7.x, node and npm, chromium,
# Prometheus' Alertmanager (the alert rules' receiver).
need=()
command -v curl >/dev/null || need+=(curl)
command -v logger >/dev/null || need+=(bsdutils)
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
[ -f /usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so ] || need+=(rsyslog-elasticsearch)
command -v zstd >/dev/null || need+=(zstd)
command -v jq >/dev/null || need+=(jq)
command -v python3 >/dev/null || need+=(python3)
/usr/bin/python3 -c "import elasticsearch" 2>/dev/null || need+=(python3-elasticsearch)
# syslog-ng's libraries (syslog-ng itself is unpacked below).
for lib in libivykis0 libnet1 libwrap0 libpcre3 libcurl4; do
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
# Headless Chromium for the web UI's browser test (driven by Playwright
# for Python with this system browser; nothing else is downloaded).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
# Prometheus scrapes the tenants' StatsD series in the tests.
[ -x /usr/bin/prometheus ] || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "missing test clients: ${need[*]} (install these Debian packages, or run as root)" >&2
    exit 1
  fi
fi
# PyPI and npm clients, in a folder outside the clone that later runs
# reuse (reinstalled when tests/clients/ asks for other versions). Not a
# LOGWAY_ variable: those override the gateway's config.
export TEST_CLIENTS_DIR="${TEST_CLIENTS_DIR:-$HOME/.cache/logway-clients}"
clients="$TEST_CLIENTS_DIR"
mkdir -p "$clients/node"
stamp="$(cat tests/clients/requirements.txt tests/clients/package.json | sha256sum | cut -c1-16)"
if [ "$(cat "$clients/stamp" 2>/dev/null)" != "$stamp" ]; then
  if ! python3 -m venv --clear "$clients/venv"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq python3-venv && python3 -m venv --clear "$clients/venv"
    else
      echo "python3 -m venv failed: install python3-venv" >&2; exit 1
    fi
  fi
  "$clients/venv/bin/pip" install -q --cache-dir "$clients/pip-cache" -r tests/clients/requirements.txt
  cp tests/clients/package.json "$clients/node/package.json"
  (cd "$clients/node" && npm install --silent --no-audit --no-fund --cache "$clients/npm-cache")
  echo "$stamp" > "$clients/stamp"
fi
# syslog-ng conflicts with rsyslog as a Debian package: its packages are
# unpacked into a private prefix instead, for the elasticsearch-http() test.
if [ ! -x "$clients/syslog-ng/usr/sbin/syslog-ng" ]; then
  mkdir -p "$clients/debs"
  pkgs=(syslog-ng-core syslog-ng-mod-http syslog-ng-scl)
  (cd "$clients/debs" && { apt-get download "${pkgs[@]}" 2>/dev/null \
    || { apt-get update -qq && apt-get download "${pkgs[@]}"; }; })
  for deb in "$clients"/debs/syslog-ng-*.deb; do dpkg -x "$deb" "$clients/syslog-ng"; done
fi

# tansu, a Kafka-protocol broker in Rust, for the cluster-mode tests
# (docs/cluster.md): built once from crates.io (7.5 minutes on 2 cores)
# into the clients folder; its 1.5 GB of build files are removed after.
tansu_version=0.6.0
if [ "$("$clients/tansu/bin/tansu" --version 2>/dev/null)" != "tansu $tansu_version" ]; then
  CARGO_TARGET_DIR="$clients/tansu-target" cargo install --locked --quiet \
    "tansu@$tansu_version" --features libsql --root "$clients/tansu"
  rm -rf "$clients/tansu-target"
fi

# The Loghub test reads real logs from ../shared/data/loghub (beside the clone).
if [ ! -d ../shared/data/loghub ]; then
  echo "../shared/data/loghub is missing: the Loghub test needs it" >&2
  exit 1
fi

# The layout's rules and the docs' links, before the long part.
.ci/check-deps
.ci/check-links

cargo test --workspace --locked "$@"

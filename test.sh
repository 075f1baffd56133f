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
# (syslog, rsyslog forwarding with omfwd), zstd and jq (archived objects),
# python3 (the docs and dependency checks).
need=()
command -v curl >/dev/null || need+=(curl)
command -v logger >/dev/null || need+=(bsdutils)
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
command -v zstd >/dev/null || need+=(zstd)
command -v jq >/dev/null || need+=(jq)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "missing test clients: ${need[*]} (install these Debian packages, or run as root)" >&2
    exit 1
  fi
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

#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs to build and test, only those missing.
# Idempotent and quiet; fails loudly (non-zero exit, message on stderr) when apt-get fails.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  dpkg-dev  # dpkg-shlibdeps and dpkg-deb, for the .deb (packaging/, tests/packaging)
  libboost-context-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev librapidcheck-dev
  libbenchmark-dev
  libcli11-dev
  libyaml-cpp-dev
  nlohmann-json3-dev
  libcpp-httplib-dev  # the admin HTTP API (runtime/admin_server.*)
  debootstrap  # a clean Debian 12 root to install the .deb into (tests/packaging)
  ccache ninja-build
  # Real Kafka clients for the integration tests (tests/integration).
  kcat python3-kafka python3-confluent-kafka librdkafka-dev
  clojure  # a real EDN reader, for the history export test (tests/checkers)
  # Peers and plots for ci/bench.sh (bench/peers): started on free loopback ports, never as services.
  redis-server nats-server libhiredis-dev libnats-dev gnuplot-nox
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or install them yourself)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >/tmp/sluice-apt-update.log 2>&1; then
  cat /tmp/sluice-apt-update.log >&2
  echo "install-deps: apt-get update failed" >&2
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/sluice-apt-install.log 2>&1; then
  tail -n 50 /tmp/sluice-apt-install.log >&2
  echo "install-deps: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi

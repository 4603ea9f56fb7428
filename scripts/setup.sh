#!/usr/bin/env bash
# Installs everything pnp-ovss needs to build and test on Debian 12 (run as root or with
# sudo). Safe to run again: packages already present are left as they are.
set -euo pipefail

packages=(
  cmake g++ make ccache pkg-config
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer with ASan and UBSan
  libtorch-dev          # tensors and autograd (libtorch 1.13, CPU)
  libopenblas0-pthread  # fast BLAS for libtorch: without it matrix products are ~80x slower
  nlohmann-json3-dev libcli11-dev libstb-dev
  libgtest-dev libbenchmark-dev
  libcurl4-openssl-dev  # Hugging Face hub downloads
  pybind11-dev python3-dev python3-numpy  # the Python module and its tests
  python3-venv python3-pip python3-setuptools python3-wheel  # `pip install .` of the module
  libopenmpi-dev openmpi-bin              # `mpirun pnp-ovss eval` (optional at build time)
  libcpp-httplib-dev                      # `pnp-ovss serve` (optional at build time)
  chromium chromium-driver python3-selenium  # the server's page tested in a headless browser
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "setup: done"

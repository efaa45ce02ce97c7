#!/usr/bin/env bash
# Install everything satdelta needs on a fresh Debian 12 / Python 3.11 machine, then run a job.
#   bash scripts/setup.sh demo   # install, then run the main job on the embedded sample data
#   bash scripts/setup.sh test   # install, then run the whole test suite
# The virtual environment lives in .venv/ beside this checkout; system packages (Qt/OpenGL
# libraries for napari under Xvfb, GDAL's validators, Chromium and poppler for the evidence
# package's PDF) come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-demo}"

APT_PACKAGES=(
  xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-shape0
  libxcb-image0 libfontconfig1 libdbus-1-3 python3-gdal gdal-bin python3-venv python3-pip time
  chromium poppler-utils postgresql postgresql-15-postgis-3
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # another apt (e.g. unattended-upgrades) may hold the lock: wait for it up to 10 minutes
  APT_WAIT=(-o DPkg::Lock::Timeout=600 -o Acquire::Lock::Timeout=600)
  $SUDO apt-get "${APT_WAIT[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${APT_WAIT[@]}" install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[napari,qt,batch,postgresql,test,dev]"

case "$job" in
  demo)
    .venv/bin/satdelta demo -o sample_output
    ;;
  test)
    shift || true
    .venv/bin/python -m pytest "$@"
    ;;
  install)
    echo "setup: satdelta is installed in .venv/: run .venv/bin/satdelta, or first" \
      "'source .venv/bin/activate' to type a bare satdelta"
    ;;
  *)
    echo "setup: unknown job '$job' (expected demo, test or install)" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Installs what the simulator and the tests need on a fresh Debian machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the PC/SC daemon with the vpcd virtual reader driver, a real MQTT broker,
# a virtual X server for the UI, a CJK font, the headers pyscard builds against, and the speech
# engine (espeak-ng; aplay from alsa-utils plays it; sox checks the simulator's WAV files); for
# the fleet side, promtool (prometheus) to test the alert rules, chromium for the dashboard's
# browser test, and PostgreSQL (initdb, pg_ctl: the fleet tests and bench start throwaway
# clusters of their own; the system cluster the package creates is not used).
DEB_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig mosquitto xvfb xauth fonts-wqy-microhei
              libmtdev1 libgl1 libegl1 libgles2 build-essential python3-venv
              espeak-ng alsa-utils sox
              prometheus chromium postgresql)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian pcscd package may start a system pcscd; the simulator and tests start their own
# with the vpcd driver, so a system one is stopped to free the fixed socket path.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pcscd.socket 2>/dev/null; then
  systemctl stop pcscd.socket pcscd.service >/dev/null 2>&1 || true
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
# The co-processor firmware's MicroPython stubs, in a directory of their own: in site-packages
# their time.pyi, select.pyi and __builtins__.pyi would shadow CPython's for every other check.
stubs=.venv/micropython-stubs
if [ ! -f "$stubs/.installed" ]; then
  echo "setup: installing the MicroPython stubs for the co-processor firmware"
  .venv/bin/pip install -q --upgrade --no-deps --target "$stubs" \
    "micropython-rp2-rpi-pico-stubs==1.29.0.post1" "micropython-stdlib-stubs==1.29.0.post2"
  touch "$stubs/.installed"
fi

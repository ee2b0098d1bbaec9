#!/usr/bin/env bash
# Installs, idempotently and only what is missing, everything streamguard needs to build,
# run its demo and run its test suite on Debian 12 (as root, or with sudo available).
#
#   scripts/setup.sh            system packages + Python tools for the reference checks
#   SETUP_SKIP_PYTHON=1 ...     no Python reference tools (ONNX Runtime is still fetched)
#
# Safe to run again: it checks what is there first and installs nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

# --- System packages (Debian) ---------------------------------------------------------
PACKAGES=(
  # build
  build-essential pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # run: GStreamer elements used by pipelines/ (see pipelines/README.md)
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  # the ingest server the end-to-end tests run on loopback (nginx with the RTMP module)
  nginx libnginx-mod-rtmp
  # the alert sink the delivery tests run on loopback (nats-server -js)
  nats-server
  # the headless browser and its WebDriver server the console test drives (tests/console.rs)
  chromium chromium-driver fonts-dejavu-core
  # reference PDQ cross-check (scripts/pdq-reference.py builds Meta's C++ via PyPI pdqhash)
  python3 python3-venv python3-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The downloaded .deb files (chromium alone is ~100 MB) are not needed once installed.
  $SUDO apt-get clean
else
  log "system packages: all present"
fi

# --- Rust toolchain ---------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "[setup] error: cargo not found. streamguard needs Rust stable >= 1.85 (edition 2024); install it with rustup." >&2
  exit 1
fi

# --- Python venv with the reference PDQ implementation ---------------------------------
if [ "${SETUP_SKIP_PYTHON:-0}" != "1" ]; then
  VENV=.venv
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import pdqhash, numpy, PIL, skimage, onnxruntime' >/dev/null 2>&1; then
    log "installing Python packages into $VENV (pdqhash builds Meta's C++ reference)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements.txt
  else
    log "python tools: all present"
  fi
fi
# --- ONNX Runtime (the classifiers' runtime, loaded at run time) --------------------------
# The shared library from the PyPI wheel onnxruntime==1.31.1, unpacked into .onnxruntime/
# (git-ignored) and checked against its SHA-256; config `classify.runtime` or ORT_DYLIB_PATH
# may point elsewhere. Needs pip (from .venv, created here if missing, even with
# SETUP_SKIP_PYTHON=1).
ORT_VERSION=1.31.1
ORT_LIB=.onnxruntime/libonnxruntime.so.$ORT_VERSION
case "$(uname -m)" in
  x86_64) ORT_PLATFORM=manylinux_2_28_x86_64
          ORT_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3 ;;
  aarch64) ORT_PLATFORM=manylinux_2_28_aarch64; ORT_SHA256= ;;
  *) echo "[setup] error: no ONNX Runtime wheel for $(uname -m)" >&2; exit 1 ;;
esac
if [ ! -f "$ORT_LIB" ]; then
  log "fetching ONNX Runtime $ORT_VERSION ($ORT_PLATFORM) from PyPI"
  if [ ! -x .venv/bin/pip ]; then python3 -m venv .venv; fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp" ".onnxruntime/libonnxruntime.so.$ORT_VERSION.part"' EXIT
  .venv/bin/pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform "$ORT_PLATFORM" --python-version 3.11 \
    -d "$tmp" "onnxruntime==$ORT_VERSION"
  mkdir -p .onnxruntime
  python3 - "$tmp"/onnxruntime-*.whl "$ORT_VERSION" <<'PY'
import sys, zipfile
whl, version = sys.argv[1], sys.argv[2]
name = "onnxruntime/capi/libonnxruntime.so." + version
with zipfile.ZipFile(whl) as z:
    if name not in z.namelist():
        sys.exit("[setup] error: %s has no %s" % (whl, name))
    with open(".onnxruntime/libonnxruntime.so." + version + ".part", "wb") as out:
        out.write(z.read(name))
PY
  if [ -n "$ORT_SHA256" ]; then
    echo "$ORT_SHA256  .onnxruntime/libonnxruntime.so.$ORT_VERSION.part" | sha256sum -c --quiet - \
      || { echo "[setup] error: ONNX Runtime library checksum mismatch" >&2; exit 1; }
  fi
  mv ".onnxruntime/libonnxruntime.so.$ORT_VERSION.part" "$ORT_LIB"
  rm -rf "$tmp"
  trap - EXIT
else
  log "ONNX Runtime: present ($ORT_LIB)"
fi

# --- promtool (checks the /metrics text in tests/observability.rs) ------------------------
# Taken out of Debian's `prometheus` package into .tools/ (git-ignored) without installing
# the package, which would set up and start a Prometheus server on this machine.
if [ ! -x .tools/promtool ]; then
  log "fetching promtool (Debian package prometheus, unpacked, not installed)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) \
    || { $SUDO apt-get update -qq && (cd "$tmp" && apt-get download -qq prometheus); } \
    || { echo "[setup] error: cannot download Debian's prometheus package (for promtool)" >&2; exit 1; }
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p .tools
  # Whole or not at all: an interrupted copy must not pass for promtool next time.
  cp "$tmp/x/usr/bin/promtool" .tools/promtool.part
  mv .tools/promtool.part .tools/promtool
  rm -rf "$tmp"
  trap - EXIT
else
  log "promtool: present (.tools/promtool)"
fi

# --- Disk --------------------------------------------------------------------------------
# A clean `make test` needs about NEED_GB of disk (measured on a clean clone: 2.2 GB under
# target/, 0.4 GB of .venv); say so plainly now rather than let rustc fail half-way with
# "No space left on device".
NEED_GB=3
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ -n "$avail_kb" ] && [ "$avail_kb" -lt $((NEED_GB * 1024 * 1024)) ]; then
  log "WARNING: only $((avail_kb / 1024)) MB free on the disk holding $(pwd);" \
    "a clean build and test run needs about ${NEED_GB} GB (see target/ and /tmp)"
fi

log "done"

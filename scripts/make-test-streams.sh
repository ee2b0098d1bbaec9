#!/usr/bin/env bash
# Generates the labelled replay set: 20 H.264 files of 60 s (natural CC0 / public-domain
# photos panned and zoomed; benign stand-in bank images appearing briefly, some scaled,
# mirrored, captioned, blurred or at a low bitrate), with labels.json, the stand-in bank and
# a replay config. See scripts/make_test_streams.py for the details.
#
# Usage: scripts/make-test-streams.sh [OUT] [--files N] [--seconds S] [--seed K]
#        (default OUT: var/test-streams)
set -euo pipefail
out=
if [[ $# -gt 0 && $1 != --* ]]; then
  out=$(realpath -m "$1") # relative to where the script was called from
  shift
fi
cd "$(dirname "$0")/.."
out=${out:-var/test-streams}
# The Python environment (numpy, Pillow, scikit-image, pdqhash) and GStreamer's x264enc.
if [[ ! -x .venv/bin/python ]] || ! command -v gst-launch-1.0 >/dev/null; then
  bash scripts/setup.sh
fi
exec .venv/bin/python scripts/make_test_streams.py "$out" "$@"

#!/usr/bin/env bash
# The soak test (issue 21; not part of `make test`): STREAMS streams through a real
# nginx-rtmp for DURATION seconds, joining and leaving, half of them showing a bank item that
# must be halted. See scripts/soak.py for what it measures; BENCHMARKS.md for the figures.
#   STREAMS=32 DURATION=1800 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ffmpeg >/dev/null || { echo "[soak] installing ffmpeg"; apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }
cargo build -q --release
exec python3 scripts/soak.py

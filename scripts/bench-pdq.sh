#!/usr/bin/env bash
# PDQ hashing speed, streamguard vs Meta's reference (PyPI pdqhash), same images, same run.
# Needs scripts/setup.sh (the .venv). Prints one line per implementation and image.
set -euo pipefail
cd "$(dirname "$0")/.."
imgs=(config/demo-image.png tests/data/pdq/images/camera_orig.png tests/data/pdq/images/chelsea_orig.png)
cargo build -q --release --example pdq_bench
./target/release/examples/pdq_bench "${imgs[@]}"
.venv/bin/python scripts/pdq_bench.py "${imgs[@]}"

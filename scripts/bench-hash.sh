#!/usr/bin/env bash
# Hash matching benchmarks, each against its baseline in the same run (see BENCHMARKS.md):
#  1. PDQ: one hash and all 8 dihedral variants per image, streamguard vs Meta's reference
#     (PyPI pdqhash), on the same already-decoded RGB images;
#  2. index: exact radius-31 search in a 10M-entry synthetic bank (half random, half
#     near-duplicate clusters): multi-index hashing vs a linear scan vs FAISS IndexBinaryFlat,
#     all single-threaded, result sets checked identical.
# Needs scripts/setup.sh (the .venv); installs faiss-cpu into the .venv if missing.
# ENTRIES=1000000 ./scripts/bench-hash.sh for a quicker run.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-10000000}
QUERIES=${QUERIES:-4000}
SCAN_QUERIES=${SCAN_QUERIES:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A 512x512 colour image (scikit-image's astronaut, public domain) besides the committed ones.
.venv/bin/python -c "import sys; from skimage import data; from PIL import Image; Image.fromarray(data.astronaut()).save(sys.argv[1])" "$work/astronaut_512x512.png"
imgs=("$work/astronaut_512x512.png" tests/data/pdq/images/camera_orig.png config/demo-image.png)
cargo build -q --release --example pdq_bench --example index_bench
echo "== PDQ (median of 201 hashes per image)"
./target/release/examples/pdq_bench "${imgs[@]}"
.venv/bin/python scripts/pdq_bench.py "${imgs[@]}"

echo "== index ($ENTRIES entries, radius 31)"
./target/release/examples/index_bench --entries "$ENTRIES" --queries "$QUERIES" \
    --scan-queries "$SCAN_QUERIES" --dump "$work"
.venv/bin/python -c "import faiss" 2>/dev/null || .venv/bin/pip install -q faiss-cpu==1.12.0
.venv/bin/python scripts/faiss_bench.py "$work" 31 "$SCAN_QUERIES"

#!/usr/bin/env bash
# Classifier throughput: the pool path (frames of 640x360 RGB resized by the submitting
# thread, sent over the pool's channel, normalised, ONNX Runtime, scores back) against raw
# ONNX Runtime (a prepared tensor run in a loop), same model, workers, intra-op threads (1)
# and batch (1), same run; medians of 3 rounds of 1000 frames, at 1 and 2 workers (see
# BENCHMARKS.md).
#   scripts/bench-classify.sh [MODEL_DIR]        (default: models/ppocr-cls)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/ppocr-cls}
[[ -f .onnxruntime/libonnxruntime.so.1.31.1 ]] || bash scripts/setup.sh
cargo build -q --release --example classify_bench
for w in 1 2; do
  ./target/release/examples/classify_bench --model "$MODEL" --workers "$w" --threads 1 --frames 1000 --rounds 3
done

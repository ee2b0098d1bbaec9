#!/usr/bin/env bash
# Bank building from image files, whole process (decode included), against Meta's reference
# in the same run (see BENCHMARKS.md): N 512x512 PNG images (crops and flips of
# scikit-image's public-domain and CC0 photos), then
#  1. `streamguard bank build` and `streamguard hash` on one core (taskset) and on every core;
#  2. the reference: PyPI pdqhash (C++) with PIL decoding each file, one process.
# Needs scripts/setup.sh (the .venv).   N=400 scripts/bench-bank-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-400}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build -q --release
.venv/bin/python - "$work/imgs" "$N" <<'PY'
import os, sys
import numpy as np
from PIL import Image
from skimage import data
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
names = ["astronaut", "camera", "chelsea", "coffee", "horse", "brick", "grass", "gravel",
         "rocket", "hubble_deep_field", "clock", "text"]
srcs = []
for name in names:
    a = getattr(data, name)()
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    srcs.append(Image.fromarray(a[..., :3]).convert("RGB").resize((640, 640)))
for i in range(n):
    img = srcs[i % len(srcs)]
    k = i // len(srcs)
    box = (k % 9 * 8, k // 9 % 9 * 8)
    crop = img.crop((box[0], box[1], box[0] + 512, box[1] + 512))
    if (k // 81) % 2:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    crop.save(os.path.join(out, f"img{i:05d}.png"))
PY
t() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$s" "$(date +%s.%N)"; }
# Median of 3 runs of each, alternating.
med() { python3 -c "import sys; v=sorted(map(float, sys.argv[1:])); print(v[len(v)//2])" "$@"; }
declare -a one all h1 hall ref
files=("$work"/imgs/*.png)
for r in 1 2 3; do
  one+=("$(t taskset -c 0 ./target/release/streamguard bank build --keep-low-quality --out "$work/a.csv" "$work/imgs")")
  all+=("$(t ./target/release/streamguard bank build --keep-low-quality --out "$work/b.csv" "$work/imgs")")
  h1+=("$(t taskset -c 0 ./target/release/streamguard hash "${files[@]}")")
  hall+=("$(t ./target/release/streamguard hash "${files[@]}")")
  ref+=("$(t .venv/bin/python -c '
import sys, glob, numpy as np, pdqhash
from PIL import Image
for f in sorted(glob.glob(sys.argv[1] + "/*.png")):
    h, q = pdqhash.compute(np.asarray(Image.open(f).convert("RGB")))
' "$work/imgs")")
done
one=$(med "${one[@]}"); all=$(med "${all[@]}"); h1=$(med "${h1[@]}"); hall=$(med "${hall[@]}"); ref=$(med "${ref[@]}")
cmp <(grep -v '^#' "$work/a.csv") <(grep -v '^#' "$work/b.csv")
python3 - "$N" "$one" "$all" "$h1" "$hall" "$ref" "$(nproc)" <<'PY'
import sys
n = int(sys.argv[1])
one, all_, h1, hall, ref = map(float, sys.argv[2:7])
cores = int(sys.argv[7])
print(f"{n} files 512x512 PNG, whole process (start, decode, hash, output), median of 3, {cores} cores")
for what, a, b in [("bank build", one, all_), ("hash", h1, hall)]:
    print(f"streamguard {what}: 1 core {a:.2f} s ({n / a:.0f} files/s, {ref / a:.2f}x the reference); "
          f"{cores} cores {b:.2f} s ({n / b:.0f} files/s, {ref / b:.2f}x the reference, {a / b:.2f}x of 1 core)")
print(f"reference (pdqhash + PIL, one Python process): {ref:.2f} s ({n / ref:.0f} files/s)")
PY

#!/usr/bin/env python3
"""Regenerate the PDQ conformance vectors in tests/data/pdq/.

The reference is Meta's C++ PDQ implementation as wrapped by the PyPI package `pdqhash`
(installed into .venv by scripts/setup.sh). Images are natural photos that ship inside the
scikit-image wheel under CC0 or public-domain terms, at several sizes, plus blurred and
low-contrast variants. Every image is written as an 8-bit RGB PNG so that any decoder yields
the same pixels; the vectors are then computed from exactly those pixels.

    .venv/bin/python scripts/pdq_vectors.py

Output: tests/data/pdq/images/*.png and tests/data/pdq/vectors.csv with the columns
file,hash,quality,dihedral (dihedral: the 8 variant hashes in the reference's order,
original, rot90, rot180, rot270, flipx, flipy, flip+1, flip-1, separated by '|').
"""
import csv
import os
import sys

import numpy as np
import pdqhash
from PIL import Image, ImageFilter
import skimage.data

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "pdq")

# Licences as stated in skimage/data/README.txt: CC0 or public domain only.
SOURCES = ["camera", "chelsea", "coffee", "astronaut", "brick", "grass", "gravel", "rocket", "clock", "text"]


def to_hex(bits):
    """pdqhash returns 256 bits, most significant (bit 255) first."""
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return f"{value:064x}"


def reference(rgb):
    vec, quality = pdqhash.compute(rgb)
    variants, q2 = pdqhash.compute_dihedral(rgb)
    assert q2 == quality
    return to_hex(vec), int(quality), "|".join(to_hex(v) for v in variants)


def load(name):
    arr = getattr(skimage.data, name)()
    if arr.dtype != np.uint8:
        arr = (arr > 0).astype(np.uint8) * 255 if arr.dtype == bool else arr.astype(np.uint8)
    img = Image.fromarray(arr)
    return img.convert("RGB")


def variants(name, img):
    w, h = img.size
    yield f"{name}_orig", img
    for target in (64, 160, 333):
        scale = target / max(w, h)
        size = (max(5, round(w * scale)), max(5, round(h * scale)))
        yield f"{name}_{size[0]}x{size[1]}", img.resize(size, Image.BILINEAR)
    small = img.resize((max(5, w // 2), max(5, h // 2)), Image.BILINEAR)
    yield f"{name}_blur", small.filter(ImageFilter.GaussianBlur(radius=4))
    arr = np.asarray(small).astype(np.float32)
    low = (arr - 128.0) * 0.08 + 128.0
    yield f"{name}_lowcontrast", Image.fromarray(low.round().clip(0, 255).astype(np.uint8))


def main():
    images_dir = os.path.join(ROOT, "images")
    os.makedirs(images_dir, exist_ok=True)
    rows = []
    for name in SOURCES:
        base = load(name)
        for label, img in variants(name, base):
            # The full-size originals make the repo large; keep them only for two images.
            if label.endswith("_orig") and name not in ("camera", "chelsea"):
                continue
            path = os.path.join(images_dir, f"{label}.png")
            img.save(path, optimize=True)
            rgb = np.asarray(Image.open(path).convert("RGB"))
            hx, quality, dih = reference(rgb)
            rows.append((f"images/{label}.png", hx, quality, dih))
    # An exact 64x64 image exercises the reference's "already downsampled" path.
    with open(os.path.join(ROOT, "vectors.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "hash", "quality", "dihedral"])
        out.writerows(rows)
    print(f"wrote {len(rows)} vectors to {ROOT}/vectors.csv", file=sys.stderr)


if __name__ == "__main__":
    main()

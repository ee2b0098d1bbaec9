#!/usr/bin/env python3
"""Median time for Meta's reference PDQ (PyPI pdqhash, C++) to hash each image, already decoded
to an RGB array (the wrapper's luma conversion in numpy is included, as in its normal use)."""
import sys
import time

import numpy as np
import pdqhash
from PIL import Image

for path in sys.argv[1:]:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    times = []
    for _ in range(201):
        t = time.perf_counter()
        pdqhash.compute(rgb)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    h, w = rgb.shape[:2]
    print(f"reference {w}x{h} median_ms={times[len(times) // 2]:.3f} {path}")

#!/usr/bin/env python3
"""Hash image files with Meta's reference PDQ (PyPI pdqhash, C++), printing one line per file
in the same format as `streamguard hash`: `<64 hex> <quality> <file>`.

    .venv/bin/python scripts/pdq_reference.py IMAGE...
"""
import sys

import numpy as np
import pdqhash
from PIL import Image


def to_hex(bits):
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return f"{value:064x}"


for path in sys.argv[1:]:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    vec, quality = pdqhash.compute(rgb)
    print(f"{to_hex(vec)} {int(quality)} {path}")

"""Reference outputs from onnxruntime's Python API, for tests/classify.rs.

Usage: onnx_reference.py MODEL.onnx INPUT.f32 D0,D1,D2,D3
INPUT.f32 holds little-endian float32 values of that shape; prints the model's first output,
one value per line (repr of float32, enough digits to round-trip).
"""
import sys

import numpy as np
import onnxruntime as ort

model, tensor, shape = sys.argv[1], sys.argv[2], [int(d) for d in sys.argv[3].split(",")]
x = np.fromfile(tensor, dtype="<f4").reshape(shape)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
out = s.run(None, {s.get_inputs()[0].name: x})[0]
for v in out.reshape(-1):
    print(repr(float(v)))

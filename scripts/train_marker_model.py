"""Trains streamguard's marker model: a small CNN that detects a synthetic marker.

Content safety: the "prohibited content" this model detects is a synthetic stand-in, a
geometric marker (a magenta disc with a yellow ring and a black triangle at its centre),
pasted at random size, position, opacity and rotation into benign natural photos
(scikit-image samples, CC0 / public domain) and generated textures. No real material is
used, generated or described anywhere.

The network is trained with numpy only (hand-written forward and backward passes; torch's
PyPI wheel pulls gigabytes of CUDA libraries) and exported with the `onnx` package. Running
this script is optional: the committed models/marker/model.onnx is what the daemon uses.

Data: every sample is rendered as a video frame would be (frame sizes 320x180 to 960x540,
JPEG-compressed at quality 25-95 as a stand-in for the video codec), then resized to the
model's 160x90 input exactly as streamguard does (bilinear, half-pixel centres, no
antialiasing; src/classify/model.rs). Half the samples carry the marker; 40% of the others
carry a distractor (the marker's geometry in other colours, its disc or ring alone, other
shapes, text, rings of other colours), so that the model learns the marker and not
"something magenta".

Held out: the test set's backgrounds are photos the training never saw (hubble_deep_field,
gravel, retina, cell) and textures from a generator family not used in training. The
decision threshold is chosen on a validation set drawn like the training set (false-positive
rate <= 0.1% there), then recall and false-positive rate are measured on the held-out test
set, both scored by ONNX Runtime on the exported model, and written to
models/marker/REPORT.md with the model.

Writes OUT/model.onnx, OUT/model.toml (thresholds from the validation set), OUT/report.json
and OUT/REPORT.md.

Usage: train_marker_model.py [--out models/marker] [--train 24000] [--epochs 14] [--seed 7]
       train_marker_model.py --out models/marker --report-only   (model.toml and REPORT.md
                                                                  again from report.json)
       train_marker_model.py --demo-image config/demo-marker.png  (the demo's still image)
Needs: numpy, pillow, scikit-image, onnx, onnxruntime (scripts/requirements-train.txt).
"""

import argparse
import io
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
import skimage.data
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFilter, ImageFont

IN_W, IN_H = 160, 90
MEAN, STD = 0.5, 0.25  # (v / 255 - MEAN) / STD, the manifest's normalisation
# Licences from each function's docstring in skimage.data: CC0 or public domain only.
TRAIN_PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "clock", "horse", "text"]
HELD_OUT_PHOTOS = ["hubble_deep_field", "gravel", "retina", "cell"]
FRAME_SIZES = [(320, 180), (480, 270), (640, 360), (960, 540)]
MAGENTA, YELLOW, BLACK = (230, 0, 170), (255, 215, 0), (0, 0, 0)
CAPTIONS = ["LIVE NOW", "follow for more", "GG", "brb 5 min", "new video out!", "O"]

_photos = {}


def photo(name):
    if name not in _photos:
        a = getattr(skimage.data, name)()
        if a.dtype != np.uint8:
            a = (a.astype(np.float64) / a.max() * 255).astype(np.uint8)
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        img = Image.fromarray(a[..., :3])
        if img.width < 1000:
            img = img.resize((img.width * 2, img.height * 2), Image.BICUBIC)
        _photos[name] = img
    return _photos[name]


def texture(rng, held_out):
    """A generated background (no licence question). Training and held-out sets use
    different generator families."""
    w, h = 640, 360
    if not held_out:
        kind = rng.integers(3)
        if kind == 0:  # smooth colour field
            small = rng.integers(0, 256, (rng.integers(3, 9), rng.integers(4, 12), 3), dtype=np.uint8)
            return Image.fromarray(small).resize((w, h), Image.BICUBIC)
        if kind == 1:  # stripes
            t = np.linspace(0, rng.uniform(4, 30) * math.pi, w)[None, :] + np.linspace(0, rng.uniform(0, 20), h)[:, None]
            c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            m = (np.sin(t)[..., None] + 1) / 2
            return Image.fromarray((c0 * m + c1 * (1 - m)).astype(np.uint8))
        # noise over a gradient
        g = np.linspace(0, 1, w)[None, :, None] * rng.integers(0, 256, 3) + rng.integers(0, 128, 3)
        n = rng.normal(0, rng.uniform(5, 40), (h, w, 3))
        return Image.fromarray(np.clip(g + n, 0, 255).astype(np.uint8))
    kind = rng.integers(2)
    if kind == 0:  # checkerboard / tiles
        s = rng.integers(8, 64)
        yy, xx = np.mgrid[0:h, 0:w]
        m = (((yy // s) + (xx // s)) % 2)[..., None]
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        return Image.fromarray((c0 * m + c1 * (1 - m)).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    # random ellipses (blobs)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(5, 25)):
        x, y, r = rng.integers(0, w), rng.integers(0, h), rng.integers(5, 80)
        d.ellipse((x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return img


def background(rng, photos, held_out, size):
    w, h = size
    if rng.random() < 0.7:
        src = photo(photos[rng.integers(len(photos))])
    else:
        src = texture(rng, held_out)
    z = rng.uniform(0.35, 1.0)
    ww = min(src.width, src.height * w / h) * z
    hh = ww * h / w
    x, y = rng.uniform(0, src.width - ww), rng.uniform(0, src.height - hh)
    img = src.resize(size, Image.BILINEAR, box=(x, y, x + ww, y + hh))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def badge(disc, ring, centre, shape="triangle", size=256):
    """The marker's geometry (RGBA, transparent outside the disc); None colours are left out."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c, r = size / 2, size / 2 - 2
    if disc:
        d.ellipse((c - r, c - r, c + r, c + r), fill=disc + (255,))
    if ring:
        d.ellipse((c - 0.78 * r, c - 0.78 * r, c + 0.78 * r, c + 0.78 * r), fill=ring + (255,))
        d.ellipse((c - 0.58 * r, c - 0.58 * r, c + 0.58 * r, c + 0.58 * r), fill=(disc or ring) + (255,) if disc else (0, 0, 0, 0))
    if centre:
        t = 0.42 * r
        if shape == "triangle":
            pts = [(c + t * math.cos(a), c + t * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
            d.polygon(pts, fill=centre + (255,))
        elif shape == "square":
            d.rectangle((c - t * 0.7, c - t * 0.7, c + t * 0.7, c + t * 0.7), fill=centre + (255,))
        else:
            d.ellipse((c - t * 0.6, c - t * 0.6, c + t * 0.6, c + t * 0.6), fill=centre + (255,))
    return img


MARKER = None


def marker():
    global MARKER
    if MARKER is None:
        MARKER = badge(MAGENTA, YELLOW, BLACK)
    return MARKER


def distractor(rng):
    """Something marker-like that is not the marker."""
    # Colours far apart from each other (no orange next to the yellow, no pink next to the
    # magenta): a distractor must differ from the marker by more than a detail that a
    # 13-pixel marker in a compressed frame cannot show.
    colours = [MAGENTA, YELLOW, BLACK, (255, 255, 255), (0, 90, 230), (0, 180, 60), (230, 30, 30)]

    def pick():
        return colours[rng.integers(len(colours))]

    kind = rng.integers(5)
    if kind == 0:  # the marker's geometry in other colours: never a magenta and yellow pair
        while True:
            disc, ring, centre = pick(), pick(), pick()
            if {disc, ring} != {MAGENTA, YELLOW} and len({disc, ring, centre}) > 1:
                return badge(disc, ring, centre, shape=["triangle", "square", "dot"][rng.integers(3)])
    if kind == 1:  # parts of the marker: its magenta disc alone, its yellow ring (with or
        # without the triangle)
        parts = [(MAGENTA, None, None), (None, YELLOW, None), (None, YELLOW, BLACK)]
        return badge(*parts[rng.integers(len(parts))])
    if kind == 2:  # a plain shape
        img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        fill = pick() + (255,)
        [d.ellipse, d.rectangle][rng.integers(2)]((10, 10, 246, 246), fill=fill)
        return img
    if kind == 3:  # text
        img = Image.new("RGBA", (512, 160), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=70)
        d.text((10, 30), CAPTIONS[rng.integers(len(CAPTIONS))], fill=pick() + (255,), font=font, stroke_width=3, stroke_fill=pick() + (255,))
        return img
    # concentric rings of other colours (a target)
    while True:
        disc, ring = pick(), pick()
        if {disc, ring} != {MAGENTA, YELLOW} and disc != ring:
            return badge(disc, ring, None)


def paste(rng, frame, sticker):
    """Pastes an RGBA sticker at a random size (15-45% of the frame height), position (fully
    inside), opacity (0.6-1) and rotation."""
    w, h = frame.size
    d = rng.uniform(0.15, 0.45) * h
    rot = sticker.rotate(rng.uniform(0, 360), resample=Image.BICUBIC, expand=True)
    scale = d / max(sticker.size) * (rot.width / sticker.width)
    rot = rot.resize((max(2, round(rot.width * scale)), max(2, round(rot.height * scale))), Image.LANCZOS)
    alpha = np.asarray(rot.getchannel("A"), dtype=np.float32) * rng.uniform(0.6, 1.0)
    rot.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    x = rng.integers(0, max(1, w - rot.width))
    y = rng.integers(0, max(1, h - rot.height))
    out = frame.convert("RGBA")
    out.alpha_composite(rot, (int(x), int(y)))
    return out.convert("RGB")


def resize_like_streamguard(a, w=IN_W, h=IN_H):
    """Bilinear resize with half-pixel centres and clamped edges, no antialiasing: what
    streamguard's classifier preprocessing does (float32, HWC in and out)."""

    def axis(n_out, n_in):
        s = n_in / n_out
        f = np.clip((np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(s) - 0.5, 0, n_in - 1).astype(np.float32)
        i0 = f.astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), (f - i0).astype(np.float32)

    x0, x1, wx = axis(w, a.shape[1])
    y0, y1, wy = axis(h, a.shape[0])
    a = a.astype(np.float32)
    top = a[y0][:, x0] + (a[y0][:, x1] - a[y0][:, x0]) * wx[None, :, None]
    bottom = a[y1][:, x0] + (a[y1][:, x1] - a[y1][:, x0]) * wx[None, :, None]
    return top + (bottom - top) * wy[:, None, None]


def sample(args):
    """One sample: (160x90x3 float32 in 0..255, label, kind)."""
    seed, split, positive = args
    rng = np.random.default_rng(seed)
    held_out = split == "test"
    size = FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
    frame = background(rng, HELD_OUT_PHOTOS if held_out else TRAIN_PHOTOS, held_out, size)
    kind = "plain"
    if positive:
        frame = paste(rng, frame, marker())
        kind = "marker"
    elif rng.random() < 0.4:
        frame = paste(rng, frame, distractor(rng))
        kind = "distractor"
    if rng.random() < 0.5:
        frame = Image.fromarray(
            np.clip(np.asarray(frame, dtype=np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30), 0, 255).astype(np.uint8)
        )
    if rng.random() < 0.2:
        frame = frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=int(rng.integers(25, 96)))
    frame = Image.open(buf).convert("RGB")
    return resize_like_streamguard(np.asarray(frame)), int(positive), kind


def dataset(n, split, seed, jobs):
    base = {"train": 0, "val": 10_000_000, "test": 20_000_000}[split] + seed * 100_000_000
    args = [(base + i, split, i % 2 == 0) for i in range(n)]
    with Pool(jobs) as p:
        out = p.map(sample, args, chunksize=64)
    x = np.stack([o[0] for o in out]).astype(np.float32)
    y = np.array([o[1] for o in out], dtype=np.float32)
    kinds = [o[2] for o in out]
    return x, y, kinds


# --- the network: 5 conv layers (3x3, padding 1, ReLU), global max pool, linear -------------
# Activations are NHWC inside this script; the exported ONNX model is NCHW. The receptive
# field of the last layer is 63 input pixels, more than the largest marker (41).
LAYERS = [(3, 16, 2), (16, 32, 2), (32, 48, 2), (48, 64, 2), (64, 64, 1)]  # (in, out, stride)


def init_params(rng):
    p = {}
    for i, (c, f, _s) in enumerate(LAYERS):
        p["w%d" % i] = (rng.standard_normal((f, c, 3, 3)) * math.sqrt(2 / (9 * c))).astype(np.float32)
        p["b%d" % i] = np.zeros(f, np.float32)
    p["wf"] = (rng.standard_normal(LAYERS[-1][1]) * math.sqrt(1 / LAYERS[-1][1])).astype(np.float32)
    p["bf"] = np.zeros(1, np.float32)
    return p


def im2col(x, s):
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::s, ::s]  # N,Ho,Wo,C,3,3
    n, ho, wo = win.shape[:3]
    return win.reshape(n * ho * wo, -1), (n, ho, wo)


def forward(p, x, keep=False):
    """x: N,H,W,3 normalised. Returns logits (N,) and, with keep, what backward needs."""
    cache = []
    h = x
    for i, (_c, f, s) in enumerate(LAYERS):
        cols, (n, ho, wo) = im2col(h, s)
        z = cols @ p["w%d" % i].reshape(f, -1).T + p["b%d" % i]
        a = np.maximum(z, 0).reshape(n, ho, wo, f)
        if keep:
            cache.append((h.shape, cols, z > 0, s))
        h = a
    n, hh, ww, f = h.shape
    flat = h.reshape(n, hh * ww, f)
    idx = flat.argmax(axis=1)
    pooled = np.take_along_axis(flat, idx[:, None, :], axis=1)[:, 0, :]
    logits = pooled @ p["wf"] + p["bf"][0]
    if keep:
        return logits, (cache, h.shape, idx, pooled)
    return logits


def backward(p, dlogits, saved):
    cache, hshape, idx, pooled = saved
    g = {"wf": pooled.T @ dlogits, "bf": np.array([dlogits.sum()], np.float32)}
    dpooled = dlogits[:, None] * p["wf"][None, :]
    n, hh, ww, f = hshape
    dflat = np.zeros((n, hh * ww, f), np.float32)
    np.put_along_axis(dflat, idx[:, None, :], dpooled[:, None, :], axis=1)
    dh = dflat.reshape(hshape)
    for i in reversed(range(len(LAYERS))):
        xshape, cols, active, s = cache[i]
        f = LAYERS[i][1]
        dz = dh.reshape(-1, f) * active
        g["w%d" % i] = (dz.T @ cols).reshape(p["w%d" % i].shape)
        g["b%d" % i] = dz.sum(axis=0)
        if i == 0:
            break
        dcols = (dz @ p["w%d" % i].reshape(f, -1)).reshape(xshape[0], dh.shape[1], dh.shape[2], xshape[3], 3, 3)
        dxp = np.zeros((xshape[0], xshape[1] + 2, xshape[2] + 2, xshape[3]), np.float32)
        ho, wo = dh.shape[1], dh.shape[2]
        for a in range(3):
            for b in range(3):
                dxp[:, a : a + s * (ho - 1) + 1 : s, b : b + s * (wo - 1) + 1 : s, :] += dcols[..., a, b]
        dh = dxp[:, 1:-1, 1:-1, :]
    return g


def loss_and_grad(p, x, y):
    logits, saved = forward(p, x, keep=True)
    # Binary cross-entropy on logits, numerically stable.
    loss = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
    prob = 1 / (1 + np.exp(-logits))
    return float(loss), backward(p, ((prob - y) / len(y)).astype(np.float32), saved)


def gradient_check(rng):
    """Compares the hand-written gradients with finite differences on a tiny batch."""
    p = {k: v.astype(np.float64) for k, v in init_params(rng).items()}
    x = rng.standard_normal((3, 20, 28, 3))
    y = np.array([1.0, 0.0, 1.0])
    _l, g = loss_and_grad(p, x, y)
    worst = 0.0
    for k in p:
        flat = p[k].reshape(-1)
        for j in rng.choice(flat.size, min(5, flat.size), replace=False):
            old = flat[j]
            flat[j] = old + 1e-5
            lp, _ = loss_and_grad(p, x, y)
            flat[j] = old - 1e-5
            lm, _ = loss_and_grad(p, x, y)
            flat[j] = old
            num = (lp - lm) / 2e-5
            ana = g[k].reshape(-1)[j]
            worst = max(worst, abs(num - ana) / max(1e-6, abs(num) + abs(ana)))
    return worst


def normalise(x):
    return (x / 255.0 - MEAN) / STD


def predict(p, x, batch=256):
    return np.concatenate([1 / (1 + np.exp(-forward(p, normalise(x[i : i + batch])))) for i in range(0, len(x), batch)])


def train(p, x, y, epochs, rng, log):
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, batch, step = 0.9, 0.999, 64, 0
    steps = epochs * (len(x) // batch)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        t0, total = time.time(), 0.0
        for i in range(0, len(x) - batch + 1, batch):
            sel = order[i : i + batch]
            xb = x[sel]
            flip = rng.random(batch) < 0.5
            xb[flip] = xb[flip, :, ::-1]
            loss, g = loss_and_grad(p, normalise(xb), y[sel])
            total += loss
            step += 1
            lr = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh, vh = m[k] / (1 - b1**step), v[k] / (1 - b2**step)
                p[k] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        log("epoch %d/%d: loss %.4f (%.0f s)" % (epoch + 1, epochs, total / (len(x) // batch), time.time() - t0))


def export_onnx(p, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    prev = "input"
    for i, (_c, _f, s) in enumerate(LAYERS):
        inits += [numpy_helper.from_array(p["w%d" % i], "w%d" % i), numpy_helper.from_array(p["b%d" % i], "b%d" % i)]
        nodes.append(helper.make_node("Conv", [prev, "w%d" % i, "b%d" % i], ["c%d" % i], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[s, s]))
        nodes.append(helper.make_node("Relu", ["c%d" % i], ["r%d" % i]))
        prev = "r%d" % i
    nodes.append(helper.make_node("GlobalMaxPool", [prev], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], axis=1))
    inits += [numpy_helper.from_array(p["wf"].reshape(-1, 1), "wf"), numpy_helper.from_array(p["bf"], "bf")]
    nodes.append(helper.make_node("Gemm", ["flat", "wf", "bf"], ["marker_logit"]))
    graph = helper.make_graph(
        nodes,
        "streamguard_marker",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, IN_H, IN_W])],
        [helper.make_tensor_value_info("marker_logit", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="streamguard train_marker_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def ort_scores(onnx_path, x, batch=256):
    """Sigmoid scores of the exported model (what streamguard runs) on 160x90 RGB samples."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(x), batch):
        inp = np.ascontiguousarray(normalise(x[i : i + batch]).transpose(0, 3, 1, 2)).astype(np.float32)
        out.append(1 / (1 + np.exp(-sess.run(None, {"input": inp})[0][:, 0].astype(np.float64))))
    return np.concatenate(out)


def evaluate(onnx_path, xva, yva, xte, yte, kte, test_seed):
    """Thresholds from the validation set, then recall and false-positive rate on the
    held-out test set, all scored by ONNX Runtime.

    review: the lowest threshold at which at most 0.1% of validation negatives score;
    halt: just above the highest-scoring validation negative."""
    sva = ort_scores(onnx_path, xva)
    neg = sva[yva == 0]
    review = threshold_at_fpr(neg, 0.001)
    halt = max(review, threshold_at_fpr(neg, 0.0))
    ste = ort_scores(onnx_path, xte)
    kinds = np.array(kte)
    pos, negs = ste[yte == 1], ste[yte == 0]
    return {
        "test_seed": test_seed,
        "review_threshold": review,
        "halt_threshold": halt,
        "held_out": {
            "positives": int(len(pos)),
            "negatives": int(len(negs)),
            "negatives_plain": int((kinds == "plain").sum()),
            "negatives_distractor": int((kinds == "distractor").sum()),
            "recall": round(float(np.mean(pos >= review)), 4),
            "false_positive_rate": round(float(np.mean(negs >= review)), 4),
            "false_positive_rate_plain": round(float(np.mean(ste[kinds == "plain"] >= review)), 4),
            "false_positive_rate_distractor": round(float(np.mean(ste[kinds == "distractor"] >= review)), 4),
            "recall_at_halt": round(float(np.mean(pos >= halt)), 4),
            "false_positive_rate_at_halt": round(float(np.mean(negs >= halt)), 4),
        },
    }


def threshold_at_fpr(scores_neg, fpr):
    """The lowest threshold whose false-positive rate on these negatives is <= fpr."""
    s = np.sort(scores_neg)[::-1]
    k = int(math.floor(fpr * len(s)))
    return float(np.nextafter(s[k], np.float32(1))) if k < len(s) else 0.0


MANIFEST = """# streamguard's marker model: a synthetic stand-in for a classifier of prohibited content.
# It detects a geometric marker (a magenta disc with a yellow ring and a black triangle at
# its centre) pasted at any size from 15%% to 45%% of the frame height, position, opacity
# (60-100%%) and rotation into natural images. Trained by scripts/train_marker_model.py on
# benign CC0 / public-domain photos and generated textures; REPORT.md has its held-out
# recall and false-positive rate. Written by that script: edit the script, not this file.
file = "model.onnx"
input = "input"
layout = "nchw"
width = %(w)d
height = %(h)d
colour = "rgb"
# (v / 255 - 0.5) / 0.25
scale = 0.00392156862745098
mean = [%(mean)s, %(mean)s, %(mean)s]
std = [%(std)s, %(std)s, %(std)s]
# One logit; its sigmoid is the marker's score.
output = "sigmoid"
labels = ["marker"]

# review: the lowest score at which at most 0.1%% of validation negatives score; halt: just
# above the highest-scoring validation negative (each frame over it counts towards
# classify.halt_k of classify.halt_n).
[thresholds.marker]
review = %(review).6f
halt = %(halt).6f
"""

REPORT = """# Marker model: held-out evaluation

Content safety: the positive class is a synthetic marker (a magenta disc with a yellow ring
and a black triangle), a stand-in for prohibited content; every image is a benign CC0 /
public-domain photo or a generated texture.

Written by `scripts/train_marker_model.py` (seed %(seed)d, %(seconds)d s on this machine's
CPUs). Reproduce: `.venv/bin/pip install -r scripts/requirements-train.txt`, then
`.venv/bin/python scripts/train_marker_model.py` (trains, about 30 min on 2 cores) and
`.venv/bin/python scripts/train_marker_model.py --evaluate-only --test-seed %(test_seed)d`
(these figures).

| | |
|---|---|
| network | 5 conv 3x3 (16, 32, 48, 64 channels at stride 2, 64 at stride 1; ReLU), global max pool, linear; %(parameters)d parameters |
| ONNX file | %(onnx_bytes)d bytes, opset 13, input `input` [batch, 3, 90, 160] RGB, output `marker_logit` |
| training | %(train)d samples (half with the marker, 40%% of the rest with a distractor), %(epochs)d epochs, Adam, cosine decay |
| validation | %(validation)d samples drawn like the training set; picks the thresholds |
| held-out test | %(test)d samples (seed %(test_seed)d) on photos and texture families never used in training |

## Held-out results

At the review threshold %(review_threshold).6f (at most 0.1%% of validation negatives score
that high):

| measure | value |
|---|---|
| recall (%(positives)d images with the marker) | **%(recall_pct)s** |
| false-positive rate (%(negatives)d images without it) | **%(fpr_pct)s** |
| of which plain images (%(negatives_plain)d) | %(fpr_plain_pct)s |
| of which with a distractor (%(negatives_distractor)d) | %(fpr_distr_pct)s |

At the halt threshold %(halt_threshold).6f (above every validation negative): recall
%(recall_halt_pct)s, false-positive rate %(fpr_halt_pct)s.

How the thresholds were chosen: the first evaluation of this model put the review threshold
where 0.5%% of validation negatives score; this network is so confident that this came out at
0.0004 and let 1.6%% of the held-out negatives (seed 7) through, at 99.9%% recall. The rule
above replaced it after that was seen, so the figures here are on a fresh held-out set
(seed %(test_seed)d) generated after the change (`--evaluate-only --test-seed %(test_seed)d`).

Exported model vs the numpy network it was trained as: largest logit difference
%(onnx_max_logit_difference).1e on 64 held-out images.

Held-out photos: hubble_deep_field, gravel, retina, cell (scikit-image samples, CC0 / public
domain); training photos: astronaut, camera, coffee, chelsea, rocket, brick, grass, clock,
horse, text. Frames are rendered at 320x180 to 960x540, JPEG-compressed (quality 25-95),
then resized to 160x90 exactly as streamguard resizes them.
"""


def pct(v):
    return "%.2f%%" % (100 * v)


def write_manifest_and_report(out, r):
    with open(os.path.join(out, "model.toml"), "w") as f:
        f.write(MANIFEST % {"w": IN_W, "h": IN_H, "mean": MEAN, "std": STD, "review": r["review_threshold"], "halt": r["halt_threshold"]})
    h = r["held_out"]
    fields = dict(r)
    fields.update(h)
    fields.update(
        recall_pct=pct(h["recall"]),
        fpr_pct=pct(h["false_positive_rate"]),
        fpr_plain_pct=pct(h["false_positive_rate_plain"]),
        fpr_distr_pct=pct(h["false_positive_rate_distractor"]),
        recall_halt_pct=pct(h["recall_at_halt"]),
        fpr_halt_pct=pct(h["false_positive_rate_at_halt"]),
    )
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write(REPORT % fields)


def demo_image(path):
    """The demo's still: a benign photo (scikit-image's rocket, public domain) at 640x360 with
    the marker pasted at a fixed size, place, opacity and angle."""
    src = photo("rocket")
    w, h = 640, 360
    ww = src.width
    hh = ww * h / w
    frame = src.resize((w, h), Image.BILINEAR, box=(0, (src.height - hh) / 2, ww, (src.height + hh) / 2))
    m = marker().rotate(25, resample=Image.BICUBIC, expand=True)
    d = int(0.3 * h)
    m = m.resize((d, d), Image.LANCZOS)
    alpha = np.asarray(m.getchannel("A"), dtype=np.float32) * 0.9
    m.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    out = frame.convert("RGBA")
    out.alpha_composite(m, (int(0.62 * w), int(0.2 * h)))
    out.convert("RGB").save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/marker")
    ap.add_argument("--train", type=int, default=24000)
    ap.add_argument("--val", type=int, default=4000)
    ap.add_argument("--test", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--evaluate-only", action="store_true")
    ap.add_argument("--test-seed", type=int, help="seed of the held-out set (default: --seed)")
    ap.add_argument("--demo-image")
    a = ap.parse_args()
    if a.demo_image:
        demo_image(a.demo_image)
        return
    if a.report_only:
        with open(os.path.join(a.out, "report.json")) as f:
            write_manifest_and_report(a.out, json.load(f))
        return
    if a.evaluate_only:
        # The committed model again: thresholds from a fresh validation set, a held-out set
        # from --test-seed; training facts kept from report.json.
        with open(os.path.join(a.out, "report.json")) as f:
            result = json.load(f)
        xva, yva, _ = dataset(a.val, "val", a.seed, a.jobs)
        ts = a.test_seed if a.test_seed is not None else a.seed
        xte, yte, kte = dataset(a.test, "test", ts, a.jobs)
        result.update(evaluate(os.path.join(a.out, "model.onnx"), xva, yva, xte, yte, kte, ts))
        result["validation"], result["test"] = a.val, a.test
        with open(os.path.join(a.out, "report.json"), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        write_manifest_and_report(a.out, result)
        print(json.dumps(result))
        return
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    t_start = time.time()

    def log(msg):
        print("[%5.0f s] %s" % (time.time() - t_start, msg), flush=True)

    err = gradient_check(np.random.default_rng(0))
    log("gradient check: worst relative error %.2e" % err)
    if err > 1e-4:
        sys.exit("gradient check failed")
    xtr, ytr, _ = dataset(a.train, "train", a.seed, a.jobs)
    xva, yva, _ = dataset(a.val, "val", a.seed, a.jobs)
    xte, yte, kte = dataset(a.test, "test", a.seed, a.jobs)
    log("data: %d train, %d validation, %d held-out test samples" % (len(xtr), len(xva), len(xte)))
    p = init_params(rng)
    train(p, xtr, ytr, a.epochs, rng, log)

    onnx_path = os.path.join(a.out, "model.onnx")
    export_onnx(p, onnx_path)
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    probe = normalise(xte[:64])
    ours = forward(p, probe)
    theirs = sess.run(None, {"input": np.ascontiguousarray(probe.transpose(0, 3, 1, 2))})[0][:, 0]
    diff = float(np.max(np.abs(ours - theirs)))
    log("ONNX export: max |numpy - onnxruntime| logit difference %.2e" % diff)
    if diff > 1e-3:
        sys.exit("exported model does not match the trained one")
    result = {
        "seed": a.seed,
        "train": a.train,
        "validation": a.val,
        "test": a.test,
        "epochs": a.epochs,
        "parameters": int(sum(v.size for v in p.values())),
        "onnx_bytes": os.path.getsize(onnx_path),
        "onnx_max_logit_difference": diff,
        "seconds": round(time.time() - t_start),
    }
    result.update(evaluate(onnx_path, xva, yva, xte, yte, kte, a.seed))
    log("held-out: recall %(recall).4f, false-positive rate %(false_positive_rate).4f" % result["held_out"])
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    write_manifest_and_report(a.out, result)
    log(json.dumps(result))


if __name__ == "__main__":
    main()

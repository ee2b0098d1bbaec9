"""Generates a labelled set of H.264 test streams for `streamguard replay`.

Content safety: every "prohibited" item here is a synthetic stand-in, a benign photo from the
scikit-image sample data (CC0 / public domain) whose PDQ hash goes into a stand-in bank.

Each file is `--seconds` long at 25 fps, most at 640x360, some at 480x270 or 960x540 (the
bank was hashed at 640x360, so everything in those files is scaled): shots of natural photos (scikit-image
samples, CC0 / public domain) and generated textures, slowly panned and zoomed, with hard cuts
between shots (benign scene changes). At random times a bank item appears briefly (1-5 s),
cut in or faded in over 0.4 s, shown in one of these ways:
  plain     full frame
  scaled    resampled to half size and back
  mirrored  flipped left to right (banks match mirrored copies)
  text      with a caption over it
  lowres    downscaled 4x and scaled back up (blurry)
(A picture-in-picture or cropped copy is not in the set: PDQ, a whole-frame hash, does not
match those; that is what classifiers are for.)
Some files are encoded at a low bitrate (350 kbit/s instead of 1500), and every third one
without scene-cut keyframes (as fixed-GOP hardware encoders do). Keyframes every 2 s, no
B-frames (a low-latency live setup).

Writes to OUT: stream-NN.mp4, labels.json (file -> [[start_s, end_s], ...], the span in which
an item is visible at all, from the first frame of a fade), bank.csv (the stand-in bank), items.json (per
item: bank id, transform, appearance, PDQ distance of its fully visible frame to its bank
entry before encoding) and replay.toml (a config for `streamguard replay`).

Usage: make_test_streams.py OUT [--files 20] [--seconds 60] [--seed 1] [--jobs CORES]
"""

import argparse
import json
import os
import random
import subprocess
import sys
from multiprocessing import Pool

import numpy as np
import pdqhash
import skimage.data
from PIL import Image, ImageDraw, ImageFont

W, H, FPS = 640, 360, 25  # the bank's frame size; files vary (see make())
# Licences as stated in skimage/data/README.txt: CC0 or public domain only.
ITEMS = ["coffee", "chelsea", "rocket", "astronaut"]
BACKGROUNDS = ["camera", "hubble_deep_field", "brick", "grass", "gravel", "clock", "horse"]
TRANSFORMS = ["plain", "scaled", "mirrored", "text", "lowres"]
CAPTIONS = ["LIVE NOW", "follow for more", "GG", "brb 5 min", "new video out!"]


def rgb(name):
    a = getattr(skimage.data, name)()
    if a.dtype != np.uint8:
        a = (a.astype(np.float64) / a.max() * 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return Image.fromarray(a[..., :3])


def cover(img, w, h):
    """Scales and centre-crops img to exactly w x h."""
    s = max(w / img.width, h / img.height)
    img = img.resize((max(w, round(img.width * s)), max(h, round(img.height * s))), Image.BILINEAR)
    x, y = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((x, y, x + w, y + h))


def texture(rng):
    """A smooth random colour field (generated, no licence question)."""
    small = np.array(
        [[[rng.randrange(256) for _ in range(3)] for _ in range(8)] for _ in range(5)], dtype=np.uint8
    )
    return Image.fromarray(small).resize((1280, 720), Image.BICUBIC)


def item_frame(name, w=W, h=H):
    return cover(rgb(name), w, h)


def bank_hash(img):
    h, _q = pdqhash.compute(np.asarray(img))
    return h


def to_hex(bits):
    return "".join("%02x" % int("".join(str(int(b)) for b in bits[i : i + 8]), 2) for i in range(0, 256, 8))


def best_distance(img, ref_bits):
    hashes, _q = pdqhash.compute_dihedral(np.asarray(img))
    return min(int(np.count_nonzero(h != ref_bits)) for h in hashes)


class Shot:
    """A background shot: a source image panned and zoomed from one window to another."""

    def __init__(self, rng, src, frames, w, h):
        self.size = (w, h)
        self.src = src.resize((int(src.width * 1.8), int(src.height * 1.8)), Image.BILINEAR) if src.width < 1000 else src
        self.frames = frames
        sw, sh = self.src.size

        def window():
            z = rng.uniform(0.45, 0.85)
            ww = min(sw, sh * w / h) * z
            hh = ww * h / w
            return (rng.uniform(0, sw - ww), rng.uniform(0, sh - hh), ww, hh)

        self.a, self.b = window(), window()

    def frame(self, i):
        t = i / max(1, self.frames - 1)
        x, y, w, h = (p + (q - p) * t for p, q in zip(self.a, self.b))
        return self.src.resize(self.size, Image.BILINEAR, box=(x, y, x + w, y + h))


def present(item, transform, caption, font):
    w, h = item.size
    if transform == "plain":
        return item
    if transform == "mirrored":
        return item.transpose(Image.FLIP_LEFT_RIGHT)
    if transform == "lowres":
        return item.resize((w // 4, h // 4), Image.BILINEAR).resize((w, h), Image.BILINEAR)
    if transform == "scaled":
        return item.resize((w // 2, h // 2), Image.BICUBIC).resize((w, h), Image.BICUBIC)
    if transform == "text":
        out = item.copy()
        d = ImageDraw.Draw(out)
        d.text((w // 32, h - h // 7), caption, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
        return out
    raise ValueError(transform)


def plan(rng, seconds):
    """Item appearances: (start_frame, frames_visible, fade_frames), apart and inside the file."""
    n = rng.choice([1, 2, 2, 3])
    out, t = [], rng.uniform(3, 10)
    for _ in range(n):
        dur = rng.uniform(1.0, 5.0)
        if t + dur > seconds - 2:
            break
        fade = rng.random() < 0.3
        out.append((round(t * FPS), round(dur * FPS), 10 if fade else 0))
        t += dur + rng.uniform(6, 20)
    return out


def make(args):
    index, out_dir, seconds, seed = args
    rng = random.Random(seed * 1000 + index)
    name = "stream-%02d.mp4" % index
    total = seconds * FPS
    w, h = {3: (480, 270), 4: (960, 540)}.get(index % 5, (W, H))
    font = ImageFont.load_default(size=h // 14)
    items = {n: item_frame(n, w, h) for n in ITEMS}
    refs = {n: np.array(bank_hash(item_frame(n))) for n in ITEMS}

    # Background shots, 6-20 s each, cut hard.
    shots, f = [], 0
    while f < total:
        length = min(total - f, round(rng.uniform(6, 20) * FPS))
        src = rgb(rng.choice(BACKGROUNDS)) if rng.random() < 0.75 else texture(rng)
        shots.append((f, Shot(rng, src, length, w, h)))
        f += length

    def background(i):
        start, shot = max((s for s in shots if s[0] <= i), key=lambda s: s[0])
        return shot.frame(i - start)

    appearances = []
    for start, frames, fade in plan(rng, seconds):
        appearances.append(
            {
                "start": start,
                "frames": frames,
                "fade": fade,
                "item": rng.choice(ITEMS),
                "transform": rng.choice(TRANSFORMS),
                "caption": rng.choice(CAPTIONS),
            }
        )
    low_bitrate = index % 4 == 2
    scenecut = index % 3 != 0
    cmd = [
        "gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
        "rawvideoparse", "width=%d" % w, "height=%d" % h, "format=rgb", "framerate=%d/1" % FPS, "!",
        "videoconvert", "!", "video/x-raw,format=I420", "!",
        "x264enc", "speed-preset=veryfast", "key-int-max=%d" % (2 * FPS), "bframes=0",
        "bitrate=%d" % (350 if low_bitrate else 1500), "threads=1",
    ] + ([] if scenecut else ["option-string=scenecut=0"]) + [
        "!", "h264parse", "!", "mp4mux", "!", "filesink", "location=%s" % os.path.join(out_dir, name),
    ]
    enc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    labels, manifest = [], []
    for i in range(total):
        frame = background(i)
        for a in appearances:
            k = i - a["start"]
            if 0 <= k < a["frames"]:
                shown = present(items[a["item"]], a["transform"], a["caption"], font)
                alpha = min(1.0, (k + 1) / a["fade"]) if a["fade"] else 1.0
                frame = Image.blend(frame, shown, alpha) if alpha < 1.0 else shown
                if alpha == 1.0 and "distance" not in a:
                    a["distance"] = best_distance(shown, refs[a["item"]])
        enc.stdin.write(frame.tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit("%s: encoder failed" % name)
    for a in appearances:
        # Visible from its first frame (the first of a fade, at 10% opacity) to the end of
        # its last one: a hash may match a faint copy, and a match is never "early".
        labels.append([round(a["start"] / FPS, 3), round((a["start"] + a["frames"]) / FPS, 3)])
        manifest.append(
            {
                "start_s": labels[-1][0],
                "end_s": labels[-1][1],
                "item": "standin-" + a["item"],
                "transform": a["transform"],
                "appearance": "fade" if a["fade"] else "cut",
                "pdq_distance_before_encoding": a.get("distance"),
            }
        )
    info = {"size": "%dx%d" % (w, h), "low_bitrate": low_bitrate, "scene_cut_keyframes": scenecut, "items": manifest}
    return name, labels, info


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    if a.files < 1 or a.seconds < 8:
        sys.exit("need --files >= 1 and --seconds >= 8")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "bank.csv"), "w") as f:
        f.write("# Stand-in bank for the generated test streams: PDQ hashes of benign CC0 /\n")
        f.write("# public-domain photos (scikit-image samples) as shown full frame at %dx%d.\n" % (W, H))
        for n in ITEMS:
            f.write("%s,standin-%s,synthetic stand-in (benign photo: %s)\n" % (to_hex(bank_hash(item_frame(n))), n, n))
    jobs = [(i, a.out, a.seconds, a.seed) for i in range(1, a.files + 1)]
    with Pool(max(1, a.jobs)) as pool:
        results = pool.map(make, jobs)
    labels = {name: lab for name, lab, _ in results}
    with open(os.path.join(a.out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1)
    with open(os.path.join(a.out, "items.json"), "w") as f:
        json.dump({name: info for name, _, info in results}, f, indent=1)
    with open(os.path.join(a.out, "replay.toml"), "w") as f:
        f.write(
            "# Replay config for the generated test streams (scripts/make-test-streams.sh).\n"
            "[sampler]\nmode = \"adaptive\"\n\n[analysis]\nworkers = 1\nmin_quality = 50\n\n"
            "[[banks]]\nname = \"standin\"\npath = \"%s\"\nformat = \"csv\"\nthreshold = 31\naction = \"halt\"\n"
            % os.path.abspath(os.path.join(a.out, "bank.csv"))
        )
    n = sum(len(v) for v in labels.values())
    far = [
        (name, it["start_s"], it["pdq_distance_before_encoding"])
        for name, _, info in results
        for it in info["items"]
        if it["pdq_distance_before_encoding"] is None or it["pdq_distance_before_encoding"] > 31
    ]
    print("%d files, %d labelled items in %s" % (len(labels), n, a.out))
    for name, t, d in far:
        print("note: %s item at %.2f s is %s bits from its bank entry before encoding" % (name, t, d))


if __name__ == "__main__":
    main()

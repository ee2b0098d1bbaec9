#!/usr/bin/env python3
"""Soak: many streams through a real nginx-rtmp for a long time, joining and leaving.

STREAMS publishers run at once (half calm, half showing a bank item), each publishing a
pre-encoded file once (-re, no re-encoding) under a fresh key and then leaving; a new one
takes its place after a short random pause. The item streams show the demo image (whose
hash is in the demo bank, action "halt") from ITEM_AT seconds in; the daemon must halt every
one of them (nginx drops the publisher) and none of the calm ones. The daemon's RSS and open
file descriptors are sampled every SAMPLE_S seconds; units and frames dropped are read per
stream from /api/v1/streams. Prints a summary (and writes it as JSON to SOAK_OUT if set).

    STREAMS=32 DURATION=1800 scripts/soak.sh      # the figures in BENCHMARKS.md
    STREAMS=8 DURATION=120 scripts/soak.sh        # a quick look

Needs scripts/setup.sh and ffmpeg (scripts/soak.sh installs it). Everything runs on
127.0.0.1 with free ports and is stopped by PID at the end. Not part of `make test`.
"""
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STREAMS = int(os.environ.get("STREAMS", "32"))
DURATION = int(os.environ.get("DURATION", "1800"))
CLIP_S = int(os.environ.get("CLIP_S", "60"))
ITEM_AT = int(os.environ.get("ITEM_AT", "20"))
SAMPLE_S = int(os.environ.get("SAMPLE_S", "10"))
WIDTH, HEIGHT = int(os.environ.get("WIDTH", "1280")), int(os.environ.get("HEIGHT", "720"))
BITRATE = int(os.environ.get("BITRATE", "3000"))
BIN = os.environ.get("STREAMGUARD", os.path.join(REPO, "target/release/streamguard"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def encode(path, image_at=None):
    """A CLIP_S-second H.264 FLV (2 s GOP, x264 defaults with B-frames off so that it
    matches what the live tests publish), showing the demo image from image_at for 10 s."""
    fps = 30
    caps = f"video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={fps}/1"
    enc = (f"x264enc speed-preset=veryfast key-int-max={2 * fps} bitrate={BITRATE} bframes=0 "
           f"! h264parse ! flvmux streamable=true ! filesink location={path}")
    if image_at is None:
        desc = f"videotestsrc pattern=smpte num-buffers={CLIP_S * fps} ! {caps} ! {enc}"
    else:
        img = os.path.join(REPO, "config/demo-image.png")
        show = 10 * fps
        after = (CLIP_S - image_at) * fps - show
        desc = (f"videotestsrc pattern=smpte num-buffers={image_at * fps} ! {caps} ! parts. "
                f"filesrc location={img} ! pngdec ! videoconvert ! videoscale ! imagefreeze num-buffers={show} "
                f"! {caps},pixel-aspect-ratio=1/1 ! parts. "
                f"videotestsrc pattern=smpte num-buffers={after} ! {caps} ! parts. "
                f"concat name=parts ! {enc}")
    subprocess.run(["gst-launch-1.0", "-q"] + desc.split(), check=True)


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    work = tempfile.mkdtemp(prefix="streamguard-soak-")
    procs = []

    def stop_all():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        calm, item = os.path.join(work, "calm.flv"), os.path.join(work, "item.flv")
        print(f"[soak] encoding {CLIP_S} s {WIDTH}x{HEIGHT} clips", flush=True)
        encode(calm)
        encode(item, ITEM_AT)
        rtmp, http, api = free_port(), free_port(), free_port()
        os.makedirs(os.path.join(work, "nginx/logs"))
        with open(os.path.join(work, "nginx/nginx.conf"), "w") as f:
            f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; worker_processes 1; pid {work}/nginx/nginx.pid; error_log {work}/nginx/logs/error.log;
events {{ worker_connections 4096; }}
rtmp {{ server {{ listen 127.0.0.1:{rtmp}; application live {{ live on; record off; idle_streams off;
  notify_method get;
  on_publish http://127.0.0.1:{api}/ingest/nginx/on_publish;
  on_publish_done http://127.0.0.1:{api}/ingest/nginx/on_publish_done; }} }} }}
http {{ access_log off; client_body_temp_path {work}/nginx/body;
  server {{ listen 127.0.0.1:{http}; location /stat {{ rtmp_stat all; }} location /control {{ rtmp_control all; }} }} }}
""")
        with open(os.path.join(work, "sg.toml"), "w") as f:
            f.write(f"""[daemon]
log_level = "warn"
[[banks]]
name = "demo"
path = "{REPO}/config/demo-bank.txt"
action = "halt"
[http]
listen = "127.0.0.1:{api}"
[store]
path = "{work}/sg.db"
[ingest]
server = "nginx-rtmp"
stat_url = "http://127.0.0.1:{http}/stat"
params = {{ url = "rtmp://127.0.0.1:{rtmp}/live/{{name}}" }}
[actuator]
kind = "nginx-rtmp"
control_url = "http://127.0.0.1:{http}/control"
""")
        sg_log = open(os.path.join(work, "sg.log"), "w")
        sg = subprocess.Popen([BIN, "run", "--config", os.path.join(work, "sg.toml")],
                              stdout=subprocess.DEVNULL, stderr=sg_log)
        procs.append(sg)
        for _ in range(100):
            try:
                if get_json(f"http://127.0.0.1:{api}/readyz")["ready"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(work, "nginx/nginx.conf"),
                                  "-p", os.path.join(work, "nginx")])
        procs.append(nginx)
        time.sleep(1)
        rss = [proc_rss_kb(sg.pid)]
        fds = [proc_fds(sg.pid)]
        cpu0 = proc_cpu_s(sg.pid)

        # slots: (kind, key, process, started) ; half calm, half items
        published = []  # (kind, key, started_ms, ended_ms or None)
        slots = [None] * STREAMS
        next_start = [time.time() + random.uniform(0, 5) for _ in range(STREAMS)]
        counter = 0
        t_end = time.time() + DURATION
        last_sample = time.time()
        dropped = {}  # stream id -> (units_dropped, frames_dropped), max seen
        while time.time() < t_end:
            now = time.time()
            for i in range(STREAMS):
                kind = "calm" if i % 2 == 0 else "item"
                s = slots[i]
                if s is not None and s[2].poll() is not None:
                    published[s[3]][3] = int(now * 1000)
                    slots[i] = None
                    next_start[i] = now + random.uniform(0, 5)
                if slots[i] is None and now >= next_start[i] and now + CLIP_S < t_end + 5:
                    counter += 1
                    key = f"{kind}-{counter}"
                    p = subprocess.Popen(
                        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i",
                         calm if kind == "calm" else item, "-c", "copy", "-f", "flv",
                         f"rtmp://127.0.0.1:{rtmp}/live/{key}"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    procs.append(p)
                    published.append([kind, key, int(now * 1000), None])
                    slots[i] = (kind, key, p, len(published) - 1)
            if now - last_sample >= SAMPLE_S:
                last_sample = now
                rss.append(proc_rss_kb(sg.pid))
                fds.append(proc_fds(sg.pid))
                try:
                    for st in get_json(f"http://127.0.0.1:{api}/api/v1/streams")["streams"]:
                        u, fr = st.get("units_dropped", 0), st.get("frames_dropped", 0)
                        old = dropped.get(st["id"], (0, 0))
                        dropped[st["id"]] = (max(old[0], u), max(old[1], fr))
                except OSError as e:
                    print(f"[soak] /api/v1/streams: {e}", flush=True)
                procs[:] = [p for p in procs if p.poll() is None or p in (sg, nginx)]
                live = sum(1 for s in slots if s is not None)
                print(f"[soak] t={int(DURATION - (t_end - now))}s live={live} published={len(published)} "
                      f"rss={rss[-1] / 1024:.0f}MiB fds={fds[-1]}", flush=True)
            time.sleep(0.2)
        # Let the last ones finish (or be halted).
        for s in slots:
            if s is not None:
                try:
                    s[2].wait(timeout=CLIP_S + 30)
                except subprocess.TimeoutExpired:
                    s[2].kill()
                published[s[3]][3] = int(time.time() * 1000)
        time.sleep(8)  # callbacks and reconciliation see them go
        cpu1 = proc_cpu_s(sg.pid)
        rss.append(proc_rss_kb(sg.pid))
        fds.append(proc_fds(sg.pid))
        audit, before = [], ""
        while True:  # newest first, 1000 a page
            page = get_json(f"http://127.0.0.1:{api}/api/v1/audit?limit=1000{before}")["audit"]
            audit += page
            if len(page) < 1000:
                break
            before = f"&before={page[-1]['id']}"
        halts = {e["stream"]: e["at_ms"] for e in audit if e["event"] == "halt"}
        items = [p for p in published if p[0] == "item"]
        calms = [p for p in published if p[0] == "calm"]
        # An item publish that ran past the image's first frame must be halted.
        reached = [p for p in items if p[3] is not None and p[3] - p[2] >= (ITEM_AT + 1) * 1000]
        halted_items = [p for p in reached if f"live/{p[1]}" in halts]
        ttd = sorted((halts[f"live/{p[1]}"] - p[2]) / 1000 - ITEM_AT for p in halted_items)
        false_halts = [p[1] for p in calms if f"live/{p[1]}" in halts]
        early = [p[1] for p in items if f"live/{p[1]}" in halts
                 and halts[f"live/{p[1]}"] - p[2] < ITEM_AT * 1000]
        summary = {
            "streams": STREAMS, "duration_s": DURATION, "clip_s": CLIP_S,
            "video": f"{WIDTH}x{HEIGHT} 30 fps {BITRATE} kbit/s GOP 2 s",
            "published": len(published), "calm_published": len(calms),
            "item_published": len(items), "item_reached_image": len(reached),
            "item_halted": len(halted_items), "calm_halted": len(false_halts),
            "halted_before_image": len(early),
            "halt_after_image_s": {"median": statistics.median(ttd) if ttd else None,
                                   "max": max(ttd) if ttd else None},
            "rss_mib": {"start": rss[0] / 1024, "end": rss[-1] / 1024, "max": max(rss) / 1024},
            "fds": {"start": fds[0], "end": fds[-1], "max": max(fds)},
            "units_dropped": sum(d[0] for d in dropped.values()),
            "frames_dropped": sum(d[1] for d in dropped.values()),
            "cpu_s_per_stream_minute": (cpu1 - cpu0) / (STREAMS * DURATION / 60),
            "daemon_alive": sg.poll() is None,
        }
        print(json.dumps(summary, indent=2))
        if os.environ.get("SOAK_OUT"):
            with open(os.environ["SOAK_OUT"], "w") as f:
                json.dump(summary, f, indent=2)
        ok = (summary["daemon_alive"] and len(halted_items) == len(reached)
              and not false_halts and not early)
        if not ok:
            print(f"[soak] FAILED: missed items "
                  f"{[p[1] for p in reached if p not in halted_items]}, false halts {false_halts}, "
                  f"halted before the image {early}; daemon log {work}/sg.log", flush=True)
            return 1
        return 0
    finally:
        stop_all()
        if os.environ.get("SOAK_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

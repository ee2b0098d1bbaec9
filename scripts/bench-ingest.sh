#!/usr/bin/env bash
# Ingest cost, streamguard vs the naive approach, same streams, same run (see BENCHMARKS.md).
#
# Publishes N copies of a 720p30 H.264 stream (3 Mbit/s, 2 s GOP, generated once with
# x264enc) into a private nginx-rtmp on loopback, then measures over DURATION seconds:
#  1. streamguard discovering them by reconciliation and sampling keyframes only, one frame
#     every 2 s (PDQ + demo bank on each), as one process;
#  2. the naive approach: one `ffmpeg -i rtmp://... -vf fps=1/2 -f image2pipe` per stream.
# Reports CPU-seconds per stream-minute (utime+stime from /proc) and RSS per stream.
# Needs scripts/setup.sh; installs ffmpeg if missing (Debian package).
#   N=4 DURATION=60 scripts/bench-ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-4}
DURATION=${DURATION:-60}
command -v ffmpeg >/dev/null || { echo "[bench] installing ffmpeg"; apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tck=$(getconf CLK_TCK)
cpu_ticks() { # total utime+stime of the given PIDs
  local t=0; for p in "$@"; do read -r -a f < "/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
rss_kb() { local t=0; for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }

cargo build -q --release
sample="$work/sample.flv"
echo "[bench] encoding a 60 s 720p30 sample"
gst-launch-1.0 -q videotestsrc pattern=smpte num-buffers=1800 \
  ! video/x-raw,width=1280,height=720,framerate=30/1 \
  ! x264enc speed-preset=veryfast key-int-max=60 bitrate=3000 ! h264parse ! flvmux ! filesink location="$sample"

rtmp=$(free_port); http=$(free_port); api=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; worker_processes 1; pid $work/nginx/nginx.pid; error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:$rtmp; application live { live on; record off; } } }
http { access_log off; client_body_temp_path $work/nginx/body;
  server { listen 127.0.0.1:$http; location /stat { rtmp_stat all; } } }
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)
sleep 1

cat > "$work/sg.toml" <<CONF
[daemon]
log_level = "warn"
[sampler]
mode = "keyframes"
interval_ms = 2000
[[banks]]
name = "demo"
path = "$PWD/config/demo-bank.txt"
[http]
listen = "127.0.0.1:$api"
[store]
path = "$work/sg.db"
[ingest]
server = "nginx-rtmp"
stat_url = "http://127.0.0.1:$http/stat"
reconcile_ms = 1000
params = { url = "rtmp://127.0.0.1:$rtmp/live/{name}" }
CONF
./target/release/streamguard run --config "$work/sg.toml" & sg=$!; pids+=($sg)
sleep 2
rss0=$(rss_kb "$sg")
for i in $(seq 1 "$N"); do
  ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$sample" -c copy -f flv "rtmp://127.0.0.1:$rtmp/live/s$i" 2>/dev/null & pids+=($!)
done
echo "[bench] waiting for streamguard to watch all $N streams"
for _ in $(seq 1 60); do
  running=$(curl -s "http://127.0.0.1:$api/api/v1/streams" | python3 -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin)["streams"] if s["state"]=="running" and s["units_received"]>0))')
  [ "$running" -ge "$N" ] && break; sleep 1
done
sleep 5
t0=$(cpu_ticks "$sg"); sleep "$DURATION"; t1=$(cpu_ticks "$sg")
rss1=$(rss_kb "$sg")
analysed=$(curl -s "http://127.0.0.1:$api/api/v1/streams" | python3 -c 'import json,sys; print(sum(s["frames_analysed"] for s in json.load(sys.stdin)["streams"]))')
kill "$sg"; wait "$sg" 2>/dev/null || true

naive=()
for i in $(seq 1 "$N"); do
  ffmpeg -nostdin -loglevel error -i "rtmp://127.0.0.1:$rtmp/live/s$i" -vf fps=1/2 -f image2pipe -c:v png - > /dev/null 2>&1 & naive+=($!); pids+=($!)
done
sleep 5
n0=$(cpu_ticks "${naive[@]}"); sleep "$DURATION"; n1=$(cpu_ticks "${naive[@]}")
nrss=$(rss_kb "${naive[@]}")

python3 - "$N" "$DURATION" "$tck" "$t0" "$t1" "$n0" "$n1" "$rss0" "$rss1" "$nrss" "$analysed" <<'PY'
import sys
n, dur, tck, t0, t1, n0, n1, rss0, rss1, nrss, analysed = map(int, sys.argv[1:])
minutes = dur / 60
sg = (t1 - t0) / tck / n / minutes
nv = (n1 - n0) / tck / n / minutes
print(f"streams={n} duration_s={dur} 720p30 3 Mbit/s, GOP 2 s, 1 sample / 2 s")
print(f"streamguard: {sg:.3f} CPU-s per stream-minute, RSS {rss1/1024:.1f} MiB total, "
      f"{(rss1-rss0)/1024/n:.1f} MiB per stream (over {rss0/1024:.1f} MiB idle), frames analysed {analysed}")
print(f"naive ffmpeg fps=1/2: {nv:.3f} CPU-s per stream-minute, RSS {nrss/1024/n:.1f} MiB per stream")
print(f"ratio naive/streamguard: {nv/sg:.1f}x")
PY

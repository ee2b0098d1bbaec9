#!/usr/bin/env bash
# Adaptive vs fixed sampling on the labelled replay set, side by side in one run (see
# BENCHMARKS.md). Generates the set with scripts/make-test-streams.sh if it is missing
# (SEED picks another set: SEED=2 writes var/test-streams-seed2), builds the release binary
# and replays every file with:
#   config (adaptive)  the adaptive controller at its defaults
#   all:2000           decode every frame, analyse one per 2 s (what fixed-interval tools do)
#   keyframes:2000     decode keyframes only, analyse one per 2 s
# Writes the tables to stdout and the JSON to var/bench-replay[-seedN].json.
#   scripts/bench-replay.sh            SEED=2 scripts/bench-replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${SEED:-1}
suffix=$([[ $SEED == 1 ]] && echo "" || echo "-seed$SEED")
set_dir=var/test-streams$suffix
if [[ ! -f $set_dir/labels.json ]]; then
  scripts/make-test-streams.sh "$set_dir" --seed "$SEED"
fi
cargo build -q --release
files=("$set_dir"/stream-*.mp4)
args=(replay --config "$set_dir/replay.toml" --labels "$set_dir/labels.json"
  --compare all:2000 --compare keyframes:2000)
json=var/bench-replay$suffix.json
./target/release/streamguard "${args[@]}" --json "${files[@]}" > "$json"
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("| policy | items detected | missed | median TTD (s) | p95 TTD (s) | frames decoded | frames analysed | decoded + analysed | false matches | CPU-s per stream-minute |")
print("|---|---|---|---|---|---|---|---|---|---|")
f = lambda v: "-" if v is None else "%.2f" % v
for s in d["overall"]:
    print("| %s | %d / %d | %d | %s | %s | %d | %d | %d | %d | %.3f |" % (
        s["policy"], s["detected"], s["items"], s["missed"], f(s["ttd_median_s"]), f(s["ttd_p95_s"]),
        s["frames_decoded"], s["frames_analysed"], s["frames_decoded"] + s["frames_analysed"],
        s["false_matches"], s["cpu_s_per_stream_min"]))
PY
echo "[bench] JSON in $json"

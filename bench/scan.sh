#!/usr/bin/env bash
# Secret scan of the build context (issue 15, part 5): what the scan of copy sources costs
# a build, same binary, same run, with the scan and without it (GCR_NO_CONTEXT_SCAN=1, a
# switch for this bench only).
#   cold build   1,000 mixed text files (~100 B to 40 KB, ~7 MB) copied from scratch, in a
#                fresh store each run (no file-metadata index: every file is read, hashed,
#                scanned and packed) -- bar: the scan adds at most 5 %
#   cached build the same context again in the same store: no file is read, so none is
#                scanned -- shown for completeness, no bar
source "$(dirname "$0")/lib.sh"
build_gcr
work=$(mktemp -d /tmp/gcr-bench-scan.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export GCR_RUN_DIR="$work/run"
ctx="$work/ctx"

# The context: source-like files of realistic sizes (log-uniform 100 B to 40 KB), a few
# config files with key = value lines that are not secrets, and one README.
python3 - "$ctx" <<'PY'
import math, os, random, sys
ctx = sys.argv[1]
rng = random.Random(15)
words = ("let const return if else for while fn def class import from self value name "
         "config path file error result data user token_count password_policy api_version "
         "request response handler service client server build cache layer digest").split()
kinds = [".py", ".js", ".rs", ".go", ".json", ".yaml", ".md", ".txt", ".toml", ".html"]
os.makedirs(os.path.join(ctx, "src"), exist_ok=True)
total = 0
for i in range(1000):
    d = os.path.join(ctx, "src", f"mod{i % 37}")
    os.makedirs(d, exist_ok=True)
    size = int(math.exp(rng.uniform(math.log(100), math.log(40_000))))
    lines, n = [], 0
    while n < size:
        w = [rng.choice(words) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.05:
            line = f'{w[0]}_setting = "{rng.choice(words)}-{rng.randint(1, 99)}"'
        else:
            line = " ".join(w) + rng.choice([";", ":", " {", "", ","])
        line = " " * (4 * rng.randint(0, 3)) + line
        lines.append(line)
        n += len(line) + 1
    body = "\n".join(lines) + "\n"
    total += len(body)
    with open(os.path.join(d, f"file{i}{kinds[i % len(kinds)]}"), "w") as f:
        f.write(body)
print(f"context: 1000 files, {total / 1e6:.1f} MB", file=sys.stderr)
PY
cat > "$ctx/app.gcr" <<'SPEC'
format: gcr-v1.0
name: bench/scan
version: "1"
base: scratch
build:
  copy:
    - src: ./src/
      dest: /app/
SPEC

# Sanity: the scan finds nothing here, and refuses a planted key (so it is really on).
GCR_ROOT="$work/check" "$GCR" build -q "$ctx" >/dev/null
printf 'k = %s%s\n' "gh" "p_Zq3x9LmN2pR7sT1vW4yB6cD8fG0hJ5kQ2aE9" > "$ctx/src/mod0/planted.txt"
if GCR_ROOT="$work/check" "$GCR" build -q "$ctx" >/dev/null 2>&1; then
  echo "bench: the scan did not refuse a planted token" >&2
  exit 1
fi
rm "$ctx/src/mod0/planted.txt"

# Timed runs alternate scan / no scan (which goes first alternates too), so drift in the
# machine's load (it is shared) hits both alike; medians of each.
# time_pairs NAME RUNS FRESH: prints "median_on median_off" in ms; FRESH=1 empties the
# store before every run (a cold build), else builds into the one store (cached).
time_pairs() {
  python3 - "$1" "$2" "$3" "$GCR" "$ctx" "$work" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time
name, runs, fresh, gcr, ctx, work = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", *sys.argv[4:]
root = os.path.join(work, name)
times = {"1": [], "0": []}
def once(off):
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    env = dict(os.environ, GCR_ROOT=root, GCR_NO_CONTEXT_SCAN=off)
    t = time.perf_counter()
    subprocess.run([gcr, "build", "-q", ctx], env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000
for _ in range(3):  # warm-up
    once("0"); once("1")
for i in range(runs):
    for off in (("0", "1") if i % 2 == 0 else ("1", "0")):
        times[off].append(once(off))
json.dump(times, open(os.path.join(os.environ["RESULTS"], f"scan-{name}.json"), "w"))
print("%.2f %.2f" % (statistics.median(times["0"]), statistics.median(times["1"])))
PY
}
export RESULTS
read -r cold_on cold_off < <(time_pairs cold "${RUNS:-21}" 1)
read -r cached_on cached_off < <(time_pairs cached 50 0)
cold_bar=$(python3 -c "print('%.2f' % ($cold_off * 1.05))")
report "gcr build cold, 1,000 files, scan on vs off" "$cold_on" "GCR_NO_CONTEXT_SCAN=1" "$cold_off" "$cold_bar"
report "gcr build cached, 1,000 files, scan on vs off" "$cached_on" "GCR_NO_CONTEXT_SCAN=1" "$cached_off" "-"
python3 - "$cold_on" "$cold_off" "$cached_on" "$cached_off" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
on, off, con, coff = map(float, sys.argv[1:])
print(f"  secret scan: {on - off:+.2f} ms on a {off:.2f} ms cold build = {100 * (on - off) / off:+.1f} % (bar +5 %); "
      f"cached rebuild {con - coff:+.2f} ms")
PY

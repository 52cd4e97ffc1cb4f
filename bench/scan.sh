#!/usr/bin/env bash
# Secret scan of the build context (issue 15, part 5): what the scan of copy sources costs
# a build, same binary, same run, with the scan and without it (GCR_NO_CONTEXT_SCAN=1, a
# switch for this bench only).
#   cold build   1,000 mixed text files (~100 B to 40 KB, ~7 MB) copied from scratch, in a
#                fresh store each run (no file-metadata index: every file is read, hashed,
#                scanned and packed) -- bar: the scan adds at most 5 %
#   cached build the same context again in the same store: no file is read, so no file is
#                scanned -- shown for completeness, no bar
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine
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

# A fresh store before each cold run.
cat > "$work/fresh.sh" <<EOF
#!/bin/sh
rm -rf "$work/cold" && mkdir -p "$work/cold"
EOF
chmod +x "$work/fresh.sh"

# Sanity: the scan finds nothing here, and refuses a planted key (so it is really on).
GCR_ROOT="$work/check" "$GCR" build -q "$ctx" >/dev/null
printf 'k = %s%s\n' "gh" "p_Zq3x9LmN2pR7sT1vW4yB6cD8fG0hJ5kQ2aE9" > "$ctx/src/mod0/planted.txt"
if GCR_ROOT="$work/check" "$GCR" build -q "$ctx" >/dev/null 2>&1; then
  echo "bench: the scan did not refuse a planted token" >&2
  exit 1
fi
rm "$ctx/src/mod0/planted.txt"

runs=${RUNS:-21}
export GCR_ROOT="$work/cold"
hyperfine -N --warmup 3 --runs "$runs" --prepare "$work/fresh.sh" \
  --export-json "$RESULTS/scan-cold.json" \
  -n scan "env GCR_NO_CONTEXT_SCAN=0 $GCR build -q $ctx" \
  -n no-scan "env GCR_NO_CONTEXT_SCAN=1 $GCR build -q $ctx" >/dev/null

export GCR_ROOT="$work/cached"
"$GCR" build -q "$ctx" >/dev/null
hyperfine -N --warmup 5 --runs 50 --export-json "$RESULTS/scan-cached.json" \
  -n scan "env GCR_NO_CONTEXT_SCAN=0 $GCR build -q $ctx" \
  -n no-scan "env GCR_NO_CONTEXT_SCAN=1 $GCR build -q $ctx" >/dev/null

# median NAME INDEX: the median (ms) of result INDEX of $RESULTS/NAME.json.
median() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]; print("%.2f" % (r["median"]*1000))' "$RESULTS/$1.json" "$2"
}
cold_on=$(median scan-cold 0)
cold_off=$(median scan-cold 1)
cached_on=$(median scan-cached 0)
cached_off=$(median scan-cached 1)
cold_bar=$(python3 -c "print('%.2f' % ($cold_off * 1.05))")
report "gcr build cold, 1,000 files, scan on vs off" "$cold_on" "GCR_NO_CONTEXT_SCAN=1" "$cold_off" "$cold_bar"
report "gcr build cached, 1,000 files, scan on vs off" "$cached_on" "GCR_NO_CONTEXT_SCAN=1" "$cached_off" "-"
python3 - "$cold_on" "$cold_off" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
on, off = map(float, sys.argv[1:])
print(f"  secret scan: {on - off:+.2f} ms on a {off:.2f} ms cold build = {100 * (on - off) / off:+.1f} % (bar +5 %)")
PY

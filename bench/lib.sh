#!/usr/bin/env bash
# Shared helpers for gcr benchmarks: peers installed on demand, hyperfine medians, ratios.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=${RESULTS:-$BENCH_DIR/results}
mkdir -p "$RESULTS"

need_pkgs() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build_gcr: GCR = a release build of the checkout, or GCR_BIN when set (a binary built
# already, e.g. one of a before/after pair).
build_gcr() {
  if [ -n "${GCR_BIN:-}" ]; then GCR=$GCR_BIN; return; fi
  GCR=$("$REPO/scripts/build.sh")
}

# podman on this host: runc (crun refuses the hybrid cgroup layout) and no default ulimits
# above the host's hard limits.
setup_podman() {
  need_pkgs podman
  mkdir -p /etc/containers
  if ! grep -q '^default_ulimits' /etc/containers/containers.conf 2>/dev/null; then
    printf '[containers]\ndefault_ulimits = []\n' >> /etc/containers/containers.conf
  fi
}

# buildah_ids: the IDs of every image (intermediate ones too) and container in buildah's
# store, one a line. Save them before a run; buildah_cleanup removes only what is new since.
buildah_ids() {
  { buildah images -a -q --no-trunc; buildah containers -a -q --notruncate; } 2>/dev/null | sort -u
}

# buildah_cleanup BEFORE_FILE: removes the containers, then the images, that are not listed in
# BEFORE_FILE (repeatedly: a layer image goes only after the images built on it).
buildah_cleanup() {
  local before=$1 pass id new
  for id in $(buildah containers -a -q --notruncate 2>/dev/null); do
    grep -qxF "$id" "$before" || buildah rm "$id" >/dev/null 2>&1 || true
  done
  for pass in 1 2 3 4 5; do
    new=$(buildah images -a -q --no-trunc 2>/dev/null | grep -vxF -f "$before" || true)
    [ -n "$new" ] || return 0
    for id in $new; do buildah rmi -f "$id" >/dev/null 2>&1 || true; done
  done
  echo "bench: buildah images left behind: $new" >&2
}

# private_podman DIR: sets PODMAN to a podman command line using a store under DIR only, so
# images from other runs (or from buildah, which shares podman's default store) do not count.
private_podman() {
  mkdir -p "$1/root" "$1/runroot"
  PODMAN="podman --root $1/root --runroot $1/runroot"
}

# private_podman_cleanup DIR: empties the store made by private_podman, unmounts what podman
# left mounted under DIR and deletes it.
private_podman_cleanup() {
  local dir=$1
  [ -d "$dir" ] || return 0
  podman --root "$dir/root" --runroot "$dir/runroot" rm -a -f >/dev/null 2>&1 || true
  podman --root "$dir/root" --runroot "$dir/runroot" rmi -a -f >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$dir"
}

# median_ms NAME: median of a hyperfine JSON export, in milliseconds.
median_ms() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f" % (r["median"]*1000))' "$RESULTS/$1.json"
}

# hf NAME RUNS CMD: hyperfine with warmup; exports $RESULTS/NAME.json.
hf() {
  local name=$1 runs=$2; shift 2
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$RESULTS/$name.json" "$@" >/dev/null 2>&1 \
    || hyperfine --warmup 5 --runs "$runs" --export-json "$RESULTS/$name.json" "$@" >/dev/null
}

# report LABEL GCR_MS PEER_LABEL PEER_MS BAR_MS
report() {
  python3 - "$@" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
label, g, peer, p, bar = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ratio = f"{g/float(p):.3f}" if p not in ("", "-") and float(p) > 0 else "-"
ok = "PASS" if bar == "-" or g <= float(bar) else "FAIL"
print(f"{label:<48} gcr {g:8.2f} ms | {peer:<22} {p:>8} ms | gcr/peer {ratio:>6} | bar {bar} ms {ok}")
PY
}

mk_busybox_tar() {
  local out=$1 dir
  dir=$(mktemp -d)
  "$REPO/scripts/mkrootfs.sh" "$dir/rootfs"
  tar -C "$dir/rootfs" -cf "$out" .
  rm -rf "$dir"
}

# cpu_ticks: "busy steal" jiffies of all CPUs so far (from /proc/stat). The VMs these
# benchmarks run on share their host: time stolen by the host during a timed section makes
# every figure in it slower, so reports show it next to the figures.
cpu_ticks() {
  awk '/^cpu /{print $2+$3+$4+$7+$8, $9}' /proc/stat
}

# steal_note LABEL BEFORE AFTER RUNS: one line on the host's steal over a timed section.
steal_note() {
  local label=$1 runs=$4 b0 s0 b1 s1
  read -r b0 s0 <<<"$2"
  read -r b1 s1 <<<"$3"
  local hz
  hz=$(getconf CLK_TCK)
  python3 - "$label" "$b0" "$s0" "$b1" "$s1" "$runs" "$hz" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
label, b0, s0, b1, s1, runs, hz = sys.argv[1], *map(float, sys.argv[2:])
busy = (b1 - b0) * 1000 / hz / runs
steal = (s1 - s0) * 1000 / hz / runs
print(f"  {label}: host steal {steal:.2f} ms per run, busy CPU (all processes) {busy:.2f} ms per run")
PY
}

# interleave PREFIX RUNS PREPARE NAME=CMD...: runs the commands in turns, in a new random
# order every round (3 warm-up rounds), PREPARE (a shell command, untimed) before each; the
# shared machine's drifts (load, page cache, disk writeback) then weigh on every command
# alike, where back-to-back hyperfine batches charge them to whichever ran during them.
# CMD runs directly when it is a plain command line, else through sh -c. Exports
# $RESULTS/PREFIX-NAME.json (read with median_ms).
interleave() {
  python3 - "$RESULTS" "$@" <<'PY'
import json, os, random, shlex, subprocess, sys, time
results, prefix, runs, prepare = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cmds = dict(a.split("=", 1) for a in sys.argv[5:])
# A plain command line runs without a shell in between (as hyperfine -N): a shell's own
# start would be added to both sides of every ratio.
argv = {k: (shlex.split(c) if not any(ch in c for ch in "|&;<>()$`\\\"'*?[]{}~") else ["sh", "-c", c])
        for k, c in cmds.items()}
times = {k: [] for k in cmds}
order = list(cmds)
for i in range(runs + 3):
    random.shuffle(order)
    for k in order:
        if prepare:
            subprocess.run(["sh", "-c", prepare], check=True)
        t = time.perf_counter()
        subprocess.run(argv[k], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        if i >= 3:
            times[k].append(time.perf_counter() - t)
for k, ts in times.items():
    ts.sort()
    json.dump({"results": [{"command": cmds[k], "median": ts[len(ts) // 2], "times": ts}]},
              open(os.path.join(results, f"{prefix}-{k}.json"), "w"))
PY
}

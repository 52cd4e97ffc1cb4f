#!/usr/bin/env bash
# docker cp bar (issue 19), side by side in the same run on the same 100 MB tree
# (1,000 files of 100 KiB in 10 directories):
#   gcr cp CONTAINER:/tree DEST   ≤ 1.2× `tar c | tar x` of the same tree on the host
# measured out of a running container (read through /proc/PID/root) and out of a stopped
# one (read through its layers). GCR=path uses that gcr binary instead of building one.
# RUNS scales the run counts.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
if [ -n "${GCR:-}" ]; then :; else build_gcr; fi
runs=${RUNS:-10}
export GCR_ROOT=$(mktemp -d /var/tmp/gcr-bench-cp.XXXXXX)   # on disk, as the host tree
export GCR_RUN_DIR=$(mktemp -d /tmp/gcr-bench-cp-run.XXXXXX)
work=$(mktemp -d /var/tmp/gcr-bench-cp-work.XXXXXX)
cleanup() {
  "$GCR" rm -f bench-cp-live bench-cp-stopped >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep -F "$GCR_RUN_DIR" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$GCR_ROOT" "$GCR_RUN_DIR" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" localhost/bench/busybox:1 >/dev/null

tree="$work/tree"
for d in $(seq 1 10); do
  mkdir -p "$tree/d$d"
  for f in $(seq 1 100); do head -c 102400 /dev/urandom > "$tree/d$d/f$f"; done
done
"$GCR" run -d --name bench-cp-live localhost/bench/busybox:1 sleep 3600 >/dev/null
"$GCR" cp "$tree" bench-cp-live:/tree
"$GCR" create --name bench-cp-stopped localhost/bench/busybox:1 true >/dev/null
"$GCR" cp "$tree" bench-cp-stopped:/tree

out="$work/out"
# The three copies take turns (lib.sh interleave). Before each, untimed: the output is
# removed and `sync` writes back every dirty page, so no copy pays for its predecessor's
# writeback; the sources stay in the page cache (all three read warm files).
interleave cp "$runs" "rm -rf $out; mkdir -p $out; sync" \
  "tar=tar -C $work -cf - tree | tar -C $out -xf -" \
  "live=$GCR cp bench-cp-live:/tree $out/tree" \
  "stopped=$GCR cp bench-cp-stopped:/tree $out/tree"
report "cp 100 MB out of a running container" "$(median_ms cp-live)" "tar c | tar x" "$(median_ms cp-tar)" -
report "cp 100 MB out of a stopped container" "$(median_ms cp-stopped)" "tar c | tar x" "$(median_ms cp-tar)" -
python3 - "$(median_ms cp-live)" "$(median_ms cp-stopped)" "$(median_ms cp-tar)" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
live, stopped, tar = map(float, sys.argv[1:])
for label, r in [("cp out, running", live / tar), ("cp out, stopped", stopped / tar)]:
    print(f"  bar {label}: {r:.3f}x (bar 1.2x) {'PASS' if r <= 1.2 else 'FAIL'}")
PY

#!/usr/bin/env bash
# Runtime bars (issue 3), side by side with runc (prepared bundle on the same rootfs) and
# podman in the same run:
#   gcr run --rm --network none IMG /bin/true   (bar 6 ms; runc run ~22 ms, podman ~175 ms)
#   gcr stop of a container that exits on SIGTERM (bar 30 ms)
#   100 concurrent gcr run -d                     (bar 3 s, no error)
#   supervisor RSS per running container          (bar 3 MB)
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static runc
build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-run.XXXXXX)
work=$(mktemp -d)
cleanup() {
  "$GCR" ps -aq 2>/dev/null | xargs -r "$GCR" rm -f >/dev/null 2>&1 || true
  runc delete -f gcrbench >/dev/null 2>&1 || true
  rm -rf "$GCR_ROOT" "$work"
}
trap cleanup EXIT

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" bench/busybox:1 >/dev/null

# runc: an equivalent bundle on the same rootfs (unpacked from the same tar).
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/busybox.tar"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open("config.json", "w"))
PY
)
# Let the setup's writes (image import, bundle unpack) reach the disk before timing: on this
# host's ext4 (no journal) a container start in the half-minute after a bulk write pays
# ~5 ms more system time in the inode allocator (see docs/NOTES.md).
sync
t0=$(cpu_ticks)
hf gcr-run-true 100 "$GCR run --rm --network none bench/busybox:1 /bin/true"
t1=$(cpu_ticks)
hf runc-run-true 50 "runc run --bundle $work/bundle gcrbench"
t2=$(cpu_ticks)
PODMAN_MS=-
if command -v podman >/dev/null || [ "${BENCH_PODMAN:-1}" = 1 ]; then
  setup_podman
  "$GCR" save -o "$work/bb.tar" bench/busybox:1
  if podman load -q -i "$work/bb.tar" >/dev/null 2>&1; then
    hf podman-run-true 10 "podman --runtime runc run --rm --network none localhost/bench/busybox:1 /bin/true"
    PODMAN_MS=$(median_ms podman-run-true)
  fi
fi
report "gcr run --rm --network none IMG /bin/true" "$(median_ms gcr-run-true)" "runc run (bundle)" "$(median_ms runc-run-true)" 6
[ "$PODMAN_MS" = - ] || report "gcr run --rm --network none IMG /bin/true" "$(median_ms gcr-run-true)" "podman run --rm" "$PODMAN_MS" 6
steal_note "gcr run (105 runs incl. warmup)" "$t0" "$t1" 105
steal_note "runc run (55 runs incl. warmup)" "$t1" "$t2" 55

# stop: a container that exits on SIGTERM (busybox sh traps TERM).
stop_times=()
for i in $(seq 1 20); do
  "$GCR" run -d --name stopme bench/busybox:1 sh -c 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done' >/dev/null
  sleep 0.05
  s=$(date +%s%N); "$GCR" stop stopme >/dev/null; e=$(date +%s%N)
  stop_times+=($(( (e - s) / 1000 )))
  "$GCR" rm stopme >/dev/null
done
STOP_MS=$(printf '%s\n' "${stop_times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}')
# runc: kill TERM + wait for the same kind of container.
runc_stop=()
python3 - "$work/bundle/config.json" <<'PY'
import json,sys
c=json.load(open(sys.argv[1])); c["process"]["args"]=["sh","-c","trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]
json.dump(c,open(sys.argv[1],"w"))
PY
for i in $(seq 1 10); do
  runc run -d --bundle "$work/bundle" gcrbench >/dev/null 2>&1 </dev/null
  sleep 0.05
  s=$(date +%s%N); runc kill gcrbench TERM; while [ "$(runc state gcrbench 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)" = running ]; do :; done; e=$(date +%s%N)
  runc_stop+=($(( (e - s) / 1000 )))
  runc delete -f gcrbench >/dev/null 2>&1
done
RUNC_STOP_MS=$(printf '%s\n' "${runc_stop[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}')
report "gcr stop (exits on SIGTERM)" "$STOP_MS" "runc kill TERM + state" "$RUNC_STOP_MS" 30

# 100 concurrent run -d.
s=$(date +%s%N)
fails=0
pids=()
for i in $(seq 1 100); do
  "$GCR" run -d --name "c$i" bench/busybox:1 sleep 300 >/dev/null 2>"$work/err$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
e=$(date +%s%N)
up=$("$GCR" ps -q | wc -l)
CONC_MS=$(( (e - s) / 1000000 ))
echo "100 concurrent run -d: ${CONC_MS} ms, $up running, $fails failed" | tee -a "$RESULTS/summary.txt"
cat "$work"/err* 2>/dev/null | sort | uniq -c | head -5
report "100 concurrent gcr run -d (all up)" "$CONC_MS" "-" "-" 3000

# Supervisor RSS (VmRSS of each __supervise process), median.
RSS_KB=$(for p in $(pgrep -f "__supervise $GCR_ROOT"); do awk '/VmRSS/ {print $2}' /proc/$p/status; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
PSS_KB=$(for p in $(pgrep -f "__supervise $GCR_ROOT"); do awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "supervisor memory: median VmRSS ${RSS_KB} kB, median PSS ${PSS_KB} kB (bar 3 MB RSS)" | tee -a "$RESULTS/summary.txt"
"$GCR" ps -aq | xargs -r "$GCR" rm -f >/dev/null

#!/usr/bin/env bash
# containerd bar (issue 17): `ctr run --rm --runc-binary gcr-runc IMAGE ID true` <= 0.8x the
# same with runc, same run, on a private containerd (its own root, state and sockets, CRI
# off) that this script starts and stops. containerd's own time dominates, so the split is
# shown too: the runtime's calls (create, start, delete) timed by a logging wrapper, in a
# second pass (the wrapper's own cost stays out of the bar's figures). GCR=path skips the
# release build.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "bench/ctr.sh needs root"; exit 1; }
command -v containerd >/dev/null || need_pkgs containerd
command -v runc >/dev/null || need_pkgs runc
[ -n "${GCR:-}" ] || build_gcr
WORK=$(mktemp -d /tmp/gcr-ctr-bench-XXXXXX)
NS=gcrbench$$
cleanup() {
  [ -f "$WORK/ctd.pid" ] && kill "$(cat "$WORK/ctd.pid")" 2>/dev/null || true
  sleep 0.5
  pkill -KILL -f "containerd-shim-runc-v2 -namespace $NS " 2>/dev/null || true
  grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK" "/run/containerd/runc/$NS"
}
trap cleanup EXIT
cat > "$WORK/config.toml" <<TOML
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$WORK/c.sock"
[ttrpc]
  address = "$WORK/c.sock.ttrpc"
[debug]
  address = "$WORK/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/opt"
TOML
containerd --config "$WORK/config.toml" >"$WORK/ctd.log" 2>&1 &
echo $! > "$WORK/ctd.pid"
CTR="ctr -a $WORK/c.sock -n $NS"
for _ in $(seq 200); do $CTR version >/dev/null 2>&1 && break; sleep 0.05; done
ln -s "$GCR" "$WORK/gcr-runc"
mk_busybox_tar "$WORK/busybox.tar"
env GCR_ROOT="$WORK/g" GCR_RUN_DIR="$WORK/g/run" "$GCR" import "$WORK/busybox.tar" bench/bb:1 >/dev/null
env GCR_ROOT="$WORK/g" GCR_RUN_DIR="$WORK/g/run" "$GCR" save -o "$WORK/bb.tar" bench/bb:1
$CTR images import "$WORK/bb.tar" >/dev/null
IMG=docker.io/bench/bb:1
RUNC=$(command -v runc)
RUNS=${RUNS:-30}
# One id per runtime: --rm frees it for the next run.
hf ctr-gcr "$RUNS" "$CTR run --rm --runc-binary $WORK/gcr-runc $IMG g1 true"
hf ctr-runc "$RUNS" "$CTR run --rm --runc-binary $RUNC $IMG r1 true"
g=$(median_ms ctr-gcr); r=$(median_ms ctr-runc)
report "ctr run --rm (containerd 1.6) true" "$g" "same with runc" "$r" "$(python3 -c "print(round($r*0.8, 2))")"
# The split: each runtime call timed by a wrapper, 10 runs each.
for rt in gcr runc; do
  real=$WORK/gcr-runc; [ $rt = runc ] && real=$RUNC
  printf '#!/bin/bash\ns=$EPOCHREALTIME\n%s "$@"\nrc=$?\necho "%s $s $EPOCHREALTIME $*" >> %s\nexit $rc\n' "$real" "$rt" "$WORK/calls.log" > "$WORK/wrap-$rt"
  chmod +x "$WORK/wrap-$rt"
  for i in $(seq 10); do $CTR run --rm --runc-binary "$WORK/wrap-$rt" $IMG s$rt$i true; done
done
python3 - "$WORK/calls.log" <<'PY'
import collections, sys
t = collections.defaultdict(lambda: collections.defaultdict(list))
for l in open(sys.argv[1]):
    p = l.split()
    cmd = next(x for x in p[3:] if x in ("create", "start", "delete", "kill", "state", "exec"))
    t[p[0]][cmd].append((float(p[2]) - float(p[1])) * 1000)
for rt, calls in t.items():
    per_run = {k: sum(v) / 10 for k, v in calls.items()}
    print(f"  split {rt:<5} runtime calls per ctr run: " + ", ".join(f"{k} {v:.1f} ms" for k, v in per_run.items())
          + f" = {sum(per_run.values()):.1f} ms")
PY

#!/usr/bin/env bash
# gcr-runc vs runc on the same bundle (busybox root, runc's default config with
# terminal off), same run: `run` of /bin/true, and create + start + delete of /bin/true.
# Bars: gcr-runc <= 0.5x runc for both. GCR=path skips the release build.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "bench/oci.sh needs root"; exit 1; }
command -v runc >/dev/null || need_pkgs runc
[ -n "${GCR:-}" ] || build_gcr
WORK=$(mktemp -d /tmp/gcr-oci-bench-XXXXXX)
cleanup() {
  for id in $(ls "$WORK/state-gcr" 2>/dev/null); do "$WORK/gcr-runc" --root "$WORK/state-gcr" delete --force "$id" || true; done
  for id in $(ls "$WORK/state-runc" 2>/dev/null); do runc --root "$WORK/state-runc" delete --force "$id" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ln -s "$GCR" "$WORK/gcr-runc"
B=$WORK/bundle
mkdir -p "$B/rootfs"
mk_busybox_tar "$WORK/busybox.tar"
tar -C "$B/rootfs" -xf "$WORK/busybox.tar"
"$WORK/gcr-runc" spec --bundle "$B"
python3 - "$B/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"))
PY
G="$WORK/gcr-runc --root $WORK/state-gcr"
R="runc --root $WORK/state-runc"
RUNS=${RUNS:-40}
hf oci-run-gcr "$RUNS" "$G run --bundle $B b1"
hf oci-run-runc "$RUNS" "$R run --bundle $B b1"
cycle() { echo "sh -c '$1 create --bundle $B c1 >/dev/null 2>&1 && $1 start c1 && while [ \"\$($1 state c1 | grep -c stopped)\" = 0 ]; do :; done; $1 delete c1'"; }
hf oci-cycle-gcr "$RUNS" "$(cycle "$G")"
hf oci-cycle-runc "$RUNS" "$(cycle "$R")"
g=$(median_ms oci-run-gcr); r=$(median_ms oci-run-runc)
report "gcr-runc run /bin/true" "$g" "runc run" "$r" "$(python3 -c "print($r*0.5)")"
g=$(median_ms oci-cycle-gcr); r=$(median_ms oci-cycle-runc)
report "create+start+delete /bin/true" "$g" "runc" "$r" "$(python3 -c "print($r*0.5)")"

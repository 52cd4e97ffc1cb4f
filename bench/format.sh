#!/usr/bin/env bash
# --format bars (issue 19) with 200 containers in the store:
#   gcr ps -a --format '{{.Names}}'            ≤ 10 ms
#   gcr inspect -f '{{.State.Status}}' NAME     ≤ 10 ms
# (absolute bars: medians of RUNS runs on this machine).
# GCR=path uses that gcr binary instead of building one. RUNS scales the run counts.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
if [ -n "${GCR:-}" ]; then :; else build_gcr; fi
runs=${RUNS:-20}
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-fmt.XXXXXX)
export GCR_RUN_DIR=$(mktemp -d /tmp/gcr-bench-fmt-run.XXXXXX)
work=$(mktemp -d /tmp/gcr-bench-fmt-work.XXXXXX)
cleanup() {
  findmnt -rn -o TARGET | grep -F "$GCR_RUN_DIR" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$GCR_ROOT" "$GCR_RUN_DIR" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" localhost/bench/busybox:1 >/dev/null
for i in $(seq 1 200); do "$GCR" create --name "fmt$i" localhost/bench/busybox:1 true >/dev/null; done

hf gcr-ps-format "$runs" "$GCR ps -a --format {{.Names}}"
hf gcr-inspect-format "$runs" "$GCR inspect -f {{.State.Status}} fmt100"
report "ps -a --format '{{.Names}}' (200 containers)" "$(median_ms gcr-ps-format)" "bar" 10 10
report "inspect -f '{{.State.Status}}' (200 containers)" "$(median_ms gcr-inspect-format)" "bar" 10 10

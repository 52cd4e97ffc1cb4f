#!/usr/bin/env bash
# Container DNA cost (issue 14): `gcr ps -a --format json` carries each container's DNA,
# whose signer part needs the image's signatures verified against the store's keys. With
# 100 containers of 100 distinct signed images, the first call verifies (and remembers the
# verdicts in the store); every later call looks them up. Reported against the same ps
# without DNA (table output) and against the same store with unsigned images.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine sqlite3
if [ -n "${GCR_BIN:-}" ]; then GCR=$GCR_BIN; else build_gcr; fi
work=$(mktemp -d /tmp/gcr-bench-dna.XXXXXX)
trap 'rm -rf "$work"' EXIT
mk_busybox_tar "$work/busybox.tar"
G() { env GCR_ROOT="$1" GCR_RUN_DIR="$1/run" "$GCR" "${@:2}"; }
n=${N:-100}
for s in signed plain; do
  G "$work/$s" key generate k >/dev/null
  G "$work/$s" key generate other >/dev/null
done
for i in $(seq "$n"); do
  cp "$work/busybox.tar" "$work/i.tar"
  mkdir -p "$work/x" && echo "$i" > "$work/x/id" && tar -C "$work/x" -rf "$work/i.tar" id
  for s in signed plain; do
    G "$work/$s" import "$work/i.tar" "bench/bb$i:1" >/dev/null
    G "$work/$s" create --network none --name "c$i" "bench/bb$i:1" true >/dev/null
  done
  G "$work/signed" sign "bench/bb$i:1" --key k -q >/dev/null
done
t0=$(cpu_ticks)
runs=${RUNS:-30}
# Without the memo (every verdict forgotten before each run): what the first ps costs.
hf dna-nomemo "$runs" --prepare "sqlite3 $work/signed/gcr.db 'DELETE FROM signature_verdicts'" "env GCR_ROOT=$work/signed GCR_RUN_DIR=$work/signed/run $GCR ps -a --format json"
hf dna-signed "$runs" "env GCR_ROOT=$work/signed GCR_RUN_DIR=$work/signed/run $GCR ps -a --format json"
hf dna-plain "$runs" "env GCR_ROOT=$work/plain GCR_RUN_DIR=$work/plain/run $GCR ps -a --format json"
hf ps-table "$runs" "env GCR_ROOT=$work/signed GCR_RUN_DIR=$work/signed/run $GCR ps -a"
t1=$(cpu_ticks)
table=$(median_ms ps-table)
report "ps -a --format json, $n containers, $n signed images" "$(median_ms dna-signed)" "ps -a (no DNA)" "$table" -
report "ps -a --format json, $n signed, verdicts forgotten" "$(median_ms dna-nomemo)" "ps -a (no DNA)" "$table" -
report "ps -a --format json, $n containers, $n unsigned images" "$(median_ms dna-plain)" "ps -a (no DNA)" "$table" -
steal_note "dna" "$t0" "$t1" "$runs"

#!/usr/bin/env bash
# Trust bars (issue 14): `gcr sign` <= 10 ms and `gcr verify` <= 5 ms, whole process, on the
# busybox test image (manifest, config and its one layer are all re-hashed by both), with an
# unencrypted Ed25519 key. For reference next to verify: securesystemslib (Python) checking
# the same DSSE envelope (signature only, no blob checks; interpreter start included) when
# scripts/deps.sh has installed it.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine
build_gcr
work=$(mktemp -d /tmp/gcr-bench-sign.XXXXXX)
trap 'rm -rf "$work"' EXIT
mk_busybox_tar "$work/busybox.tar"
G() { env GCR_ROOT="$1" GCR_RUN_DIR="$1/run" "$GCR" "${@:2}"; }
# One store that collects a signature per sign run, one with exactly one signature to verify.
for s in signer verifier; do
  G "$work/$s" import "$work/busybox.tar" bench/bb:1 >/dev/null
  G "$work/$s" key generate k >/dev/null
done
G "$work/verifier" sign bench/bb:1 --key k >/dev/null
G "$work/verifier" verify bench/bb:1 --key k >/dev/null
G "$work/verifier" key export k > "$work/k.pub"

runs=${RUNS:-50}
t0=$(cpu_ticks)
# The store is named by the environment hyperfine passes on, not by an `env` process in
# front of gcr: the bars are gcr's whole process, and env's own exec costs ~0.7 ms here.
(export GCR_ROOT=$work/signer GCR_RUN_DIR=$work/signer/run
  hf sign-gcr "$runs" "$GCR sign bench/bb:1 --key k -q")
t1=$(cpu_ticks)
(export GCR_ROOT=$work/verifier GCR_RUN_DIR=$work/verifier/run
  hf verify-gcr "$runs" "$GCR verify bench/bb:1 --key k")
t2=$(cpu_ticks)

peer=-
py=$REPO/target/peers/venv/bin/python
if [ -x "$py" ]; then
  ref=$(G "$work/verifier" inspect --referrers bench/bb:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Referrers"][0]["digest"].split(":")[1])')
  layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].split(":")[1])' "$work/verifier/blobs/sha256/$ref")
  cp "$work/verifier/blobs/sha256/$layer" "$work/bundle.json"
  hf verify-sslib "$((runs / 5 + 1))" "$py $REPO/crates/gcr/tests/peers/sslib.py verify $work/k.pub $work/bundle.json"
  peer=$(median_ms verify-sslib)
fi
report "gcr sign (in-toto + DSSE + bundle + referrer)" "$(median_ms sign-gcr)" "-" "-" 10
steal_note "sign" "$t0" "$t1" "$runs"
report "gcr verify (blobs + signature)" "$(median_ms verify-gcr)" "securesystemslib verify" "$peer" 5
steal_note "verify" "$t1" "$t2" "$runs"

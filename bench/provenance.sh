#!/usr/bin/env bash
# Provenance bar (issue 14): "a cached rebuild with provenance and signing on stays within
# 2 ms of one without". Same context as bench/build.sh (busybox base, COPY of 1,000 small
# files, ENV, RUN), each variant in its own store, whole-process medians:
#   signed     gcr build --sign-key k   (provenance + signed provenance + signed build record)
#   provenance gcr build --no-sign      (the provenance every build attaches)
#   without    BASELINE_GCR build       (a gcr from before provenance, when BASELINE_GCR names
#                                        one; e.g. built from a worktree of the commit before
#                                        "Build provenance")
# The bar compares signed with without (else with provenance, when no baseline is given).
# GCR_BIN runs a gcr built elsewhere (e.g. from a worktree with CARGO_TARGET_DIR set)
# instead of building this checkout.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
if [ -n "${GCR_BIN:-}" ]; then GCR=$GCR_BIN; else build_gcr; fi
work=$(mktemp -d /tmp/gcr-bench-prov.XXXXXX)
trap 'rm -rf "$work"' EXIT
mk_busybox_tar "$work/busybox.tar"

ctx="$work/ctx"
mkdir -p "$ctx/files"
for i in $(seq 1 1000); do echo "small file $i" > "$ctx/files/f$i.txt"; done
cat > "$ctx/app.gcr" <<'SPEC'
format: gcr-v1.0
name: bench/app
version: "1"
base: bench/busybox:1
build:
  copy:
    - src: ./files/
      dest: /data/
  env: { APP_MODE: bench }
  commands:
    - echo built > /built
SPEC

# store NAME BINARY: a store with the base image and a first (uncached) build.
store() {
  local dir=$work/$1 bin=$2
  env GCR_ROOT="$dir" GCR_RUN_DIR="$dir/run" "$bin" import "$work/busybox.tar" bench/busybox:1 >/dev/null
}
cmd() { echo "env GCR_ROOT=$work/$1 GCR_RUN_DIR=$work/$1/run ${*:2}"; }

store signed "$GCR"
env GCR_ROOT="$work/signed" GCR_RUN_DIR="$work/signed/run" "$GCR" key generate k >/dev/null
store provenance "$GCR"
variants=(signed provenance)
declare -A line=(
  [signed]="$(cmd signed "$GCR" build -q --sign-key k "$ctx")"
  [provenance]="$(cmd provenance "$GCR" build -q --no-sign "$ctx")"
)
if [ -n "${BASELINE_GCR:-}" ]; then
  store without "$BASELINE_GCR"
  variants+=(without)
  line[without]="$(cmd without "$BASELINE_GCR" build -q "$ctx")"
fi
for v in "${variants[@]}"; do eval "${line[$v]}" >/dev/null; done
# The signed store has its three referrers, and a rebuild adds none.
refs() {
  env GCR_ROOT="$work/signed" GCR_RUN_DIR="$work/signed/run" "$GCR" inspect --referrers bench/app:1 \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["Referrers"]))'
}
n0=$(refs)
[ "$n0" = 3 ] || { echo "bench: expected 3 referrers on the signed build, found $n0" >&2; exit 1; }

runs=${RUNS:-50}
t0=$(cpu_ticks)
for v in "${variants[@]}"; do hf "prov-cached-$v" "$runs" "${line[$v]}"; done
t1=$(cpu_ticks)
[ "$(refs)" = 3 ] || { echo "bench: cached rebuilds added referrers" >&2; exit 1; }

signed=$(median_ms prov-cached-signed)
prov=$(median_ms prov-cached-provenance)
if [ -n "${BASELINE_GCR:-}" ]; then
  base=$(median_ms prov-cached-without) base_label="without provenance"
else
  base=$prov base_label="provenance, no signing"
fi
bar=$(python3 -c "print('%.2f' % ($base + 2))")
report "gcr build cached, provenance only" "$prov" "$base_label" "$base" "-"
report "gcr build cached, provenance + signing" "$signed" "$base_label" "$base" "$bar"
steal_note "cached rebuilds" "$t0" "$t1" "$((runs * ${#variants[@]}))"

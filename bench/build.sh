#!/usr/bin/env bash
# Build bars (issue 4), side by side with buildah in the same run, on the same busybox image
# and an equivalent Containerfile: FROM busybox, COPY of 1,000 small files, ENV, RUN.
#   cached rebuild  (bar 25 ms; buildah bud --layers measured 513 ms here)
#   cold build      (bar 250 ms; buildah 1.26 s) -- gcr build --no-cache, buildah --no-cache
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static buildah
build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-build.XXXXXX)
work=$(mktemp -d /tmp/gcr-bench-build-ctx.XXXXXX)
# Every buildah bud --no-cache run leaves the previous bench/app:1 untagged, and --layers
# keeps intermediate images: remove everything the run added to buildah's store (whatever
# the exit), and only that.
buildah_ids > "$work/buildah-before"
cleanup() {
  buildah_cleanup "$work/buildah-before"
  rm -rf "$GCR_ROOT" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" bench/busybox:1 >/dev/null

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
cat > "$ctx/Containerfile" <<'CF'
FROM localhost/bench/busybox:1
COPY files/ /data/
ENV APP_MODE=bench
RUN echo built > /built
CF

"$GCR" build "$ctx"
hf gcr-build-cached 50 "$GCR build -q $ctx"
hf gcr-build-cold 20 "$GCR build -q --no-cache $ctx"

# buildah: the same busybox image, loaded from gcr's own docker-archive export.
"$GCR" save -o "$work/bb.tar" bench/busybox:1
buildah pull -q docker-archive:"$work/bb.tar" >/dev/null
buildah tag "$(buildah images -q --filter reference=bench/busybox:1 | head -1)" localhost/bench/busybox:1 >/dev/null 2>&1 || true
buildah images
buildah bud -q --layers -t bench/app:1 -f "$ctx/Containerfile" "$ctx" >/dev/null
hf buildah-cached 10 "buildah bud -q --layers -t bench/app:1 -f $ctx/Containerfile $ctx"
hf buildah-cold 10 "buildah bud -q --no-cache -t bench/app:1 -f $ctx/Containerfile $ctx"

report "gcr build, cached rebuild (1,000 files, 3 steps)" "$(median_ms gcr-build-cached)" "buildah bud --layers" "$(median_ms buildah-cached)" 25
report "gcr build --no-cache (cold, 1,000 files, 3 steps)" "$(median_ms gcr-build-cold)" "buildah bud --no-cache" "$(median_ms buildah-cold)" 250

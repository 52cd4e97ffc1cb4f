#!/usr/bin/env bash
# Image-store bars (issue 2): `gcr images` with 1,000 images, `gcr inspect`, in-process
# lookup among 10,000 images; podman images/inspect side by side in the same run.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-images.XXXXXX)
work=$(mktemp -d)
trap 'rm -rf "$GCR_ROOT" "$work"' EXIT

echo "creating 1,000 images..."
mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" bench/busybox:1 >/dev/null
for i in $(seq 1 999); do
  mkdir -p "$work/i"; echo "$i" > "$work/i/n"
  tar -C "$work/i" -cf "$work/i.tar" n
  "$GCR" import "$work/i.tar" "bench/img$i:v1" >/dev/null
done
echo "images: $("$GCR" images -q | wc -l)"

hf gcr-images 100 "$GCR images"
hf gcr-inspect 100 "$GCR inspect bench/img500:v1"

setup_podman
"$GCR" save -o "$work/bb.tar" bench/busybox:1
podman load -q -i "$work/bb.tar" >/dev/null 2>&1 || true
hf podman-images 30 "podman images"
hf podman-inspect 30 "podman image inspect localhost/bench/busybox:1"

report "gcr images (1,000 images)" "$(median_ms gcr-images)" "podman images ($(podman images -q | wc -l) img)" "$(median_ms podman-images)" 10
report "gcr inspect IMAGE" "$(median_ms gcr-inspect)" "podman image inspect" "$(median_ms podman-inspect)" 5

echo "in-process lookup among 10,000 images..."
(cd "$REPO" && cargo run --release -q -p gcr-store --example lookup_bench -- "$work/lookup-store" 10000) | tee -a "$RESULTS/summary.txt"

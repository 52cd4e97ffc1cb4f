#!/usr/bin/env bash
# Image-store bars (issue 2): `gcr images` with 1,000 images, `gcr inspect`, in-process
# lookup among 10,000 images; podman images/inspect side by side in the same run.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static
build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-images.XXXXXX)
work=$(mktemp -d)
podman_dir=$(mktemp -d /tmp/gcr-bench-podman.XXXXXX)
trap 'private_podman_cleanup "$podman_dir"; rm -rf "$GCR_ROOT" "$work"' EXIT
trap 'exit 130' INT TERM

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

# podman gets the same 1,000 images, in a store of its own: its default store is shared
# with buildah (bench/build.sh) and whatever else ran here, which would change the count.
setup_podman
private_podman "$podman_dir"
"$GCR" save -o "$work/all.tar" bench/busybox:1 $(seq -f 'bench/img%g:v1' 1 999)
$PODMAN load -q -i "$work/all.tar" >/dev/null
rm -f "$work/all.tar"
n_podman=$($PODMAN images -q | sort -u | wc -l)
if [ "$n_podman" != 1000 ]; then
  echo "images.sh: podman's private store has $n_podman images, not 1,000" >&2
  exit 1
fi
hf podman-images 30 "$PODMAN images"
hf podman-inspect 30 "$PODMAN image inspect localhost/bench/img500:v1"

report "gcr images (1,000 images)" "$(median_ms gcr-images)" "podman images ($n_podman img)" "$(median_ms podman-images)" 10
report "gcr inspect IMAGE" "$(median_ms gcr-inspect)" "podman image inspect" "$(median_ms podman-inspect)" 5

echo "in-process lookup among 10,000 images..."
(cd "$REPO" && cargo run --release -q -p gcr-store --example lookup_bench -- "$work/lookup-store" 10000) | tee -a "$RESULTS/summary.txt"

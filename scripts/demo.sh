#!/usr/bin/env bash
# Builds gcr and runs its demo: a busybox root filesystem (Debian's busybox-static) imported
# as a deterministic image, listed, inspected and run as containers. No registry, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release -p gcr
gcr() { "$PWD/target/release/gcr" "$@"; }
export GCR_ROOT="${GCR_ROOT:-$(mktemp -d /tmp/gcr-demo.XXXXXX)}"
work=$(mktemp -d /tmp/gcr-demo-rootfs.XXXXXX)
trap 'gcr rm -f demo-sleeper >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== a busybox rootfs from /bin/busybox"
scripts/mkrootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

echo "== gcr import (deterministic: the same tarball gives the same digest)"
gcr import "$work/busybox.tar" demo/busybox:1.0
echo "== gcr images"
gcr images
echo "== gcr inspect demo/busybox:1.0 (excerpt)"
gcr inspect demo/busybox:1.0 | head -n 20
echo "== gcr history demo/busybox:1.0"
gcr history demo/busybox:1.0

echo "== gcr run --rm: a container in its own namespaces"
gcr run --rm --hostname demo demo/busybox:1.0 sh -c 'echo "hello from $(hostname), I am $(id -u), pid $$"; ps'
echo "== gcr run -d, ps, logs, stop, rm"
gcr run -d --name demo-sleeper demo/busybox:1.0 sh -c 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done'
gcr ps
sleep 0.3
gcr logs --timestamps demo-sleeper
gcr stop demo-sleeper
gcr ps -a
gcr rm demo-sleeper
echo "== gcr doctor"
gcr doctor
echo "demo store: $GCR_ROOT"

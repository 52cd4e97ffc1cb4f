#!/usr/bin/env bash
# Builds gcr and runs its demo: a static HTTP server built FROM scratch by `gcr build` from
# a .gcr spec and run with a published port; a busybox root filesystem (Debian's
# busybox-static) imported as a deterministic image, built upon, inspected and run as
# containers. No registry, no internet.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
gcr_exe=$(scripts/build.sh)
gcr() { "$gcr_exe" "$@"; }
export GCR_ROOT="${GCR_ROOT:-$(mktemp -d /tmp/gcr-demo.XXXXXX)}"
work=$(mktemp -d /tmp/gcr-demo-rootfs.XXXXXX)
trap 'gcr rm -f demo-sleeper demo-web >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

echo "== gcr build examples/httpd: a static HTTP server FROM scratch"
RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --release \
  --manifest-path examples/httpd/Cargo.toml --target x86_64-unknown-linux-gnu
gcr build examples/httpd
echo "== rebuild: every step cached, same digest"
gcr build examples/httpd
echo "== gcr run -d -p 18080:8080 httpd:1.0.0, then GET /health"
gcr run -d --name demo-web -p 18080:8080 httpd:1.0.0
for i in $(seq 1 50); do curl -fsS http://127.0.0.1:18080/health 2>/dev/null && break; sleep 0.1; done
echo
gcr ps
gcr stop demo-web && gcr rm demo-web

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
echo "== gcr build examples/busybox-app (FROM the imported image, runs build commands)"
gcr build examples/busybox-app
gcr run --rm busybox-app:1.0.0
gcr inspect --transcript busybox-app:1.0.0 | head -n 30

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

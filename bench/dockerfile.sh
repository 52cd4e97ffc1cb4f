#!/usr/bin/env bash
# Dockerfile build bars (issue 18), side by side in the same run on the same busybox image
# and the same 3-stage Dockerfile over a 1,000-file context:
#   cached rebuild  gcr ≤ 0.1× docker build (BuildKit, a private dockerd) and ≤ 0.02× buildah bud --layers
#   cold build      gcr --no-cache ≤ 0.5× buildah bud --no-cache
# GCR=path uses that gcr binary instead of building one. RUNS scales the run counts.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static buildah docker.io
if [ -n "${GCR:-}" ]; then :; else build_gcr; fi
runs=${RUNS:-10}
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-df.XXXXXX)
work=$(mktemp -d /var/tmp/gcr-bench-df-work.XXXXXX)   # on disk: dockerd's overlay2 needs it
buildah_ids > "$work/buildah-before"
dsock="$work/docker.sock"
cleanup() {
  if [ -f "$work/dockerd.pid" ]; then
    kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -e "$work/dockerd.pid" ] || break; sleep 0.2; done
  fi
  if [ -f "$work/exec/containerd/containerd.pid" ]; then
    kill "$(cat "$work/exec/containerd/containerd.pid")" 2>/dev/null || true
  fi
  buildah_cleanup "$work/buildah-before"
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$GCR_ROOT" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" localhost/bench/busybox:1 >/dev/null

ctx="$work/ctx"
mkdir -p "$ctx/files"
for i in $(seq 1 1000); do echo "small file $i" > "$ctx/files/f$i.txt"; done
cat > "$ctx/Dockerfile" <<'DF'
FROM localhost/bench/busybox:1 AS deps
COPY files/ /src/
RUN cat /src/f1.txt /src/f1000.txt > /deps.txt

FROM localhost/bench/busybox:1 AS build
ARG MODE=release
COPY --from=deps /src /app/src
COPY --from=deps /deps.txt /app/
RUN ls /app/src | wc -l > /app/count && echo "$MODE" > /app/mode

FROM localhost/bench/busybox:1
COPY --from=build /app /app
ENV APP_MODE=bench
WORKDIR /app
CMD ["cat", "/app/count"]
DF

"$GCR" build -q --network none -t bench/df:1 "$ctx" >/dev/null
hf gcr-df-cold "$runs" "$GCR build -q --no-cache --network none -t bench/df:1 $ctx"

# buildah: the same image, loaded from gcr's docker-archive export.
"$GCR" save -o "$work/bb.tar" localhost/bench/busybox:1
buildah pull -q docker-archive:"$work/bb.tar" >/dev/null
buildah tag "$(buildah images -q --filter reference=localhost/bench/busybox:1 | head -1)" localhost/bench/busybox:1 >/dev/null 2>&1 || true
buildah bud -q --layers --network none -t bench/df:1 "$ctx" >/dev/null
hf buildah-df-cached "$runs" "buildah bud -q --layers --network none -t bench/df:1 $ctx"
hf buildah-df-cold "$runs" "buildah bud -q --no-cache --network none -t bench/df:1 $ctx"

# docker build with BuildKit against a private dockerd (Debian's docker.io), stopped at exit.
dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  --host "unix://$dsock" --bridge none --iptables=false --ip-masq=false \
  > "$work/dockerd.log" 2>&1 &
D() { DOCKER_CONFIG="$work/config" DOCKER_BUILDKIT=1 /usr/bin/docker -H "unix://$dsock" "$@"; }
for _ in $(seq 1 150); do D version >/dev/null 2>&1 && break; sleep 0.2; done
D load -q -i "$work/bb.tar" >/dev/null
D build -q --network none -t bench/df:1 "$ctx" >/dev/null
# The two cached rebuilds take turns (lib.sh interleave): the machine's drifts weigh alike.
interleave df-cached $((runs * 2)) "" "gcr=$GCR build -q --network none -t bench/df:1 $ctx" \
  "docker=env DOCKER_CONFIG=$work/config DOCKER_BUILDKIT=1 /usr/bin/docker -H unix://$dsock build -q --network none -t bench/df:1 $ctx"

report "Dockerfile cached rebuild (3 stages, 1,000 files)" "$(median_ms df-cached-gcr)" "docker build (BuildKit)" "$(median_ms df-cached-docker)" -
report "Dockerfile cached rebuild (3 stages, 1,000 files)" "$(median_ms df-cached-gcr)" "buildah bud --layers" "$(median_ms buildah-df-cached)" -
report "Dockerfile cold build (3 stages, 1,000 files)" "$(median_ms gcr-df-cold)" "buildah bud --no-cache" "$(median_ms buildah-df-cold)" -
python3 - "$(median_ms df-cached-gcr)" "$(median_ms df-cached-docker)" "$(median_ms buildah-df-cached)" "$(median_ms gcr-df-cold)" "$(median_ms buildah-df-cold)" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
g, d, b, gc, bc = map(float, sys.argv[1:])
for label, r, bar in [("cached vs BuildKit", g / d, 0.1), ("cached vs buildah", g / b, 0.02), ("cold vs buildah", gc / bc, 0.5)]:
    print(f"  bar {label}: {r:.4f}x (bar {bar}x) {'PASS' if r <= bar else 'FAIL'}")
PY

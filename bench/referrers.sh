#!/usr/bin/env bash
# Referrers bar (issue 14): pull of a signed image — the busybox test image with 2 referrers
# (a Sigstore-bundle-sized signature and an SBOM) — costs <= 1.1x the pull of the same image
# without referrers, into a fresh store each run, from the same registry on loopback:
#   gcr registry serve   (referrers API: one GET lists them)
#   docker-registry 2.8  (no referrers API: the sha256-<hex> tag fallback)
# and, for reference, the same pull with --no-referrers.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine docker-registry python3 curl
# GCR_BIN: measure this binary instead of building the checkout (e.g. a before/after pair).
if [ -n "${GCR_BIN:-}" ]; then GCR=$GCR_BIN; else build_gcr; fi
work=$(mktemp -d /tmp/gcr-bench-referrers.XXXXXX)
cleanup() {
  for p in "$work"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# gcr registry serve on its own store (prints its address first).
"$GCR" --root "$work/regstore" registry serve --addr 127.0.0.1:0 > "$work/serve.out" 2>/dev/null &
echo $! > "$work/serve.pid"
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
gcr_host=127.0.0.1:$(head -1 "$work/serve.out" | awk -F: '{print $NF}' | tr -dc 0-9)

# docker-registry with filesystem storage.
dport=$(free_port)
docker_host=127.0.0.1:$dport
cat > "$work/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/regdata
http:
  addr: $docker_host
YML
docker-registry serve "$work/config.yml" >/dev/null 2>&1 &
echo $! > "$work/docker.pid"
for h in "$gcr_host" "$docker_host"; do
  for _ in $(seq 100); do curl -sf "http://$h/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
done

# Two stores with the same image: one plain, one with two referrers.
mk_busybox_tar "$work/busybox.tar"
G() { env GCR_ROOT="$1" GCR_RUN_DIR="$1/run" DOCKER_CONFIG="$work/dc" "$GCR" "${@:2}"; }
G "$work/plain" import "$work/busybox.tar" bench/bb:1 >/dev/null
G "$work/signed" import "$work/busybox.tar" bench/bb:1 >/dev/null
head -c 3000 /dev/urandom | base64 -w0 | python3 -c 'import json,sys; print(json.dumps({"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","sig":sys.stdin.read()}))' > "$work/bundle.json"
head -c 20000 /dev/urandom | base64 -w0 | python3 -c 'import json,sys; print(json.dumps({"spdxVersion":"SPDX-2.3","packages":sys.stdin.read()}))' > "$work/sbom.json"
G "$work/signed" __attach bench/bb:1 application/vnd.dev.sigstore.bundle.v0.3+json "$work/bundle.json" >/dev/null
G "$work/signed" __attach bench/bb:1 application/spdx+json "$work/sbom.json" >/dev/null
for h in "$gcr_host" "$docker_host"; do
  G "$work/plain" push -q bench/bb:1 "$h/bench/plain:1" >/dev/null
  G "$work/signed" push -q bench/bb:1 "$h/bench/signed:1" >/dev/null
done
# Sanity: a pull of the signed image brings both referrers.
G "$work/check" pull "$gcr_host/bench/signed:1" | grep -q "Referrers: 2 pulled"
G "$work/check2" pull "$docker_host/bench/signed:1" | grep -q "Referrers: 2 pulled"

# The three pulls of a registry take turns (lib.sh interleave), in a fresh store each time,
# with a `sync` before each, so no pull pays for writing back its predecessor's files.
runs=${RUNS:-30}
# The store before is moved aside, not removed, until the end. Removing it right before the next pull would time the kernel rather than gcr: ext4
# without a journal (this machine's) skips inodes freed in the last minute or so when it
# allocates new ones, reading their inode blocks, so every file a pull creates after an
# `rm -rf` of the last store costs ~0.5 ms of CPU, and the variant that creates more files
# pays that per file. Both variants get the same treatment here.
mkdir -p "$work/old"
for reg in gcr docker; do
  h=$gcr_host; [ $reg = docker ] && h=$docker_host
  pull="env GCR_ROOT=$work/p DOCKER_CONFIG=$work/dc $GCR pull -q"
  interleave "ref-$reg" "$runs" "[ ! -d $work/p ] || mv $work/p $work/old/p.\$(date +%s%N); sync" "plain=$pull $h/bench/plain:1" \
    "signed=$pull $h/bench/signed:1" "skip=$pull --no-referrers $h/bench/signed:1"
  plain=$(median_ms "ref-$reg-plain")
  bar=$(python3 -c "print('%.2f' % ($plain * 1.1))")
  report "pull signed (2 referrers), $reg registry" "$(median_ms "ref-$reg-signed")" "same image unsigned" "$plain" "$bar"
  report "pull signed --no-referrers, $reg registry" "$(median_ms "ref-$reg-skip")" "same image unsigned" "$plain" "$bar"
done

#!/usr/bin/env bash
# Docker Engine API bars (issue 20), measured in one run against `gcr system service`:
#   docker ps -a (the docker CLI over gcr's socket), 200 containers   ≤ 20 ms
#     (the current CLI at /usr/local/bin/docker and Debian's docker.io 20.10 one)
#   curl --unix-socket SOCK /metrics, 100 running containers          ≤ 20 ms
#   the service's idle RSS (VmRSS after serving the above)            ≤ 15 MB
#   docker run --rm IMG true: through gcr's service ≤ 0.25× through a private dockerd
#   (Debian's docker.io) and ≤ 0.25× through Podman's service (podman system service,
#   private store, runc)
# The store holds 100 running containers (sleep) and 100 created ones. Medians of RUNS runs.
# The CLIs find their (empty) config through DOCKER_CONFIG in hyperfine's environment, so
# no `env` process runs in front of them (its exec is ~0.7 ms here).
# `docker ps -a` is also timed against bench/replay_server.py serving the bytes gcr sent:
# the CLI's own floor for the same requests and JSON, whatever the server.
# GCR=path uses that gcr binary instead of building one. RUNS scales the run counts.
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static curl docker.io
setup_podman
if [ -n "${GCR:-}" ]; then :; else build_gcr; fi
runs=${RUNS:-20}
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-api.XXXXXX)
export GCR_RUN_DIR=$(mktemp -d /tmp/gcr-bench-api-run.XXXXXX)
work=$(mktemp -d /var/tmp/gcr-bench-api-work.XXXXXX)   # on disk: dockerd's overlay2 needs it
sock="$work/gcr.sock"
dsock="$work/docker.sock"
mkdir -p "$work/config"
cleanup() {
  if [ -f "$work/podman-service.pid" ]; then
    kill "$(cat "$work/podman-service.pid")" 2>/dev/null || true
    wait "$(cat "$work/podman-service.pid")" 2>/dev/null || true
  fi
  private_podman_cleanup "$work/podman"
  if [ -f "$work/replay.pid" ]; then
    kill "$(cat "$work/replay.pid")" 2>/dev/null || true
  fi
  if [ -f "$work/service.pid" ]; then
    kill "$(cat "$work/service.pid")" 2>/dev/null || true
    wait "$(cat "$work/service.pid")" 2>/dev/null || true
  fi
  # shellcheck disable=SC2046
  "$GCR" rm -f $("$GCR" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  if [ -f "$work/dockerd.pid" ]; then
    # shellcheck disable=SC2046
    DOCKER_CONFIG="$work/config" /usr/bin/docker -H "unix://$dsock" rm -f $(DOCKER_CONFIG="$work/config" /usr/bin/docker -H "unix://$dsock" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    kill "$(cat "$work/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -e "$work/dockerd.pid" ] || break; sleep 0.2; done
  fi
  if [ -f "$work/exec/containerd/containerd.pid" ]; then
    kill "$(cat "$work/exec/containerd/containerd.pid")" 2>/dev/null || true
  fi
  findmnt -rn -o TARGET | grep -F -e "$work/" -e "$GCR_RUN_DIR" | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf "$GCR_ROOT" "$GCR_RUN_DIR" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mk_busybox_tar "$work/busybox.tar"
img=localhost/bench/busybox:1
"$GCR" import "$work/busybox.tar" "$img" >/dev/null
for i in $(seq 1 100); do "$GCR" run -d --name "up$i" "$img" sleep 100000 >/dev/null; done
for i in $(seq 1 100); do "$GCR" create --name "made$i" "$img" true >/dev/null; done

"$GCR" system service --host "unix://$sock" > "$work/service.log" 2>&1 &
echo $! > "$work/service.pid"
export DOCKER_CONFIG="$work/config" DOCKER_CLI_HINTS=false
G() { /usr/local/bin/docker -H "unix://$sock" "$@"; }
for _ in $(seq 1 150); do G version >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(G ps -aq | wc -l)" = 200 ] || { echo "bench: docker ps -a does not list 200 containers" >&2; exit 1; }
grep -q '^gcr_container_running{.*} 1$' <(curl -s --unix-socket "$sock" http://gcr/metrics) \
  || { echo "bench: /metrics lists no running container" >&2; exit 1; }
[ "$(curl -s --unix-socket "$sock" http://gcr/metrics | grep -c '^gcr_container_cpu_seconds_total{')" = 100 ] \
  || { echo "bench: /metrics does not cover 100 running containers" >&2; exit 1; }

hf api-docker-ps "$runs" "/usr/local/bin/docker -H unix://$sock ps -a"
hf api-metrics "$runs" "curl -s -o /dev/null --unix-socket $sock http://gcr/metrics"
# The clients' own floors: the docker CLI answering /_ping (docker version's round trip
# is two requests; ps is /_ping then /containers/json), curl fetching /_ping.
hf api-docker-floor "$runs" "/usr/local/bin/docker -H unix://$sock version --format {{.Server.APIVersion}}"
hf api-curl-floor "$runs" "curl -s -o /dev/null --unix-socket $sock http://gcr/_ping"
# Where docker ps's time goes: the same CLI and requests with one row (-n 1), and the 200
# rows decoded but printed with a one-field template instead of the default table.
hf api-docker-ps-one "$runs" "/usr/local/bin/docker -H unix://$sock ps -a -n 1"
hf api-docker-ps-ids "$runs" "/usr/local/bin/docker -H unix://$sock ps -a --format {{.ID}}"
# The same with Debian's docker.io 20.10 CLI (the issue's "stock docker CLI here"; the
# current CLI above is the one users install from Docker).
hf api-docker-ps-debian "$runs" "/usr/bin/docker -H unix://$sock ps -a"
hf api-docker-floor-debian "$runs" "/usr/bin/docker -H unix://$sock version --format {{.Server.APIVersion}}"
# The CLI's floor: the same `docker ps -a` against a server that replays the bytes gcr
# sent for the 200 containers and does nothing else.
curl -s --unix-socket "$sock" 'http://gcr/v1.41/containers/json?all=1' > "$work/list.json"
python3 "$BENCH_DIR/replay_server.py" "$work/replay.sock" "$work/list.json" &
echo $! > "$work/replay.pid"
for _ in $(seq 1 100); do [ -S "$work/replay.sock" ] && break; sleep 0.05; done
[ "$(/usr/local/bin/docker -H "unix://$work/replay.sock" ps -aq | wc -l)" = 200 ] \
  || { echo "bench: the replay server does not list 200 containers" >&2; exit 1; }
hf api-docker-ps-replay "$runs" "/usr/local/bin/docker -H unix://$work/replay.sock ps -a"
hf api-docker-ps-debian-replay "$runs" "/usr/bin/docker -H unix://$work/replay.sock ps -a"
# Plain `docker ps`: the 100 running containers of the 200.
hf api-docker-ps-running "$runs" "/usr/local/bin/docker -H unix://$sock ps"
list_total=$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" 'http://gcr/v1.41/containers/json?all=1'; done | sort -n | sed -n 3p)
# The service's own share of /metrics: the request timed inside one curl (no process start).
metrics_total=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$sock" http://gcr/metrics)
sleep 3   # idle: the blocking threads that served the requests have nothing to do
rss_kb=$(awk '/^VmRSS:/{print $2}' "/proc/$(cat "$work/service.pid")/status")
threads=$(awk '/^Threads:/{print $2}' "/proc/$(cat "$work/service.pid")/status")

hf api-run-gcr "$runs" "/usr/local/bin/docker -H unix://$sock run --rm --network none $img true"

# The same run through a private dockerd (Debian's docker.io), stopped at exit.
dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  --host "unix://$dsock" --bridge none --iptables=false --ip-masq=false \
  > "$work/dockerd.log" 2>&1 &
D() { DOCKER_CONFIG="$work/config" /usr/bin/docker -H "unix://$dsock" "$@"; }
for _ in $(seq 1 150); do D version >/dev/null 2>&1 && break; sleep 0.2; done
D import "$work/busybox.tar" "$img" >/dev/null
hf api-run-dockerd "$runs" "/usr/bin/docker -H unix://$dsock run --rm --network none $img true"
# The same CLI's docker ps -a against dockerd holding the same 200 containers (100 running).
for i in $(seq 1 100); do D run -d --network none --name "up$i" "$img" sleep 100000 >/dev/null; done
for i in $(seq 1 100); do D create --network none --name "made$i" "$img" true >/dev/null; done
[ "$(D ps -aq | wc -l)" = 200 ] || { echo "bench: dockerd does not list 200 containers" >&2; exit 1; }
hf api-docker-ps-dockerd "$runs" "/usr/local/bin/docker -H unix://$dsock ps -a"
hf api-docker-ps-dockerd-debian "$runs" "/usr/bin/docker -H unix://$dsock ps -a"
# shellcheck disable=SC2046
D rm -f $(D ps -aq) >/dev/null

# The same run through Podman's Docker-compatible service (private store, runc: crun refuses
# this host's hybrid cgroups), stopped at exit.
private_podman "$work/podman"
psock="$work/podman.sock"
$PODMAN --runtime runc import "$work/busybox.tar" "$img" >/dev/null 2>&1
$PODMAN --runtime runc system service --time 0 "unix://$psock" > "$work/podman-service.log" 2>&1 &
echo $! > "$work/podman-service.pid"
P() { DOCKER_CONFIG="$work/config" /usr/local/bin/docker -H "unix://$psock" "$@"; }
for _ in $(seq 1 150); do P version >/dev/null 2>&1 && break; sleep 0.2; done
hf api-run-podman "$runs" "/usr/local/bin/docker -H unix://$psock run --rm --network none $img true"

report "docker ps -a via gcr's API (200 containers)" "$(median_ms api-docker-ps)" "bar" 20 20
report "docker ps -a (200 containers, same CLI)" "$(median_ms api-docker-ps)" "private dockerd" "$(median_ms api-docker-ps-dockerd)" -
report "docker ps -a, Debian's 20.10 CLI (200)" "$(median_ms api-docker-ps-debian)" "bar" 20 20
report "docker ps -a, Debian's 20.10 CLI (200)" "$(median_ms api-docker-ps-debian)" "private dockerd" "$(median_ms api-docker-ps-dockerd-debian)" -
report "docker ps -a (200), the CLI's floor" "$(median_ms api-docker-ps)" "replay of gcr's bytes" "$(median_ms api-docker-ps-replay)" -
report "docker ps -a, Debian's CLI, the CLI's floor" "$(median_ms api-docker-ps-debian)" "replay of gcr's bytes" "$(median_ms api-docker-ps-debian-replay)" -
report "  floor: docker version, Debian's 20.10 CLI" "$(median_ms api-docker-floor-debian)" "-" - -
report "curl /metrics (100 running containers)" "$(median_ms api-metrics)" "bar" 20 20
report "  floor: docker version (CLI start + 2 requests)" "$(median_ms api-docker-floor)" "-" - -
report "  floor: curl /_ping" "$(median_ms api-curl-floor)" "-" - -
report "  docker ps -a -n 1 (one row)" "$(median_ms api-docker-ps-one)" "-" - -
report "  docker ps -a --format {{.ID}} (200 rows)" "$(median_ms api-docker-ps-ids)" "-" - -
report "  docker ps (the 100 running of the 200)" "$(median_ms api-docker-ps-running)" "-" - -
python3 - "$rss_kb" "$threads" "$metrics_total" "$list_total" <<'PY' | tee -a "$RESULTS/summary.txt"
import sys
kb, threads, t = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
print(f"  one containers/json?all=1 (200) inside curl (time_total, median of 5): {float(sys.argv[4]) * 1000:.2f} ms")
mb = kb / 1024
print(f"{'service idle RSS':<48} gcr {mb:8.2f} MB ({threads} threads) | bar 15 MB {'PASS' if mb <= 15 else 'FAIL'}")
print(f"  one /metrics request inside curl (time_total): {t * 1000:.2f} ms")
PY
report "docker run --rm IMG true via the API" "$(median_ms api-run-gcr)" "private dockerd" "$(median_ms api-run-dockerd)" -
report "docker run --rm IMG true via the API" "$(median_ms api-run-gcr)" "podman system service" "$(median_ms api-run-podman)" -

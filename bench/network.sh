#!/usr/bin/env bash
# Network bars (issue 5), side by side with podman in the same run:
#   gcr run --rm IMG /bin/true on the default bridge   (bar 20 ms; podman ~440 ms)
#   first byte through a published port, listener up   (bar 5 ms; vs direct to the container)
#   throughput through a published port                (bar >= 80% of direct to the container)
# Only 127.0.0.1 and the container's own address are contacted.
# GCR=/path/to/gcr skips the release build (e.g. a binary built elsewhere).
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine busybox-static curl
[ -n "${GCR:-}" ] || build_gcr
export GCR_ROOT=$(mktemp -d /tmp/gcr-bench-net.XXXXXX)
export GCR_RUN_DIR=$GCR_ROOT/run
work=$(mktemp -d)
cleanup() {
  "$GCR" ps -aq 2>/dev/null | xargs -r "$GCR" rm -f >/dev/null 2>&1 || true
  "$GCR" network __teardown >/dev/null 2>&1 || true
  rm -rf "$GCR_ROOT" "$work"
}
trap cleanup EXIT

mk_busybox_tar "$work/busybox.tar"
"$GCR" import "$work/busybox.tar" bench/busybox:1 >/dev/null
"$GCR" run --rm bench/busybox:1 /bin/true # provisions the default bridge once

hf gcr-run-bridge 100 "$GCR run --rm bench/busybox:1 /bin/true"
PODMAN_MS=-
if [ "${BENCH_PODMAN:-1}" = 1 ]; then
  setup_podman
  "$GCR" save -o "$work/bb.tar" bench/busybox:1
  if podman load -q -i "$work/bb.tar" >/dev/null 2>&1; then
    podman --runtime runc run --rm --network bridge localhost/bench/busybox:1 /bin/true >/dev/null 2>&1 || true
    hf podman-run-bridge 10 "podman --runtime runc run --rm --network bridge localhost/bench/busybox:1 /bin/true"
    PODMAN_MS=$(median_ms podman-run-bridge)
  fi
fi
report "gcr run --rm IMG /bin/true (default bridge)" "$(median_ms gcr-run-bridge)" "podman run --rm bridge" "$PODMAN_MS" 20

# A web server with a 256 MB file on tmpfs, published on 127.0.0.1.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$GCR" run -d --name web --tmpfs /www:size=300m -p "127.0.0.1:$PORT:8080" bench/busybox:1 sh -c \
  'echo hi > /www/index.html && dd if=/dev/zero of=/www/big bs=1M count=256 2>/dev/null && exec httpd -f -p 8080 -h /www' >/dev/null
IP=$("$GCR" network inspect bridge | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["containers"][0]["ip"])')
for _ in $(seq 1 200); do
  curl -sf -o /dev/null "http://$IP:8080/big" -r 0-0 && curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.05
done

# First byte: connect, send a request, receive one byte; 200 rounds alternating proxied and
# direct (so load drift hits both alike); medians in ms.
read -r FB_PROXY FB_DIRECT < <(python3 - "$PORT" "$IP" <<'PY'
import socket, statistics, sys, time
port, ip = int(sys.argv[1]), sys.argv[2]
def once(host, p):
    t = time.perf_counter()
    s = socket.create_connection((host, p))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.recv(1)
    dt = (time.perf_counter() - t) * 1000
    s.close()
    return dt
a, b = [], []
for _ in range(200):
    a.append(once("127.0.0.1", port))
    b.append(once(ip, 8080))
print("%.3f %.3f" % (statistics.median(a), statistics.median(b)))
PY
)
report "first byte through published port" "$FB_PROXY" "direct to container" "$FB_DIRECT" 5

# Throughput: 7 pairs of 256 MB downloads, proxied then direct back to back (load on this
# shared machine drifts); medians of each and the median of the per-pair ratios.
pairs=$(for _ in 1 2 3 4 5 6 7; do
  echo "$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$PORT/big") $(curl -s -o /dev/null -w '%{speed_download}' "http://$IP:8080/big")"
done)
python3 - "$pairs" <<'PY' | tee -a "$RESULTS/summary.txt"
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in sys.argv[1].splitlines() if l.strip()]
p = statistics.median(a for a, _ in pairs)
d = statistics.median(b for _, b in pairs)
r = statistics.median(a / b for a, b in pairs if b)
print(f"{'throughput through published port':<48} gcr {p/1e6:8.1f} MB/s | direct {d/1e6:8.1f} MB/s | proxy/direct {r:.3f} | bar 0.80 {'PASS' if r >= 0.8 else 'FAIL'}")
PY

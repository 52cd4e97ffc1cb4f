#!/usr/bin/env bash
# Registry bars (issue 6), side by side with skopeo in the same run, docker-registry on
# loopback, a 100 MB image of 5 random-data layers:
#   gcr pull  (fresh store)                  vs skopeo copy docker:// -> oci:   (ratio <= 1.0)
#   gcr push  (fresh registry)               vs skopeo copy oci: -> docker://   (ratio <= 1.0)
#   gcr pull of an unchanged image (re-pull)                                   (bar 50 ms)
source "$(dirname "$0")/lib.sh"
need_pkgs hyperfine skopeo docker-registry python3 curl
build_gcr
work=$(mktemp -d /tmp/gcr-bench-registry.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cleanup() {
  [ -f "$work/reg.pid" ] && kill "$(cat "$work/reg.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/regdata
http:
  addr: $host
YML
# (Re)starts docker-registry with empty storage; used as hyperfine --prepare for pushes.
cat > "$work/fresh-registry.sh" <<SH
#!/bin/sh
[ -f "$work/reg.pid" ] && kill \$(cat "$work/reg.pid") 2>/dev/null && sleep 0.2
rm -rf "$work/regdata"
docker-registry serve "$work/config.yml" >/dev/null 2>&1 &
echo \$! > "$work/reg.pid"
for i in \$(seq 100); do curl -sf "http://$host/v2/" >/dev/null 2>&1 && exit 0; sleep 0.05; done
echo "docker-registry did not start" >&2; exit 1
SH
chmod +x "$work/fresh-registry.sh"
"$work/fresh-registry.sh"

echo "building a 100 MB, 5-layer OCI layout..."
python3 - "$work/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256")
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d
layers, diffs = [], []
for i in range(5):
    data = os.urandom(20 * 1024 * 1024)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo(f"data/layer{i}.bin"); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
md = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
du -sh "$work/layout/blobs"
seed() { skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" "docker://$host/bench/big:1"; }
seed

# Pull: a fresh gcr store vs a fresh skopeo oci: directory, same registry, same image.
hf gcr-pull 5 --prepare "rm -rf $work/pullstore" "env GCR_ROOT=$work/pullstore $GCR pull -q $host/bench/big:1"
hf skopeo-pull 5 --prepare "rm -rf $work/skopeo-oci" "skopeo copy -q --src-tls-verify=false docker://$host/bench/big:1 oci:$work/skopeo-oci:big"
report "gcr pull 100 MB / 5 layers (fresh store)" "$(median_ms gcr-pull)" "skopeo copy docker->oci" "$(median_ms skopeo-pull)" "$(median_ms skopeo-pull)"

# Re-pull of an unchanged image: one manifest HEAD.
hf gcr-repull 30 "env GCR_ROOT=$work/pullstore $GCR pull -q $host/bench/big:1"
report "gcr re-pull, unchanged image" "$(median_ms gcr-repull)" "-" "-" 50

# Push: every run starts from an empty registry.
hf gcr-push 5 --prepare "$work/fresh-registry.sh" "env GCR_ROOT=$work/pullstore $GCR push -q $host/bench/big:1 $host/bench/pushed:1"
hf skopeo-push 5 --prepare "$work/fresh-registry.sh" "skopeo copy -q --dest-tls-verify=false oci:$work/layout:big docker://$host/bench/pushed:1"
report "gcr push 100 MB / 5 layers (empty registry)" "$(median_ms gcr-push)" "skopeo copy oci->docker" "$(median_ms skopeo-push)" "$(median_ms skopeo-push)"

#!/usr/bin/env bash
# Installs the system packages gcr's demo, tests and benchmarks use (Debian 12).
# Safe to run repeatedly; does nothing for packages already present.
set -euo pipefail
pkgs=(busybox-static runc skopeo umoci docker-registry strace iproute2 nftables iptables hyperfine buildah curl python3-seccomp libseccomp-dev sqlite3 procps podman catatonit golang-go golang-golang-x-mod-dev containerd prometheus docker-compose golang-github-docker-docker-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# podman on this hybrid-cgroup host: no default ulimits (its default of raising nofile
# fails under cgroup v1 here); tests use private --root/--runroot stores.
if [ "$(id -u)" = 0 ] && ! grep -qs '^default_ulimits' /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  if grep -qs '^\[containers\]' /etc/containers/containers.conf; then
    sed -i '0,/^\[containers\]/s//[containers]\ndefault_ulimits = []/' /etc/containers/containers.conf
  else
    printf '[containers]\ndefault_ulimits = []\n' >> /etc/containers/containers.conf
  fi
fi
# procps: `top` runs the host's ps, as dockerd does.
# golang-go + golang-golang-x-mod-dev: the audit tests build tests/peers/tlogcheck offline
# (GOPATH mode) against Go's own sumdb/note and sumdb/tlog.
# docker-registry's package starts a service on :5000; tests start their own on other ports.
# prometheus: its promtool checks the service's /metrics (crates/gcr/tests/api_metrics.rs);
# the package's own server (:9090) is not used.
# docker-compose: Debian's compose 1.29 (Python, on python3-docker) drives the service in
# crates/gcr/tests/api_compose.rs (a three-service project up, down and up again).
# golang-github-docker-docker-dev: its api/swagger.yaml (Docker Engine API v1.41, the
# version the service speaks) checks every response the API tests receive
# (crates/gcr/tests/peers/swagger_check.py); nothing else of the package is used.

# Peers of the trust tests (crates/gcr/tests/trust.rs): Python securesystemslib >= 1.0 in a
# venv and npm @sigstore/verify, both under target/peers (GCR_PEERS overrides). Checked
# first, so a second run costs a Python import and a stat.
peers=${GCR_PEERS:-$(cd "$(dirname "$0")/.." && pwd)/target/peers}
mkdir -p "$peers"
if ! "$peers/venv/bin/python" - 2>/dev/null <<'PY'
import importlib.metadata as m, sys
from securesystemslib.signer import SSlibKey, CryptoSigner  # noqa: F401
sys.exit(int(m.version("securesystemslib").split(".")[0]) < 1)
PY
then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  rm -rf "$peers/venv"
  python3 -m venv "$peers/venv"
  "$peers/venv/bin/pip" install -q --disable-pip-version-check 'securesystemslib[crypto]>=1.0,<2'
fi
# Peer of the CRI flow (crates/gcr/tests/cri/cri_flow.py): gRPC and protoc for Python.
if ! "$peers/venv/bin/python" -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
  "$peers/venv/bin/pip" install -q --disable-pip-version-check grpcio grpcio-tools
fi
# Peer of the Docker Engine API (crates/gcr/tests/api.rs): docker-py 7 (the docker CLI is
# /usr/local/bin/docker or docker.io's /usr/bin/docker, installed below).
if ! "$peers/venv/bin/python" -c 'import docker, sys; sys.exit(int(docker.__version__.split(".")[0]) < 7)' 2>/dev/null; then
  "$peers/venv/bin/pip" install -q --disable-pip-version-check 'docker>=7,<8'
fi
# docker-py's WebSocket attach (attach_socket(ws=True)) needs websocket-client, its
# `websockets` extra.
if ! "$peers/venv/bin/python" -c 'import websocket' 2>/dev/null; then
  "$peers/venv/bin/pip" install -q --disable-pip-version-check 'websocket-client>=1.3,<2'
fi
# Peer of the swagger check (crates/gcr/tests/peers/swagger_check.py): jsonschema and
# PyYAML validate the recorded responses against Docker's swagger.
if ! "$peers/venv/bin/python" -c 'import jsonschema, yaml' 2>/dev/null; then
  "$peers/venv/bin/pip" install -q --disable-pip-version-check 'jsonschema>=4,<5' 'PyYAML>=6,<7'
fi
if [ ! -f "$peers/node/node_modules/@sigstore/verify/package.json" ]; then
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  mkdir -p "$peers/node"
  (cd "$peers/node" && npm install --silent --no-audit --no-fund \
    '@sigstore/verify@^3.1' '@sigstore/bundle@^4' '@sigstore/protobuf-specs@^0.5')
fi
# Peer of the Dockerfile corpus (crates/gcr/tests/dockerfile.rs): docker.io's dockerd 20.10
# (BuildKit built in) and its CLI /usr/bin/docker; the test starts a private dockerd and
# stops it. Installing it leaves /usr/local/bin/docker, containerd and runc as they are.
if [ "$(id -u)" = 0 ] && ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

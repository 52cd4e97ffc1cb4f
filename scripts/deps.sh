#!/usr/bin/env bash
# Installs the system packages gcr's demo, tests and benchmarks use (Debian 12).
# Safe to run repeatedly; does nothing for packages already present.
set -euo pipefail
pkgs=(busybox-static runc skopeo umoci docker-registry strace iproute2 nftables iptables hyperfine buildah curl python3-seccomp libseccomp-dev)
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
# docker-registry's package starts a service on :5000; tests start their own on other ports.

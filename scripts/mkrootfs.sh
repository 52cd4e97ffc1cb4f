#!/usr/bin/env bash
# mkrootfs.sh DIR: a minimal busybox root filesystem (static busybox, applet symlinks,
# /etc/passwd and /etc/group with root and an unprivileged user).
set -euo pipefail
dir=$1
bb=${BUSYBOX:-/bin/busybox}
mkdir -p "$dir"/{bin,etc,tmp,proc,sys,dev,root,home/app}
cp "$bb" "$dir/bin/busybox"
for a in $("$bb" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
done
chmod 1777 "$dir/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n' > "$dir/etc/group"

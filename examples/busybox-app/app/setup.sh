#!/bin/sh
# Runs at build time inside the image under construction.
set -e
mkdir -p /app/data
echo "$GREETING" > /app/greeting.txt
wc -c < /app/greeting.txt > /app/greeting.size
chown -R 1000:1000 /app/data
echo "setup done: $(cat /app/greeting.size) bytes"

#!/bin/sh
echo "$(cat /app/greeting.txt) (running as $(id -u), in $(pwd))"

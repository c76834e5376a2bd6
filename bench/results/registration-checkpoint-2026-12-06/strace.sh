#!/bin/bash
# usage: strace.sh REPO OUTDIR : bench.registration (window 8, 6 s) under strace -f, fsync family per thread
repo=$1; out=$2; rm -rf "$out"; mkdir -p "$out"
cd "$repo" && strace -f -ff -T -tt -y -o "$out/t" -e trace=fdatasync,fsync \
  .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 6 \
  --no-profile --no-reference --no-plot --json "$out/bench.json" > "$out/log" 2>&1

#!/bin/bash
# ruff: noqa  (a measurement script kept as it was run)
# usage: persist-ab.sh BEFORE AFTER OUT ROUNDS : bench.persistence alternating the two checkouts
b=$1; a=$2; out=$3; n=${4:-2}; mkdir -p "$out"
for i in $(seq 1 "$n"); do
  for side in before after; do
    repo=$b; [[ $side == after ]] && repo=$a
    cat /proc/loadavg > "$out/load-$side-$i.txt"
    (cd "$repo" && .venv/bin/python -m bench.persistence --json "$out/$side-$i.json" > "$out/$side-$i.log" 2>&1)
    cat /proc/loadavg >> "$out/load-$side-$i.txt"
  done
done

#!/bin/bash
# alternating pairs: BEFORE and AFTER checkouts (f0a8227 and the day's code in this folder), each with its own
# compiled build; usage: BEFORE=dir AFTER=dir ab.sh OUTDIR PAIRS
out=${1:?out}; pairs=${2:-3}; mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for arm in before after; do
    dir=$BEFORE; [[ $arm == after ]] && dir=$AFTER
    (cd "$dir" && .venv/bin/python -m bench.registration --json "$out/$i-$arm.json" \
       --no-profile --no-reference --windows 8,32 --loads 1000 --no-plot) \
       2>&1 | grep -E "closed|offered " | sed "s/^/$i $arm /" | cut -c1-220
  done
done

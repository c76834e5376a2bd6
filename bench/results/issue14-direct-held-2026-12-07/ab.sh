#!/bin/bash
# alternating pairs of bench.handover_paired --paired seamless-smooth --moves 20:
# BEFORE and AFTER checkouts (each with its own compiled build); usage:
# BEFORE=dir AFTER=dir ab.sh OUTDIR PAIRS
out=${1:?out}; pairs=${2:-2}; mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for arm in before after; do
    dir=$BEFORE; [[ $arm == after ]] && dir=$AFTER
    (cd "$dir" && flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired \
       --paired seamless-smooth --moves 20 --no-plot --json "$out/$i-$arm.json") \
       2>&1 | grep -v "WARNING: Location" | tail -16 > "$out/$i-$arm.txt"
  done
done

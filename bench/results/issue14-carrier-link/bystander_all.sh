#!/bin/bash
# bystander_all.sh KIND: ../issue14-first-packets-2/bystander.py on each runs/KIND-*.json
# with the run directory its log names (kept under /tmp by --keep-dir); the summary
# lines (median over the moves of the largest one-way delay of the MN that does not
# move, per 20 ms of send time after link_moved) go to stdout.
cd "$(dirname "$0")"
for j in runs/"$1"-carrier-*.json runs/"$1"-replug-*.json; do
    dir=$(sed -n 's/^run directory kept: //p' "${j%.json}.log")
    echo "== $(basename "$j" .json) ($dir)"
    ../../../.venv/bin/python ../issue14-first-packets-2/bystander.py "$j" "$dir" | grep 'median over moves'
done

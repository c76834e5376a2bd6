#!/bin/bash
# one bench.registration run per tree with the profile (cpu_by_component) and the per-thread CPU, alternating
out=$1; shift
mkdir -p $out
for spec in "$@"; do
  label=${spec%%=*}; rest=${spec#*=}; d=${rest%%:*}; extra=""; [[ $rest == *:* ]] && extra=${rest#*:}
  l0=$(cut -d' ' -f1-3 /proc/loadavg)
  ( cd $d && PYTHONPATH=$d timeout 600 /work/main/.venv/bin/python -m bench.registration --users 2000 --windows 8,32 --loads 100 --duration 4 --no-reference --no-plot $extra --json $out/$label.json > $out/$label.log 2>&1 )
  echo "$label load $l0 -> $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/load.txt
done

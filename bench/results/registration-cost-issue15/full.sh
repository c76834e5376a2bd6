#!/bin/bash
# one full bench.registration run per tree (profile included), alternating
out=$1; shift
mkdir -p $out
for spec in "$@"; do
  label=${spec%%=*}; d=${spec#*=}
  l0=$(cut -d' ' -f1-3 /proc/loadavg)
  ( cd $d && PYTHONPATH=$d timeout 600 /work/main/.venv/bin/python -m bench.registration --users 10000 --windows 8,32 --loads 100,500,1000 --duration 4 --no-reference --no-plot --json $out/$label.json > $out/$label.log 2>&1 )
  echo "$label load $l0 -> $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/load.txt
done

#!/bin/bash
# usage: ab.sh OUTDIR PAIRS label1=dir1[:extra] label2=dir2[:extra] ...
# alternating runs; CPU per registration of the server process (closed loop, window 8)
out=$1; pairs=$2; shift 2
mkdir -p $out
for i in $(seq 1 $pairs); do
  for spec in "$@"; do
    label=${spec%%=*}; rest=${spec#*=}; d=${rest%%:*}; extra=""; [[ $rest == *:* ]] && extra=${rest#*:}
    l0=$(cut -d' ' -f1 /proc/loadavg)
    ( cd $d && PYTHONPATH=$d${EXTRA_PP:+:$EXTRA_PP} timeout 300 /work/wt-h15m/.venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot $extra --json $out/$label-$i.json > $out/$label-$i.log 2>&1 )
    l1=$(cut -d' ' -f1 /proc/loadavg)
    echo "$label $i load $l0 -> $l1 $(python3 -c "import json,sys;r=json.load(open('$out/$label-$i.json'))['saturation'][0];print(r['server_cpu_us_per_reg'],r['rate'],r['loadgen_cpu_us_per_reg'],r.get('server_thread_cpu_us_per_reg'))")" | tee -a $out/load.txt
  done
done

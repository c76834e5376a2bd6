#!/bin/bash
# usage: perfrun.sh TREE OUT : bench.registration closed loop (window 8, 12 s) with perf record on the server process for 6 s
t=$1; out=$2
cd $t
PYTHONPATH=$t timeout 300 /work/main/.venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 12 --no-profile --no-reference --no-plot --json $out.json > $out.log 2>&1 &
bp=$!
for i in $(seq 1 120); do grep -q "warm-up" $out.log 2>/dev/null && break; sleep 0.5; done
sleep 8   # warm-up of 2,000 users takes ~7 s, then the closed loop
py=$(pgrep -P $bp | head -1); sp=$(pgrep -P $py -f -- "--serve" | head -1)
echo "bench $bp server $sp" >> $out.log
perf record -F 999 -g -p $sp -o $out.perf -- sleep 6 > $out.perf.log 2>&1
wait $bp

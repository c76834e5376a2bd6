#!/bin/bash
# usage: ab.sh PAIRS FIRST -> alternating bench.registration runs of the base checkout
# (BASE, default /work/wt-s11r-base: main's product code, this branch's bench/registration*)
# and this checkout, BASE first in odd pairs and this one first in even pairs; JSON in
# ab/{before,after}-N.json, the load average before each run in ab/load.txt
here=$(cd "$(dirname "$0")" && pwd); after=$(cd "$here/../../.." && pwd)
base=${BASE:-/work/wt-s11r-base}; pairs=${1:-4}; first=${2:-1}
mkdir -p "$here/ab"
run() {  # label checkout n
    echo "$(date -u +%H:%M:%S) $1-$3 load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$here/ab/load.txt"
    (cd "$2" && .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 \
        --duration 4 --no-profile --no-reference --no-plot --json "$here/ab/$1-$3.json" \
        > "$here/ab/$1-$3.log" 2>&1)
}
for ((n = first; n < first + pairs; n++)); do
    if ((n % 2)); then run before "$base" $n; run after "$after" $n
    else run after "$after" $n; run before "$base" $n; fi
done

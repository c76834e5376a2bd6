#!/bin/bash
# usage: ab.sh OUTDIR PAIRS -> alternating bench.registration runs of this checkout, compiled
# (the default: the build in .build/compiled/ must be current) then pure (MIPVPN_PURE=1);
# server CPU per registration (closed loop, window 8). One line per run in OUTDIR/load.txt:
# label, round, load before -> after, server CPU us/reg, rate, load generator us/reg,
# per-thread us/reg, the server's build.
set -u
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../.." && pwd)
out=$1; pairs=$2
mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for label in compiled pure; do
    pure=; [[ $label == pure ]] && pure=1
    l0=$(cut -d' ' -f1 /proc/loadavg)
    ( cd "$repo" && MIPVPN_PURE=$pure timeout 300 .venv/bin/python -m bench.registration \
        --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference \
        --no-plot --json "$out/$label-$i.json" > "$out/$label-$i.log" 2>&1 )
    l1=$(cut -d' ' -f1 /proc/loadavg)
    echo "$label $i load $l0 -> $l1 $(python3 -c "import json;j=json.load(open('$out/$label-$i.json'));r=j['saturation'][0];print(r['server_cpu_us_per_reg'],r['rate'],r['loadgen_cpu_us_per_reg'],r.get('server_thread_cpu_us_per_reg'),r['codes'],(j.get('server_build') or {}).get('mode'),(j.get('server_build') or {}).get('loaded'))")" | tee -a "$out/load.txt"
  done
done

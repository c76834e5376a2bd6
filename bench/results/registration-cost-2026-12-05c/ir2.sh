#!/bin/bash
# usage: ir.sh TREE OUT N WARM -> Ir per registration of N registrations after WARM
t=$1; out=$2; n=$3; w=$4
cd $t && PYTHONHASHSEED=${PYTHONHASHSEED:-0} H15_CG=1 H15_TIMEOUT=300 PYTHONPATH=$t timeout 900 valgrind --tool=callgrind --callgrind-out-file=$out /work/wt-h15m/.venv/bin/python /tmp/h15m/ir_harness2.py $n $w > $out.log 2>&1
f=$(ls -t $out* | grep -v log | head -1)
# the dump after the measured registrations (callgrind_control -d) is the file with the highest suffix
best=$(for x in $out.*; do [[ $x == *.log ]] && continue; echo "$(grep -m1 '^summary:\|^totals:' $x | awk '{print $2}') $x"; done | sort -n | head -5)
echo "$best"
grep registrations $out.log

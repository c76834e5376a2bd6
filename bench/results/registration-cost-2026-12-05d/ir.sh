#!/bin/bash
# usage: ir.sh LABEL OUT N WARM -> callgrind Ir of N registrations after WARM (ir_harness.py)
# in this checkout; LABEL compiled (the current build in .build/compiled/) or pure
# (MIPVPN_PURE=1). Prints the dumps' totals and the harness's lines.
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../.." && pwd)
label=$1; out=$2; n=$3; w=$4
pure=; [[ $label == pure ]] && pure=1
cd "$repo" && MIPVPN_PURE=$pure PYTHONHASHSEED=${PYTHONHASHSEED:-0} H15_CG=1 H15_TIMEOUT=300 \
  PYTHONPATH=$repo timeout 900 valgrind --tool=callgrind --callgrind-out-file="$out" \
  .venv/bin/python "$here/ir_harness.py" "$n" "$w" > "$out.log" 2>&1
for x in "$out".*; do [[ $x == *.log ]] && continue; echo "$(grep -m1 '^summary:\|^totals:' "$x" | awk '{print $2}') $x"; done | sort -n
grep -E 'registrations|^build' "$out.log"

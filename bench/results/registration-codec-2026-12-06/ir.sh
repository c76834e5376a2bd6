#!/bin/bash
# usage: REPO=/path/to/checkout ir.sh OUT N WARM [renew]
# callgrind Ir of N registrations after WARM (this folder's ir_harness.py, the compiled
# build of REPO), as registration-cost-2026-12-05d/ir.sh; "renew": the N measured ones
# are renewals (H15_RENEW=1, WARM >= N). Prints the dump's total and the harness's lines.
here=$(cd "$(dirname "$0")" && pwd); repo=${REPO:?REPO=checkout}
out=$1; n=$2; w=$3; renew=; [[ ${4:-} == renew ]] && renew=1
cd "$repo" && H15_RENEW=$renew PYTHONHASHSEED=${PYTHONHASHSEED:-0} H15_CG=1 H15_TIMEOUT=300 \
  PYTHONPATH=$repo timeout 1500 valgrind --tool=callgrind --callgrind-out-file="$out" \
  .venv/bin/python "$here/ir_harness.py" "$n" "$w" > "$out.log" 2>&1
for x in "$out".*; do [[ $x == *.log ]] && continue; echo "$(grep -m1 '^summary:\|^totals:' "$x" | awk '{print $2}') $x"; done | sort -n
grep -E 'registrations|^build|gateway calls' "$out.log"

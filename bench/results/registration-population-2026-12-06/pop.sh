#!/bin/bash
# pop.sh WARM OUT: callgrind Ir of 100 renewals after WARM users registered once (instrumentation off until then)
here=$(cd "$(dirname "$0")" && pwd); cd "$here/../../.."
MIPVPN_PURE= PYTHONHASHSEED=0 H15_CG=1 H15_TIMEOUT=600 PYTHONPATH="$PWD" timeout 1500 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$2" .venv/bin/python "$here/pop_harness.py" 100 "$1" > "$2.log" 2>&1
for x in "$2".*; do [[ $x == *.log ]] && continue; echo "$(grep -m1 '^summary:\|^totals:' "$x" | awk '{print $2}') $x"; done
grep -E 'registrations|^build' "$2.log"

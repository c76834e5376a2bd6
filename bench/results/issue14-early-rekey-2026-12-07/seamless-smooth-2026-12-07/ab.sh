# ruff: noqa  (a measurement script kept as it was run)
# seamless-smooth, alternating: head = /work/main (878280d), rekey = /tmp/s14/wt-rekey (bf4c185 + 92174c7's
# runtime change, the same compiled sources, its .build shared); 2 pairs
OUT=${OUT:-/tmp/s14/h14}
for r in 1 2; do
 for lab in head rekey; do
  d=/work/main; [[ $lab == rekey ]] && d=/tmp/s14/wt-rekey
  cd $d
  .venv/bin/python -m bench.handover_paired --paired seamless-smooth --moves 20 --no-plot --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r rc=$? $(date -u +%H:%M)"
 done
done

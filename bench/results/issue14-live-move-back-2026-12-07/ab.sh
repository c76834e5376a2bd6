# ruff: noqa  (a measurement script kept as it was run)
# seamless-smooth, alternating: before = /tmp/wt-base (852ba47, main's .build copied: the
# compiled sources are the same), after = /work/main (the live promotion); 3 pairs
OUT=${OUT:-/tmp/s16/ab}
for r in 1 2 3; do
 for lab in before after; do
  d=/work/main; [[ $lab == before ]] && d=/tmp/wt-base
  cd $d
  .venv/bin/python -m bench.handover_paired --paired seamless-smooth --moves 20 --no-plot --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r rc=$? $(date -u +%H:%M)"
 done
done

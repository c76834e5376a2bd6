# ruff: noqa  (a measurement script kept as it was run)
# before = /tmp/s14/wt-base (5336d64), after = /work/main (HEAD); alternating, 4 pairs
OUT=${OUT:-/tmp/s14/ab4}
for r in 1 2 3 4; do
 for lab in before after; do
  d=/work/main; [[ $lab == before ]] && d=/tmp/s14/wt-base
  cd $d
  l0=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json $OUT/$lab-$r.json > $OUT/$lab-$r.log 2>&1
  echo "$lab $r load $l0 $(grep -o 'server [0-9.]* us' $OUT/$lab-$r.log) $(grep -o 'build.: .[a-z]*' $OUT/$lab-$r.json | head -1)"
 done
done

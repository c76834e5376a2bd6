#!/bin/bash
# ab.sh: probe.py alternating base (275d13c) and fix (/work/main working tree)
for rep in 1 2; do
for u in 10000 2000; do
for side in base fix; do
  tree=/work/wt-s11base; [ $side = fix ] && tree=/work/main
  echo "$(date -u +%T) $(cut -d' ' -f1-3 /proc/loadavg) $side $u rep$rep" >> ab.log
  (cd $tree && PYTHONPATH=$tree timeout 300 .venv/bin/python /tmp/s11pop/probe.py $u 2>/dev/null | tail -1 > /tmp/s11pop/ab-$side-$u-$rep.json)
done; done; done
echo done >> ab.log

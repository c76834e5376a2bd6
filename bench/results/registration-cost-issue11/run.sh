#!/bin/bash
# alternating before/after: CPU per registration of the server process(es)
# expects two checkouts: /work/wt-base (before) and /work/main (after)
for i in 1 2 3 4; do
  for tree in base main; do
    d=/work/wt-$tree; [[ $tree == main ]] && d=/work/main
    ( cd $d && PYTHONPATH=$d timeout 300 /work/main/.venv/bin/python -m bench.registration --users 2000 --windows 8 --loads 100 --duration 4 --no-profile --no-reference --no-plot --json /tmp/regcpu/$tree-$i.json > /tmp/regcpu/$tree-$i.log 2>&1 )
    echo "$tree $i $(uptime | sed 's/.*load average: //')" >> /tmp/regcpu/load.txt
  done
done
echo done >> /tmp/regcpu/load.txt

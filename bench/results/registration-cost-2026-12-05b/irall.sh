#!/bin/bash
# pairs of Ir runs (ir2.sh: Ir and the measured wall time), two at a time
run() { ./ir2.sh /tmp/h15y/$1 /tmp/h15y/cgF-$1-$2 100 20 > /tmp/h15y/irF-$1-$2.out 2>&1; }
for pair in "base s7" "s2 s3" "s4 s5" "s6 base" "s7 s2" "s3 s4" "s5 s6"; do
  set -- $pair
  r=1; [ -e /tmp/h15y/irF-$1-1.out ] && r=2
  r2=1; [ -e /tmp/h15y/irF-$2-1.out ] && r2=2
  run $1 $r & run $2 $r2 & wait
done
echo done

#!/bin/bash
# usage: irpair.sh A B RUN -> ir2.sh on trees A and B at the same time (Ir of 100 registrations after 20)
cd /tmp/h15m2
run() { ./ir2.sh /tmp/h15m2/$1 /tmp/h15m2/cg/cg-$1-$2 100 20 > /tmp/h15m2/cg/ir-$1-$2.out 2>&1; }
run $1 $3 & run $2 $3 & wait

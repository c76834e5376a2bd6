#!/bin/bash
for c in "$@"; do
  r=$(/tmp/h15/ir.sh /tmp/h15/trees/$c /tmp/h15/ir-$c 100 20)
  echo "$c $(echo "$r" | head -1) | $(echo "$r" | tail -1) | load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/h15/ir.txt
done

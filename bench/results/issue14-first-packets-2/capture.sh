#!/bin/bash
# one paired run of the current code with dumpcap (udp 5001: the probes' cleartext) in the
# HA, FA1, FA2 and CN-GW namespaces; pcaps to /tmp/h14g/cap/
kind=${1:-seamless}
mkdir -p /tmp/h14g/cap; rm -f /tmp/h14g/cap/*
cd /work/wt-h14g
before=$(ls -d /tmp/mipvpn-bench-paired-* 2>/dev/null | sort)
flock /tmp/mipvpn-integration.lock .venv/bin/python -m bench.handover_paired --paired $kind --moves 20 --keep-dir --json /tmp/h14g/cap/run.json > /tmp/h14g/cap/run.log 2>&1 &
bench=$!
pids=()
for i in $(seq 1 600); do
  d=$(comm -13 <(echo "$before") <(ls -d /tmp/mipvpn-bench-paired-* 2>/dev/null | sort) | tail -1)
  if [ -n "$d" ] && [ -f $d/gw/cngw/netns ] && [ -f $d/gw/ha/netns ] && [ -f $d/gw/fa2/netns ]; then break; fi
  sleep 0.2
done
echo "run dir $d" > /tmp/h14g/cap/dir
for gw in ha fa1 fa2 cngw; do
  ns=$(cat $d/gw/$gw/netns)
  nsenter --net=$ns dumpcap -q -i any -f 'udp port 5001' -s 80 -w /tmp/h14g/cap/$gw.pcapng > /tmp/h14g/cap/$gw.dumpcap.log 2>&1 &
  pids+=($!)
done
echo "${pids[@]}" > /tmp/h14g/cap/pids
wait $bench
for p in "${pids[@]}"; do kill -INT $p 2>/dev/null; done
sleep 1
echo done >> /tmp/h14g/cap/dir

#!/bin/bash
# usage: mypyc_build.sh TREE c1|c2|c3 -> compiles the named set of modules of TREE (a
# `git archive` export) in place with mypyc (the .so files land next to the .py files and
# shadow them); mypyc.ini = the project's [tool.mypy] settings without warn_unused_configs
# (mypyc exits 1 on that note).
set -euo pipefail
t=$1; set_=$2
cd "$t"
D=controller/proto/diameter
c1="$D/decoding.py $D/encoding.py $D/templates.py $D/wire.py $D/walk.py $D/vpn_memo.py $D/agents.py"
case $set_ in
  c1) mods=$c1 ;;
  # + the message dataclasses, numbers, vendor and the MIPv4 codec (its package __init__
  # left out: compiled, importing any submodule segfaulted)
  c2) mods="$c1 $D/messages.py $D/numbers.py $D/vendor.py $(ls controller/proto/mip/*.py | grep -v __init__) controller/proto/nai.py controller/proto/mip_keys.py controller/proto/mip_rrq.py" ;;
  # + controller/core except the package, other changes' files (flows, fa_prepare) and
  # what mypyc refuses: role.py (a str subclass), persist.py / visitors.py (multiple inheritance)
  c3) mods="$c1 $(ls controller/core/*.py | grep -v -E '__init__|flows.py|fa_prepare.py|role.py|persist.py|visitors.py')" ;;
esac
time /work/wt-h15m/.venv/bin/mypyc --config-file "$(dirname "$(readlink -f "$0")")/mypyc.ini" $mods

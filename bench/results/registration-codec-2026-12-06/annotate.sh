#!/bin/bash
# usage: annotate.sh DUMP SUMMARY > cg/NAME.txt — ir.sh's lines for one run (SUMMARY: its
# stdout), then the inclusive Ir of the codec's entry points and Dispatch.diameter_outcome
# (callgrind_annotate --inclusive=yes), the rows as printed (paths shortened).
cat "$2"
callgrind_annotate --inclusive=yes "$1" 2>/dev/null \
  | grep -E "PROGRAM TOTALS|CPyDef_(decoding___decode|decoding___parse_avps|decoding____decode_mip|decoding____Avps_____init__|encoding___encode|templates___encode_fast|templates____message|dispatch___Dispatch___diameter_outcome) " \
  | sed -e 's#/[^ ]*__native_mipvpn_compiled.c:##' -e 's# \[/.*##'

"""Benchmarks: scripts that print figures and write JSON + a PNG plot (not timed tests).

``mipvpn bench NAME [ARGS...]`` runs ``python -m bench.NAME ARGS...``:

- ``registration``: full FA -> AAAF -> AAAH -> HA registrations/s and latency, controller
  runtime in its own process, virtual MNs over UDP; python-diameter and DiameterNode
  one-hop references in the same run.
- ``scale``: per-handover processing time and bytes per binding, 100 -> 100,000 bindings
  (pure roles, no sockets).
- ``handover``: repeated fa1 <-> fa2 moves through Mininet + OVS + charon; gap and loss
  per direction, signalling phases, IKE exchange, emulation link-move time.  Root; runs
  in a private network namespace.
- ``dataplane``: iperf3 through the steered path vs bare strongSwan tunnels; OpenFlow
  messages per handover.  Root; private network namespace.
- ``leak``: register/expire cycles through the runtime (fake clock): bindings, caches,
  tunnels and flows back at the baseline after each; memory slope per 100 cycles.
- ``overload``: 10x the nominal registration rate for 30 s at the runtime in its own
  process: accepted / refused (66) / unanswered, RSS over time, consistency after.
- ``replicas``: home-domain replicas on etcd (issue 17): CPU per registration with
  SQLite vs etcd, 1 vs 2 replicas; a replica killed during a renewal probe.
- ``sweep``: one mobility experiment (generated grid, random walk) at a growing number
  of MNs until a run breaks (a move failed, an MN unbound, no report); root.

Results go to ``bench/results/NAME.json`` / ``.png`` unless ``--json FILE`` is given.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

BENCHES = ("registration", "scale", "handover", "dataplane", "leak", "overload",
           "replicas", "sweep")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``bench`` to the ``mipvpn`` sub-command parsers."""
    p = sub.add_parser("bench", help="run a benchmark (figures, JSON, plot)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=BENCHES)
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="the benchmark's own options (see mipvpn bench NAME --help)")
    return p  # type: ignore[no-any-return]


def run_bench(args: Any) -> int:
    """``mipvpn bench NAME ARGS...``: ``args.name`` in BENCHES, ``args.args`` its argv."""
    if args.name not in BENCHES:
        raise SystemExit(f"unknown benchmark {args.name!r} (known: {', '.join(BENCHES)})")
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(list(args.args or [])))

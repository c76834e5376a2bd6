"""Issue 14 (the HA's and the new FA's tunnel set): what the committed runs of this
folder say, per group of ``runs.json``: the median and p90 of each segment of the
walk, registration -> tunnel ready and the protocol-added gap, over every move.

    python bench/results/issue14-tunnel-set/analyse.py

The tables are those of ``bench/results/issue14-prepared/analyse.py`` (reused), plus
the HA's own segments.  Standard library only."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "prepared_analyse", HERE.parent / "issue14-prepared" / "analyse.py")
assert _spec is not None and _spec.loader is not None
prepared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prepared)
prepared.HERE = HERE      # read this folder's runs

EXTRA = [("ha_bind", "ha_tunnel_set"), ("ha_bind", "ha_rrp_sent"),
         ("rrp_from_ha", "tunnel_up")]


def main() -> None:
    prepared.tables()
    print("HA segments:")
    for name, files in json.loads((HERE / "runs.json").read_text())["groups"].items():
        moves = prepared.moves_of(files)
        cells = []
        for a, b in EXTRA:
            v = prepared.span(moves, a, b)
            cells.append(f"{a}->{b} {statistics.median(v):.2f} (p90 {prepared.p90(v):.2f})")
        print(f"  {name}: " + "; ".join(cells))


if __name__ == "__main__":
    main()

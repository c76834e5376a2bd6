"""Each paired result's whole-run loss per MN (``bench.handover_paired.whole_run``),
for result files written before the benchmark recorded it:
``python whole.py */*.json``."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench.handover_paired import whole_run  # noqa: E402

for name in sys.argv[1:]:
    res = json.loads(Path(name).read_text())
    mine = [m for m in res["moves"] if m["mn"] == "mn1"]
    base = [m for m in res["moves"] if m["mn"] == "mn2"]
    print(name, "on", whole_run(res["probes"], "mn1", mine),
          "off", whole_run(res["probes"], "mn2", base))

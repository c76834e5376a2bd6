"""What persisting the controller's state costs a registration (issue 5).

A registration changes one record in each of four roles (HA binding, AAAH cache, AAAF
cache, FA visitor); the runtime writes each role's record in its own transaction just
before that role's answer leaves (``Runtime._flush_state``).  This measures exactly
that work without the rest of the controller: for N users (default 10,000) it
registers a template user through the real roles once (``tests``' synchronous walk),
then, per simulated registration of user i, exports the four records
(``export_state``), and writes them in four transactions to a ``StateStore`` file —
with ``synchronous=NORMAL`` (the default) and ``FULL``, into a database already
holding N users (the cost must not grow with N: one row per key, B-tree upsert).

    python -m bench.persistence [--users 10000] [--json bench/results/persistence.json]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (bench_parser, machine, parse_bench_args, print_machine,
                          save_results, summary)


def run(users: int) -> dict[str, Any]:
    from controller.adapters.state import StateStore
    from controller.core import persist
    from controller.testing.walk import MobileNode, Walk

    walk = Walk()
    assert MobileNode(walk).register("fa1").accepted
    nai = "alice@home.example"
    roles = [(k, r) for k, r in walk.roles.items()
             if persist.persistable(k, r) and r.export_state(nai) is not None]
    out: dict[str, Any] = {"users": users, "records_per_registration": len(roles),
                           "record_bytes": {k: len(json.dumps(r.export_state(nai)))
                                            for k, r in roles}}
    # export cost alone
    t0 = time.perf_counter()
    n = 2000
    for _ in range(n):
        for _k, r in roles:
            r.export_state(nai)
    out["export_us_per_registration"] = round((time.perf_counter() - t0) / n * 1e6, 1)
    records = {k: r.export_state(nai) for k, r in roles}
    for sync in ("normal", "full"):
        with tempfile.TemporaryDirectory(prefix="mipvpn-bench-state-") as tmp:
            store = StateStore(Path(tmp) / "vpn.db", synchronous=sync)
            # fill: every user already has its four records
            batch = [(k, f"user{i}@home.example", rec) for i in range(users)
                     for k, rec in records.items()]
            store.write(batch)
            lat: list[float] = []
            t_start = time.perf_counter()
            for i in range(users):
                key = f"user{i}@home.example"
                t = time.perf_counter()
                for k, rec in records.items():     # one transaction per role's answer
                    store.write([(k, key, rec)])
                lat.append((time.perf_counter() - t) * 1e3)
            took = time.perf_counter() - t_start
            out[sync] = {"per_registration_ms": summary(lat, 3),
                         "mean_us": round(took / users * 1e6, 1),
                         "registrations_per_s": round(users / took),
                         "db_bytes": sum(p.stat().st_size for p in Path(tmp).iterdir())}
            store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser("persistence", __doc__)
    ap.add_argument("--users", type=int, default=10000)
    args = parse_bench_args(ap, argv, plot=False)
    before = print_machine(machine())
    res = {"benchmark": "persistence", "machine": before, **run(args.users)}
    print(json.dumps({k: v for k, v in res.items() if k != "machine"}, indent=2))
    if args.json:   # with code, machine, load before/after and command (issue 13)
        save_results("persistence", args.json, res, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

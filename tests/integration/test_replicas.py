"""Issue 17, end to end over loopback (no root, no Mininet): two replicas of the home
domain on a real etcd, one replica killed by PID, the survivor renews the MN.

etcd (Debian's ``etcd-server``) is started by PID on free loopback ports in a temporary
data directory.  Two home processes (AAAH, HA, CN-GWs; ``--state etcd://...``) share the
home AAA's address; the visited side (AAAF, FAs) runs in a third process; the MN is a
virtual one of ``bench.registration`` (real Registration Requests over UDP to the FA).
The MN registers; the replica that accepted it (the owner of its records) is killed
with SIGKILL; after the dead replica's session lease runs out the survivor owns the
records, holds the binding, and accepts the MN's renewal (its HA counts it)."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("etcd") is None,
                                 reason="etcd not installed (Debian package etcd-server)")]


def test_survivor_takes_over_the_renewal_after_the_owner_is_killed() -> None:
    from bench.registration import USER_SPACING, LoadGenerator
    from bench.replicas import ReplicaSet, register_all
    from controller.adapters.etcd_state import SESSION_TTL

    rs = ReplicaSet(2, "etcd", users=1, log_level="INFO")
    lg = LoadGenerator(rs.info, 1)
    try:
        assert register_all(lg, 1) == 1
        before = rs.stats()
        assert all(s is not None and s["bindings"] == 1 for s in before)   # both hold it
        owners = [i for i, s in enumerate(before)
                  if s is not None and s["replication"]["owned"].get("ha")]
        assert len(owners) == 1, before                       # one owner of the binding
        dead, survivor = owners[0], 1 - owners[0]
        accepted_before = before[survivor]["roles"]["ha"]["accepted"]   # type: ignore[index]
        os.kill(rs.home[dead].info["pid"], signal.SIGKILL)
        rs.home[dead].proc.wait(10)
        killed = time.time()
        # the dead replica's owner keys go with its session lease; then the renewal
        # (the FA holds a same-NAI registration for USER_SPACING s)
        time.sleep(max(SESSION_TTL + 1.0, USER_SPACING))
        after = rs.home[survivor].call(cmd="stats")
        rep = after["replication"]
        assert after["bindings"] == 1                                    # binding kept
        assert rep["owned"].get("ha") == 1 and rep["counters"]["replica_takeovers"] >= 1
        took = [t for t in rep["takeovers"] if t["role"] == "ha"]
        assert took and took[0]["from"] is not None
        print(f"takeover: owner keys gone {took[0]['orphaned_at'] - killed:.3f} s, "
              f"claimed {took[0]['at'] - killed:.3f} s after the kill")
        codes: dict[int, int] = {}
        lat: list[float] = []
        deadline = time.monotonic() + 15
        while not codes.get(0) and time.monotonic() < deadline:
            # the visited AAAF's Diameter link redials and lands on the survivor
            if not lg.busy:
                lg._send_one()
            lg._receive(200, lat, codes)
            if lg.busy and time.perf_counter() - next(iter(lg.busy.values()))[2] > 2.0:
                lg.busy.clear()                       # unanswered: the MN retransmits
                time.sleep(USER_SPACING)
        assert codes.get(0) == 1, codes
        renewed = rs.home[survivor].call(cmd="stats")
        assert renewed["roles"]["ha"]["accepted"] == accepted_before + 1  # the survivor
        assert renewed["bindings"] == 1
    finally:
        lg.close()
        rs.close()

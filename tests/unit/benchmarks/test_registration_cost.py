"""Issue 15: ``bench.registration`` splits the server's CPU per registration by
component from a cProfile of its loop thread (``cpu_by_component``)."""

from __future__ import annotations

import cProfile

from bench.registration_report import COMPONENTS, component_table, cpu_by_component
from controller.adapters.store import VpnStore
from controller.core.aaa_home import UserRecord
from controller.proto import diameter as dia


def test_builtins_are_charged_to_the_component_that_called_them(tmp_path) -> None:
    """sqlite3's C methods (no component of their own) count as persistence, since the
    VPN store called them; the codec's own time counts as the Diameter codec; the
    shares scale the unprofiled CPU per registration and add up to it."""
    store = VpnStore(":memory:")
    store.put_user(UserRecord("u@x", "10.0.0.5", "ha", 300, bytes(16)))
    wire = dia.encode(dia.Dwr("a.example", "example", 1, 2))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(300):
        store.user("u@x")
        dia.decode(wire)
    prof.disable()
    path = str(tmp_path / "p.prof")
    prof.dump_stats(path)
    cost = cpu_by_component(path, 1000.0, 300)
    comps = cost["components"]
    assert {"persistence", "Diameter codec"} <= set(comps)
    assert comps["persistence"]["share"] > 0.05 and comps["Diameter codec"]["share"] > 0.05
    assert abs(sum(c["us_per_reg"] for c in comps.values()) - 1000.0) < 1.0
    assert "other" not in comps or comps["other"]["share"] < 0.2
    assert "persistence" in component_table(cost)
    assert {name for name, _ in COMPONENTS} >= {"Diameter codec", "MIPv4 codec",
                                                "persistence", "roles", "transport",
                                                "event loop"}

"""bench/scale.py's virtual MNs sign their moves with the MN-FA key of the nonce in
their last accepted reply, so the foreign AAA answers the intra-domain moves it times
locally (issue 11 made unsigned moves go home; issue 12)."""

from __future__ import annotations

import random

from bench import scale
from controller.adapters.store import VpnStore
from controller.config import load_topology


def test_scale_moves_are_answered_by_the_foreign_aaa() -> None:
    topo = load_topology(str(scale.DEFAULT_TOPOLOGY))
    store = VpnStore(":memory:")
    store.seed(topo)
    scale.seed_users(store, 0, 8, scale._profile_factory(topo))
    ctl = scale.Controller(topo, store)
    clock = scale.Clock()
    scale.fill(ctl, clock, 0, 8)
    assert ctl.mn_fa is not None and sorted(ctl.mn_fa) == list(range(8))
    aaaf = ctl.roles["aaaf:domain-a"].counters
    local0, proxied0 = aaaf.get("local", 0), aaaf.get("proxied", 0)
    times = scale.measure_moves(ctl, clock, 8, 8, random.Random(1))
    assert len(times) == 8
    assert aaaf.get("local", 0) - local0 == 8
    assert aaaf.get("proxied", 0) == proxied0


def test_memory_pass_keeps_no_mn_keys() -> None:
    topo = load_topology(str(scale.DEFAULT_TOPOLOGY))
    store = VpnStore(":memory:")
    store.seed(topo)
    scale.seed_users(store, 0, 2, scale._profile_factory(topo))
    ctl = scale.Controller(topo, store, remember_mn_fa=False)
    scale.fill(ctl, scale.Clock(), 0, 2)
    assert ctl.mn_fa is None and ctl.bindings() == 2

"""Issue 14: the tunnel an MN left, kept as the standing one of its preparation.

After a seamless MN's move the HA prepares the tunnel to the FA it left (a neighbour of
the new one), under the same tunnel id as the live tunnel its removal (the move's, or
the smooth-handoff retire's) takes down.  Taking it down and standing a new CHILD_SA up
cost the MN a downlink blip at the HA (kernel-libipsec: the new SA is the newest of the
reqid until the live one is re-asserted; 1-12 frames about 2.3 s after a move, session
20).  Where the live tunnel is what the preparation would stand (the key aside), the
roles' removals keep it instead: each end's driver marks its installed CHILD_SA
standing (``stand_live``), and nothing is removed or stood up.  A preparation of a
tunnel that stands already and differs only by its key loads the key at both ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from controller.core.actions import AddTunnel, PrepareTunnel, RemoveTunnel
from controller.core.vpn import TunnelEnd, TunnelSpec
from controller.runtime import settings
from controller.runtime.gateways import Gateways
from controller.testing.gateways import RecordingGateway

TID = "alice_home.example/ha-fa1"
LIVE = TunnelSpec(TID, TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                  TunnelEnd("fa1", "10.0.0.11", ("10.10.0.5/32",)), psk=b"m" * 32,
                  initiator="fa1")
#: the HA's preparation of the same tunnel: its own key (``prepared_psk``)
PREPARED = replace(LIVE, psk=b"p" * 32)


def _gateways() -> tuple[Gateways, dict[str, RecordingGateway]]:
    drivers = {n: RecordingGateway(n) for n in ("ha", "fa1", "fa2")}
    return Gateways(drivers, {}, {}), drivers  # type: ignore[arg-type]


async def _live(gws: Gateways) -> None:
    await gws.add_tunnel(AddTunnel("ha", LIVE.side_for("ha")))
    await gws.add_tunnel(AddTunnel("fa1", LIVE.side_for("fa1")))


async def _settle(gws: Gateways) -> None:
    for _ in range(3):
        await asyncio.sleep(0)
    if gws._refreshes:
        await asyncio.wait(list(gws._refreshes), timeout=0.05)


def test_the_tunnel_the_mn_left_stays_standing_instead_of_being_stood_up_anew() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await _live(gws)
        # the move: the HA prepares the old FA's tunnel, then the roles remove it
        # (the HA's end after its answer, the old FA's at its teardown or retire)
        # (the executor spawns the preparation: the removal may run before it starts)
        task = asyncio.ensure_future(
            gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0))
        await gws.retire_tunnel(RemoveTunnel("ha", TID, off_path=True))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        await task
        await _settle(gws)
        assert ("ha", TID) not in gws.tunnel_log and ("fa1", TID) not in gws.tunnel_log
        # the move back promotes it, as one stood up by a preparation
        await gws.add_tunnel(AddTunnel("ha", LIVE.side_for("ha")))
        assert await gws.add_tunnel(AddTunnel("fa1", LIVE.side_for("fa1")))
        assert gws.tunnel_log[("fa1", TID)]["on_prepared_ike_sa"] is True
        await asyncio.sleep(0.05)
        gws._stood.clear()

    asyncio.run(run())
    # responder first, as a preparation; no removal, no new CHILD_SA
    assert drv["ha"].log == [("add", TID), ("keep", TID), ("promote", TID), ("rekey", TID)]
    assert drv["fa1"].log == [("add", TID), ("keep", TID), ("promote", TID)]
    assert drv["ha"].kept_with[TID] == PREPARED.psk      # the preparation's key


def test_either_removal_may_come_first() -> None:
    """The old FA's teardown can reach the runtime before the HA's own removal."""
    gws, drv = _gateways()

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        await gws.retire_tunnel(RemoveTunnel("ha", TID, off_path=True))
        await _settle(gws)
        gws._stood.clear()

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("keep", TID)]
    assert drv["fa1"].log == [("add", TID), ("keep", TID)]


def test_a_move_back_before_the_removal_makes_a_later_removal_real() -> None:
    """The MN came back while the tunnel was still live (the core cancelled the
    retire and does not prepare it any more): a later removal of it is a real one."""
    gws, drv = _gateways()

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await _live(gws)                                 # the move back
        await gws.retire_tunnel(RemoveTunnel("ha", TID))  # e.g. the binding ended
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))

    asyncio.run(run())
    assert drv["ha"].log[-1] == ("remove", TID) and ("keep", TID) not in drv["ha"].log
    assert drv["fa1"].log[-1] == ("remove", TID)


def test_a_preparation_dropped_before_the_removal_leaves_it_to_be_removed() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, remove=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("ha", TID))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("remove", TID)]
    assert drv["fa1"].log == [("add", TID), ("remove", TID)]


def test_a_live_tunnel_unlike_the_preparation_is_removed_and_stood_up_anew() -> None:
    """Other selectors (say): the removals remove it, then the preparation stands its
    own CHILD_SA up, as before."""
    gws, drv = _gateways()
    other = replace(PREPARED, a=TunnelEnd("ha", "10.0.0.1", ("10.31.0.0/24",)))

    async def run() -> None:
        await _live(gws)
        task = asyncio.ensure_future(
            gws.prepare_tunnel(PrepareTunnel(other, child=True), delay=0))
        await asyncio.sleep(0.01)
        await gws.retire_tunnel(RemoveTunnel("ha", TID))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        await task
        gws._stood.clear()

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("remove", TID), ("stand", TID)]
    assert drv["fa1"].log == [("add", TID), ("remove", TID), ("stand", TID)]


def test_an_end_that_cannot_keep_it_falls_back_to_removal_and_a_new_stand() -> None:
    """The driver found the CHILD_SA gone or changed (or kernel XFRM): both ends are
    removed and the preparation stands a CHILD_SA up anew."""
    gws, drv = _gateways()
    drv["fa1"].keeps = False

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("ha", TID, off_path=True))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        await _settle(gws)
        gws._stood.clear()

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("keep", TID), ("remove", TID), ("stand", TID)]
    assert drv["fa1"].log == [("add", TID), ("remove", TID), ("stand", TID)]


def test_it_is_stood_up_anew_before_charon_would_rekey_it(monkeypatch: Any) -> None:
    """Kept standing, its CHILD_SA is as old as its last (re)key, not as the
    preparation: the refresh comes before the earliest rekey either end's charon has
    scheduled (``stand_live``'s answer), less a margin."""
    monkeypatch.setattr(settings, "STANDING_MARGIN", 0.0)
    gws, drv = _gateways()
    drv["fa1"].rekey_in = 0.02          # charon would rekey it at fa1 in 20 ms

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("ha", TID))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        drv["fa1"].rekey_in = 3600.0    # the CHILD_SA stood up anew
        await asyncio.sleep(0.1)
        gws._stood.clear()

    asyncio.run(run())
    assert drv["fa1"].log == [("add", TID), ("keep", TID), ("remove", TID), ("stand", TID)]


def test_a_new_key_for_a_standing_tunnel_is_loaded_not_stood_up_anew() -> None:
    """A full registration derives a new ``prepared_psk``: the spec of every standing
    tunnel changes by its key only.  The key is loaded at both ends; the CHILD_SA
    stays (before: taken down and stood up again, a downlink blip per neighbour)."""
    gws, drv = _gateways()
    spec2 = replace(PREPARED, tunnel_id="alice_home.example/ha-fa2",
                    b=TunnelEnd("fa2", "10.0.0.12", ("10.10.0.5/32",)), initiator="fa2")
    tid2 = spec2.tunnel_id

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(spec2, child=True), delay=0)
        await gws.prepare_tunnel(PrepareTunnel(replace(spec2, psk=b"q" * 32), child=True),
                                 delay=0)
        # another change (selectors) is a new stand, as before
        await gws.prepare_tunnel(PrepareTunnel(
            replace(spec2, a=TunnelEnd("ha", "10.0.0.1", ("10.31.0.0/24",))), child=True),
            delay=0)
        gws._stood.clear()

    asyncio.run(run())
    for name in ("ha", "fa2"):
        assert drv[name].log == [("stand", tid2), ("stand", tid2)], name
        assert drv[name].keys == [(tid2, b"q" * 32)], name


# -- review of the keep (2026-12-08): what may happen while it runs


def test_one_near_charons_rekey_is_stood_up_anew_at_once(monkeypatch: Any) -> None:
    """charon would rekey it within ``STANDING_MARGIN`` + ``STANDING_MIN``: not kept
    (its refresh would come while the old FA's role still lists it, and be skipped for
    good, leaving charon's rekey to promote it): removed and stood up anew at once."""
    gws, drv = _gateways()
    drv["fa1"].rekey_in = settings.STANDING_MARGIN + 30.0
    monkeypatch.setattr(gws, "tunnels_wanted", lambda g: {TID: LIVE} if g == "fa1" else {})

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("ha", TID))   # the HA's retire came first
        await _settle(gws)
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))
        gws._stood.clear()

    asyncio.run(run())
    for name in ("ha", "fa1"):
        assert drv[name].log[-2:] == [("remove", TID), ("stand", TID)], drv[name].log


def _slow_keep(drv: dict[str, RecordingGateway], name: str, seconds: float) -> None:
    import time
    keep = drv[name].stand_live

    def slow(side: Any) -> float | None:
        time.sleep(seconds)
        return keep(side)
    drv[name].stand_live = slow  # type: ignore[method-assign]


async def _keeping(gws: Gateways) -> asyncio.Future[None]:
    """Live at both ends, prepared, the HA's removal begun: the keep in progress (the
    FA's end slowed by ``_slow_keep``), 20 ms into it."""
    await _live(gws)
    await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
    keeping = asyncio.ensure_future(gws.retire_tunnel(RemoveTunnel("ha", TID)))
    await asyncio.sleep(0.02)
    return keeping


def test_a_move_back_while_it_is_being_kept_is_the_roles_again() -> None:
    """The HA's end is kept, the MN comes back before the FA's end is: both adds
    promote it (the HA rekeys it: the downlink is back), and nothing of the keep is
    left: both ends live, no refresh, a later removal is a real one."""
    gws, drv = _gateways()
    _slow_keep(drv, "fa1", 0.05)

    async def run() -> None:
        keeping = await _keeping(gws)              # the FA's end is being kept
        await _live(gws)                            # the move back
        await keeping
        await asyncio.sleep(0.05)                   # the HA's rekey, in the background
        assert ("ha", TID) in gws._live and ("fa1", TID) in gws._live
        assert TID not in gws._stood
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))

    asyncio.run(run())
    assert ("rekey", TID) in drv["ha"].log, drv["ha"].log
    assert drv["fa1"].log[-1] == ("remove", TID)


def test_a_gateway_error_while_keeping_removes_both_ends_and_stands_anew() -> None:
    gws, drv = _gateways()

    def broken(side: Any) -> float | None:
        raise ValueError("VICI: no such command")
    drv["fa1"].stand_live = broken  # type: ignore[method-assign]

    async def run() -> None:
        await _live(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
        await gws.retire_tunnel(RemoveTunnel("ha", TID))
        await gws.retire_tunnel(RemoveTunnel("fa1", TID))   # (done already: nothing)
        await _settle(gws)
        gws._stood.clear()

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("keep", TID), ("remove", TID), ("stand", TID)]
    assert drv["fa1"].log == [("add", TID), ("remove", TID), ("stand", TID)]


def test_a_preparation_dropped_while_it_is_being_kept_is_removed() -> None:
    gws, drv = _gateways()
    _slow_keep(drv, "fa1", 0.05)

    async def run() -> None:
        keeping = await _keeping(gws)
        await gws.prepare_tunnel(PrepareTunnel(PREPARED, remove=True), delay=0)
        await keeping
        gws._stood.clear()

    asyncio.run(run())
    for name in ("ha", "fa1"):
        assert drv[name].log[-1] == ("remove", TID), drv[name].log
    assert not [k for k in gws._prepared if k[1] == TID]


def test_the_has_end_is_kept_only_once_a_newer_sa_outranks_it(monkeypatch: Any) -> None:
    """kernel-libipsec sends on the newest SA of the shared reqid: the HA's end of the
    tunnel the MN left is kept only once the new FA's promotion rekey made a newer one
    (waited for: it runs in the background); still the newest after ``OUTRANK_WAIT``
    (a failed promotion), it is removed, which moves the downlink, as before."""
    monkeypatch.setattr(settings, "OUTRANK_WAIT", 0.05)
    for outranked_after in (0.02, None):
        gws, drv = _gateways()
        drv["ha"].outranks = False

        async def run() -> None:
            await _live(gws)
            await gws.prepare_tunnel(PrepareTunnel(PREPARED, child=True), delay=0)
            if outranked_after is not None:
                asyncio.get_running_loop().call_later(
                    outranked_after, setattr, drv["ha"], "outranks", True)
            await gws.retire_tunnel(RemoveTunnel("ha", TID))
            await _settle(gws)
            gws._stood.clear()

        asyncio.run(run())
        if outranked_after is not None:
            assert drv["ha"].log == [("add", TID), ("keep", TID)]
        else:
            assert drv["ha"].log == [("add", TID), ("remove", TID), ("stand", TID)]

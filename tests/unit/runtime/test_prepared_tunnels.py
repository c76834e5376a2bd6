"""Issue 14: the runtime prepares a tunnel at both ends (responder first, then the
initiator's IKE_SA) in the background, and the move's add at a prepared end keeps what
was stood up (``add_prepared``); a tunnel the registration touched meanwhile is left
alone; removing forgets the preparation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from controller.core.actions import AddTunnel, PrepareTunnel, RemoveTunnel
from controller.core.vpn import TunnelEnd, TunnelSpec
from controller.runtime import settings
from controller.runtime.gateways import Gateways
from controller.testing.gateways import RecordingGateway

TID = "alice_home.example/ha-fa2"
SPEC = TunnelSpec(TID, TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                  TunnelEnd("fa2", "10.0.0.12", ("10.10.0.5/32",)), psk=b"k" * 32,
                  initiator="fa2")


def _gateways() -> tuple[Gateways, dict[str, RecordingGateway]]:
    drivers = {n: RecordingGateway(n) for n in ("ha", "fa1", "fa2")}
    return Gateways(drivers, {}, {}), drivers  # type: ignore[arg-type]


def test_prepare_then_add_keeps_the_prepared_ike_sa() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0)
        # the move: the HA's end, then the FA's (initiator)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        # the preparation is used up: once the HA's end is gone the next add at the
        # FA is an ordinary one
        await gws.remove_tunnel(RemoveTunnel("ha", TID))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))

    asyncio.run(run())
    assert drv["ha"].log == [("prepare", TID), ("add_prepared", TID), ("remove", TID)]
    assert drv["fa2"].log == [("prepare", TID), ("add_prepared", TID), ("add", TID)]


def test_a_standing_child_sa_is_promoted_at_the_move() -> None:
    """``PrepareTunnel(child=True)``: the driver stands the CHILD_SA up at both ends
    (responder first); the move's add at each end promotes it, no CREATE_CHILD_SA."""
    gws, drv = _gateways()

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        up = await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        assert up and gws.tunnel_log[("fa2", TID)]["on_prepared_ike_sa"]
        await asyncio.sleep(0.05)    # the HA's rekey runs in the background

    asyncio.run(run())
    # the HA rekeys it last, in the background (a rekey's responder would install its
    # outbound SA only at the old one's DELETE)
    assert drv["ha"].log == [("stand", TID), ("promote", TID), ("rekey", TID)]
    assert drv["fa2"].log == [("stand", TID), ("promote", TID)]


def test_a_standing_child_sa_is_stood_up_anew_before_charon_would_rekey_it(
        monkeypatch: Any) -> None:
    """A rekey of a standing CHILD_SA would promote it (kernel-libipsec: the newest SA
    of the shared reqid takes the downlink), so it is taken down and stood up again
    after ``STANDING_REFRESH``, unless a move (or a removal) used it meanwhile."""
    monkeypatch.setattr(settings, "STANDING_REFRESH", 0.02)
    gws, drv = _gateways()

    async def run(move: bool) -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        if move:
            await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
            await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await asyncio.sleep(0.05)    # more than 2 refreshes
        gws._stood.clear()           # (the test ends its refreshes)
        await asyncio.sleep(0.03)

    asyncio.run(run(move=False))
    log = drv["ha"].log
    assert log[:4] == [("stand", TID), ("remove", TID), ("stand", TID), ("remove", TID)], log
    assert drv["fa2"].log[:3] == [("stand", TID), ("remove", TID), ("stand", TID)]
    gws, drv = _gateways()
    asyncio.run(run(move=True))
    assert ("remove", TID) not in drv["ha"].log + drv["fa2"].log


def test_responder_end_is_prepared_first() -> None:
    gws, drv = _gateways()
    order: list[str] = []
    for name in ("ha", "fa2"):
        drv[name].prepare_tunnel = (   # type: ignore[method-assign]
            lambda side, timeout=5.0, n=name: order.append(n) or 0.0)
    asyncio.run(gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0))
    assert order == ["ha", "fa2"]


def test_a_tunnel_set_meanwhile_is_left_alone() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        task = asyncio.create_task(gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0.05))
        await asyncio.sleep(0.01)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))   # a registration
        await task

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID)] and drv["fa2"].log == []


def test_unprepare_and_remove_forget_it() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0)
        await gws.prepare_tunnel(PrepareTunnel(SPEC, remove=True), delay=0)
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0)
        await gws.remove_tunnel(RemoveTunnel("ha", TID))
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))

    asyncio.run(run())
    assert drv["fa2"].log == [("prepare", TID), ("remove", TID), ("prepare", TID),
                              ("add", TID)]
    assert drv["ha"].log == [("prepare", TID), ("remove", TID), ("prepare", TID),
                             ("remove", TID), ("add", TID)]


def test_a_gateway_this_process_does_not_drive_is_skipped() -> None:
    gws, drv = _gateways()
    other = TunnelSpec("x/ha-fa9", SPEC.a, TunnelEnd("fa9", "10.0.0.19", ()), psk=b"k" * 32,
                       initiator="fa9")
    asyncio.run(gws.prepare_tunnel(PrepareTunnel(other), delay=0))
    assert all(d.log == [] for d in drv.values())


def test_the_old_fas_teardown_meanwhile_does_not_stop_it() -> None:
    """After a move the old FA's live tunnel is removed at both ends while its
    preparation waits: it is prepared afterwards (measured: without this only the
    first registration's neighbour was ever prepared)."""
    gws, drv = _gateways()

    async def run() -> None:
        task = asyncio.create_task(gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0.05))
        await asyncio.sleep(0.01)
        await gws.remove_tunnel(RemoveTunnel("fa2", TID))
        await task

    asyncio.run(run())
    assert drv["fa2"].log == [("remove", TID), ("prepare", TID)]


def test_removing_one_end_forgets_the_preparation_at_both() -> None:
    """Removing a tunnel at one end terminates its IKE_SA there and unloads its
    connection: the other end's prepared IKE_SA is gone with it, so the next add there
    is an ordinary one, not a CREATE_CHILD_SA on a dead IKE_SA (measured before the
    fix: a ~3.9 s stall at every move back after a smooth-handoff retire)."""
    gws, drv = _gateways()

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0)
        await gws.remove_tunnel(RemoveTunnel("ha", TID))   # e.g. the HA's retire
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))

    asyncio.run(run())
    assert drv["fa2"].log == [("prepare", TID), ("add", TID)]


def test_a_live_end_is_not_prepared_over_until_it_is_removed() -> None:
    """The old FA's live tunnel (smooth handoff keeps it RETIRE_AFTER at the old FA)
    has the prepared one's id: preparing over it would be undone by its retire.  The
    preparation waits for its removal, then goes ahead (issue 14, measured: the move
    back ran on a fresh IKE_SA every time)."""
    gws, drv = _gateways()

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # live at both
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        task = asyncio.create_task(gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0))
        await asyncio.sleep(0.1)
        await gws.remove_tunnel(RemoveTunnel("ha", TID))                # the HA's retire
        await asyncio.sleep(0.1)
        assert drv["ha"].log == [("add", TID), ("remove", TID)]        # fa2's still live
        await gws.remove_tunnel(RemoveTunnel("fa2", TID))               # the FA's retire
        await task
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # the move back
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        assert gws.tunnel_log[("fa2", TID)].get("on_prepared_ike_sa") is True

    asyncio.run(run())
    assert drv["fa2"].log == [("add", TID), ("remove", TID), ("prepare", TID),
                              ("add_prepared", TID)]
    assert drv["ha"].log == [("add", TID), ("remove", TID), ("prepare", TID),
                             ("add_prepared", TID)]


def test_a_live_end_that_stays_is_left_alone() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0, wait=0.05)

    asyncio.run(run())
    assert drv["fa2"].log == [("add", TID)] and drv["ha"].log == []


def test_a_move_back_while_live_at_both_ends_keeps_the_ike_sa() -> None:
    """A move back within the smooth-handoff retire (the core cancels it) finds the
    tunnel still live at both ends: its IKE_SA is reused (CREATE_CHILD_SA, the driver
    deletes the older CHILD_SA), not terminated and set up from nothing (issue 14,
    measured: every other move of an ABBA walk with 1.5 s settle ran IKE_SA_INIT)."""
    gws, drv = _gateways()

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # live at both
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # the move back
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        assert gws.tunnel_log[("fa2", TID)].get("on_prepared_ike_sa") is True

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("add_prepared", TID)]
    assert drv["fa2"].log == [("add", TID), ("add_prepared", TID)]


def test_a_move_back_after_the_other_end_retired_starts_afresh() -> None:
    """The old FA's end retired (IKE_SA terminated) between the HA's add and the
    FA's: the FA's add is an ordinary one; one end alone, or other selectors, too."""
    gws, drv = _gateways()
    other = replace(SPEC.side_for("ha"), local=TunnelEnd("ha", "10.0.0.1", ("10.31.0.0/24",)))

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # keeps it
        await gws.remove_tunnel(RemoveTunnel("fa2", TID))               # the FA's retire
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))   # from nothing
        await gws.add_tunnel(AddTunnel("ha", other))                    # other selectors

    asyncio.run(run())
    assert drv["fa2"].log == [("add", TID), ("remove", TID), ("add", TID)]
    assert drv["ha"].log == [("add", TID), ("add_prepared", TID), ("add", TID)]


def test_a_live_end_of_a_gateway_not_driven_here_is_not_reused() -> None:
    gws, drv = _gateways()
    del gws.drivers["fa2"]
    asyncio.run(gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha"))))
    asyncio.run(gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha"))))
    assert drv["ha"].log == [("add", TID), ("add", TID)]


def test_after_a_reconcile_loaded_an_end_the_next_add_starts_afresh() -> None:
    """A reconcile loads an end it found missing or not established (a charon that
    restarted): the other end's IKE_SA may be stale, so the initiation that follows
    is an ordinary add (it terminates what is there), not one on that IKE_SA."""
    gws, drv = _gateways()

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")), load_only=True)
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))

    asyncio.run(run())
    assert drv["fa2"].log == [("add", TID), ("add", TID)]


def _variants() -> dict[str, object]:
    from controller.model.vpn import QosSpec, SecuritySpec
    ha = SPEC.side_for("ha")
    return {
        "selectors": replace(ha, local=TunnelEnd("ha", "10.0.0.1", ("10.31.0.0/24",))),
        "local address": replace(ha, local=TunnelEnd("ha", "10.0.0.2", ("10.30.0.0/24",))),
        "remote address": replace(ha, remote=TunnelEnd("fa2", "10.0.0.13",
                                                        ("10.10.0.5/32",))),
        "remote selectors": replace(ha, remote=TunnelEnd("fa2", "10.0.0.12",
                                                         ("10.10.0.6/32",))),
        "security": replace(ha, security=SecuritySpec(esp="aes256gcm16-modp3072")),
        "qos": replace(ha, qos=QosSpec(rate_kbps=512)),
        "initiator": replace(ha, initiator=not ha.initiator),
    }


def test_a_re_add_that_differs_from_the_live_tunnel_is_an_ordinary_add() -> None:
    """The IKE_SA is kept only for the very tunnel that is live at both ends (the PSK
    aside: docs/security.md): any other selector, address, proposal, QoS or role is
    an ordinary add that terminates the IKE_SA and authenticates afresh."""
    for what, side in _variants().items():
        gws, drv = _gateways()

        async def run() -> None:
            await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))   # live at both
            await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
            await gws.add_tunnel(AddTunnel("ha", side))                   # type: ignore[arg-type]

        asyncio.run(run())
        assert drv["ha"].log == [("add", TID), ("add", TID)], what


def test_a_re_add_with_only_a_new_key_keeps_the_live_ike_sa() -> None:
    gws, drv = _gateways()

    async def run() -> None:
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await gws.add_tunnel(AddTunnel("ha", replace(SPEC.side_for("ha"), psk=b"n" * 32)))

    asyncio.run(run())
    assert drv["ha"].log == [("add", TID), ("add_prepared", TID)]


def test_a_move_during_a_refresh_keeps_the_live_tunnel(monkeypatch: Any) -> None:
    """Review of the standing CHILD_SA: a refresh takes its two ends down one after
    the other; a move that sets the tunnel meanwhile stops it (before: the HA's live
    end, just added by the move, was removed after it)."""
    import time
    monkeypatch.setattr(settings, "STANDING_REFRESH", 0.02)
    gws, drv = _gateways()
    slow = drv["fa2"].remove_tunnel

    def slow_remove(tid: str) -> None:
        time.sleep(0.05)
        slow(tid)
    drv["fa2"].remove_tunnel = slow_remove  # type: ignore[method-assign]

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await asyncio.sleep(0.03)    # the refresh has begun: the FA end goes (50 ms)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))     # the move
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await asyncio.sleep(0.2)
        gws._stood.clear()

    asyncio.run(run())
    ha = drv["ha"].log
    assert ("remove", TID) not in ha[ha.index(("add", TID)):], ha


def test_a_refresh_leaves_a_tunnel_the_roles_want_live(monkeypatch: Any) -> None:
    """A move handled elsewhere (another home replica) leaves this process's
    preparation marks as they were; the roles' state says the tunnel is live: no
    refresh takes it down."""
    monkeypatch.setattr(settings, "STANDING_REFRESH", 0.02)
    gws, drv = _gateways()
    monkeypatch.setattr(gws, "tunnels_wanted", lambda g: {TID: SPEC} if g == "ha" else {})

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await asyncio.sleep(0.06)
        gws._stood.clear()

    asyncio.run(run())
    assert ("remove", TID) not in drv["ha"].log + drv["fa2"].log


def test_the_ha_rekeys_a_promoted_end_whatever_the_fa_did(monkeypatch: Any) -> None:
    """The FA's end failed to stand (a loaded machine): the move's add there is an
    ordinary one, but the HA promoted its end (the key only); it is rekeyed all the
    same, so it never stays "standing" over the MN's live CHILD_SA."""
    from controller.adapters.strongswan import TunnelError
    gws, drv = _gateways()

    def fail(side: Any, timeout: float = 5.0, child: bool = False) -> float:
        raise TunnelError("fa2's charon is slow")
    monkeypatch.setattr(drv["fa2"], "prepare_tunnel", fail)

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert drv["ha"].log == [("stand", TID), ("promote", TID), ("rekey", TID)], drv["ha"].log


def test_a_failed_background_rekey_is_logged_not_raised(caplog: Any) -> None:
    gws, drv = _gateways()

    def boom(side: Any, timeout: float = 2.0, rekey: bool = False,
             wait: bool = True) -> float:
        from controller.adapters.strongswan import TunnelError
        raise TunnelError("no CHILD_SA to promote")
    drv["ha"].promote_tunnel = boom  # type: ignore[method-assign]
    asyncio.run(gws._rekey_at("ha", SPEC.side_for("ha")))
    assert "promoting tunnel" in caplog.text


class SlowRekeyGateway(RecordingGateway):
    """A rekey whose CREATE_CHILD_SA round takes until ``done`` is set (on a loaded
    core: 20-60 ms, issue 14, h14g): ``promote_tunnel(rekey=True)`` only issues it
    when told not to wait; ``rekeyed`` says whether it completed."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        import threading
        self.done = threading.Event()
        self.asked_on: list[str] = []    # the threads ``rekeyed`` was called on

    def promote_tunnel(self, side: Any, timeout: float = 2.0, rekey: bool = False,
                       wait: bool = True, key: bool = True) -> float:
        took = super().promote_tunnel(side, timeout, rekey)
        if rekey and wait:
            self.done.wait(timeout)     # (the old driver: polls until the new SA)
        return took

    def rekeyed(self, tunnel_id: str) -> bool | None:
        import threading
        self.asked_on.append(threading.current_thread().name)
        if ("rekey", tunnel_id) not in self.log:
            return None                 # none issued (not stood: nothing to rekey)
        return self.done.is_set()


def test_the_has_worker_is_free_while_the_promotions_rekey_is_in_flight() -> None:
    """The HA's rekey (one CREATE_CHILD_SA round over the loaded core) is issued and
    then awaited off the HA's worker: the old FA's tunnel removal the move queues
    there meanwhile (its CHILD_SA goes, so the standing one carries the downlink at
    once) runs before the rekey completes, not after it."""
    drivers = {n: SlowRekeyGateway(n) for n in ("ha", "fa1", "fa2")}
    gws = Gateways(drivers, {}, {})  # type: ignore[arg-type]
    done: list[tuple[str, str, float]] = []
    gws.on_rekeyed = lambda gw, tid, t: done.append((gw, tid, t))
    old = "alice_home.example/ha-fa1"

    async def run() -> float:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await asyncio.sleep(0.01)                      # the rekey was issued
        import time
        t0 = time.monotonic()
        await asyncio.wait_for(gws.remove_tunnel(RemoveTunnel("ha", old)), 1.0)
        removed_in = time.monotonic() - t0
        assert not done                                # the rekey is still in flight
        drivers["ha"].done.set()
        await asyncio.sleep(0.05)
        return removed_in

    removed_in = asyncio.run(run())
    assert removed_in < 0.5
    assert drivers["ha"].log == [("stand", TID), ("promote", TID), ("rekey", TID),
                                 ("remove", old)]
    # its completion is reported (the move's record: ha_rekey_done)
    assert [(g, t) for g, t, _ in done] == [("ha", TID)]


def test_the_rekeys_completion_goes_into_the_moves_record() -> None:
    """``ha_rekey_done``: the HA's promotion rekey completed (the downlink switched at
    the latest there): a mark of the move's record (REST /v1/handovers, the demo's
    and the benchmarks' walk), also after the record closed at the reply."""
    from controller.core.handover import HandoverLog
    from controller.runtime.gateways import mark_rekeyed
    log = HandoverLog()
    log.mark("bob@home.example", "rrq_at_fa", 9.0, {"fa": "fa2", "previous_fa": "fa1"})
    log.mark("alice@home.example", "rrq_at_fa", 10.0, {"fa": "fa2", "previous_fa": "fa1"})
    log.mark("alice@home.example", "rrp_sent", 10.02, {"accepted": True})
    mark_rekeyed(log, "ha", TID, 10.05)
    mark_rekeyed(log, "ha", "alice_home.example/ha-fa1", 10.06)   # not this move's
    alice, bob = (next(r for r in log.records if r.nai == n)
                  for n in ("alice@home.example", "bob@home.example"))
    assert alice.marks["ha_rekey_done"] == 10.05
    assert "ha_rekey_done" not in bob.marks
    assert "ha_rekey_done" in alice.to_json()["breakdown"]["timeline_ms"]


def test_no_rekey_done_is_reported_where_nothing_was_rekeyed() -> None:
    """A move back on the live IKE_SA (seamless-smooth) or a failed stand at both ends:
    the HA's promotion has no standing CHILD_SA to rekey; no ``ha_rekey_done`` then
    (it would say the downlink switched by a rekey that never happened)."""
    drivers = {n: SlowRekeyGateway(n) for n in ("ha", "fa1", "fa2")}
    gws = Gateways(drivers, {}, {})  # type: ignore[arg-type]
    done: list[tuple[str, str, float]] = []
    gws.on_rekeyed = lambda gw, tid, t: done.append((gw, tid, t))

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC), delay=0)     # IKE_SA only
        await gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha")))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        # the background promotion ends at once (no 2 s poll for a rekey never sent)
        await asyncio.wait_for(asyncio.gather(*gws._refreshes), 0.5)

    asyncio.run(run())
    assert ("rekey", TID) not in drivers["ha"].log and done == []
    # asked once, in the same call on the HA's worker as the promotion (a renewal's
    # path: no second hand-off, issue 15)
    assert drivers["ha"].asked_on == ["vici-ha"], drivers["ha"].asked_on


def test_a_promotion_loads_the_moves_key_after_the_add_returned() -> None:
    """Issue 14: a promotion at the move (a standing CHILD_SA, or a live one at a move
    back) only loads the move's key, and that key authenticates no CREATE_CHILD_SA: it
    is loaded after the add returned (``load_key``, on the gateway's worker), not on
    the move's path.  An ordinary add loads its key itself."""
    import threading

    gws, drv = _gateways()
    release = threading.Event()
    loaded: list[tuple[str, str, bool]] = []

    def load_key(name: str) -> Any:
        def load(side: Any) -> float:
            release.wait(5)
            loaded.append((name, side.tunnel_id, side.psk == SPEC.psk))
            return 0.0
        return load

    for name in ("ha", "fa2"):
        drv[name].load_key = load_key(name)  # type: ignore[method-assign]

    async def run() -> None:
        await gws.prepare_tunnel(PrepareTunnel(SPEC, child=True), delay=0)
        await asyncio.wait_for(gws.add_tunnel(AddTunnel("ha", SPEC.side_for("ha"))), 2)
        up = await asyncio.wait_for(gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2"))), 2)
        assert up and loaded == []          # both adds returned, no key loaded yet
        release.set()
        for _ in range(100):
            if len(loaded) == 2:
                break
            await asyncio.sleep(0.01)
        # an ordinary add (nothing prepared any more) loads its key itself
        await gws.remove_tunnel(RemoveTunnel("ha", TID))
        await gws.add_tunnel(AddTunnel("fa2", SPEC.side_for("fa2")))
        await asyncio.sleep(0.05)

    asyncio.run(run())
    assert sorted(loaded) == [("fa2", TID, True), ("ha", TID, True)]
    assert drv["ha"].log[:2] == [("stand", TID), ("promote", TID)]
    assert drv["fa2"].log == [("stand", TID), ("promote", TID), ("add", TID)]

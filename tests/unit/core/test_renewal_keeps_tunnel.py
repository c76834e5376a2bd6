"""Issue 15, seventh steps: a renewal that changes nothing touches no gateway.

A renewal (same MN, same FA, same MAC and port, same VPN profile) whose HA<->FA tunnel
was confirmed up since its last add (``on_tunnel_up``, as the runtime reports the FA's
initiation) emits no ``AddTunnel`` at the HA nor at the FA: the HA keeps the tunnel and
its PSK (the fresh one the home AAA proposed is not used), says so in its HAA, and the
FA gets the kept PSK in the AMA, equal to the one it holds.  Both ends, the AAA caches
and what a reconcile would load keep the key the tunnel really uses.

Anything else sets the tunnel again as before: a tunnel never confirmed up (its add
failed), a changed profile, another MAC or port at the FA, a move back within a
retire, the HA's binding gone."""

from __future__ import annotations

from controller.core.aaa_home import VpnProfile
from controller.core.actions import AddTunnel, Mark
from controller.core.vpn import QosSpec, SecuritySpec
from tests.unit.harness import MobileNode, Walk, topology

NAI = "alice@home.example"
OWNER = "alice_home.example"
HA1, HA2 = f"{OWNER}/ha-fa1", f"{OWNER}/ha-fa2"
RO1 = f"{OWNER}/cngw2-fa1"


def make(**kw: object) -> tuple[Walk, MobileNode]:
    walk = Walk(topology(**kw))          # type: ignore[arg-type]
    walk.tunnels_come_up = True
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    walk.now += 10
    return walk, mn


def adds(walk: Walk, pos: int) -> list[str]:
    return [f"{a.gateway} {a.side.tunnel_id}" for _r, a in walk.of_type(AddTunnel, pos)]


def psks(walk: Walk, tunnel_id: str = HA1) -> dict[str, bytes]:
    """The PSK of ``tunnel_id`` at each place that holds it: both gateways (what the
    drivers loaded), the HA's binding and the FA's visitor (what a reconcile loads),
    the home AAA's session and the foreign AAA's cache."""
    def of(info: object) -> bytes:
        return next(t.psk for t in info.tunnels if t.tunnel_id == tunnel_id)  # type: ignore[attr-defined]
    return {"ha gateway": walk.gateways.tunnels["ha"][tunnel_id].psk,
            "fa1 gateway": walk.gateways.tunnels["fa1"][tunnel_id].psk,
            "binding": of(walk.ha.bindings[NAI].vpn_info),
            "visitor": of(walk.fa("fa1").visitors[NAI].vpn_info),
            "aaah": of(walk.aaah.sessions[NAI]),
            "aaaf": of(walk.aaaf().sessions[NAI].vpn_info),
            "ha wanted": next(t.psk for t in walk.ha.tunnels_wanted() if t.tunnel_id == tunnel_id),
            "fa1 wanted": next(t.psk for t in walk.fa("fa1").tunnels_wanted()
                               if t.tunnel_id == tunnel_id)}


def one_psk_at(walk: Walk, fa: str, tunnel_id: str) -> bytes:
    """Both gateways and both roles hold one key for ``tunnel_id`` (at FA ``fa``)."""
    held = {walk.gateways.tunnels["ha"][tunnel_id].psk,
            walk.gateways.tunnels[fa][tunnel_id].psk,
            next(t.psk for t in walk.ha.tunnels_wanted() if t.tunnel_id == tunnel_id),
            next(t.psk for t in walk.fa(fa).tunnels_wanted() if t.tunnel_id == tunnel_id)}
    assert len(held) == 1
    return held.pop()


def one_psk(walk: Walk, tunnel_id: str = HA1) -> bytes:
    held = psks(walk, tunnel_id)
    assert len(set(held.values())) == 1, {k: v.hex()[:8] for k, v in held.items()}
    return next(iter(held.values()))


def test_a_renewal_at_the_same_fa_adds_no_tunnel_and_keeps_the_key() -> None:
    walk, mn = make()
    first = one_psk(walk)
    for _ in range(3):
        walk.now += 10
        pos = walk.mark()
        assert mn.register("fa1").accepted
        assert adds(walk, pos) == []
        assert one_psk(walk) == first          # the key the tunnel really uses, everywhere
        har = [d for d in walk.diameter(pos) if d.name == "HAR"][0]
        proposed = next(t.psk for t in har.msg.vpn_info.tunnels if t.tunnel_id == HA1)
        assert proposed != first                # the home AAA proposed a fresh one ...
        haa = [d for d in walk.diameter(pos) if d.name == "HAA"][0]
        assert next(t.psk for t in haa.msg.vpn_info.tunnels
                    if t.tunnel_id == HA1) == first     # ... the HA kept the old one
    assert not walk.gateways.errors


def test_a_renewal_that_changes_nothing_keeps_the_records_vpn_information() -> None:
    """Issue 15: the HA's binding, the FA's visitor and both AAAs' sessions keep
    the VPN information object they hold when the renewal's is equal: a new one (about
    eight objects with its tunnels) would live until the next renewal, traversed by
    the cyclic GC on its way to the oldest generation."""
    walk, mn = make()
    def records() -> tuple[object, ...]:
        return (walk.ha.bindings[NAI].vpn_info, walk.fa("fa1").visitors[NAI].vpn_info,
                walk.aaaf().sessions[NAI].vpn_info, walk.aaah.sessions[NAI])
    held = records()
    walk.now += 10
    assert mn.register("fa1").accepted
    assert [a is b for a, b in zip(records(), held)] == [True] * 4
    profile = walk.store.profile(NAI)   # a changed profile: the new information
    assert profile is not None
    walk.store.put_profile(VpnProfile(NAI, profile.destinations, profile.security,
                                      QosSpec(rate_kbps=2000)), now=walk.now)
    walk.now += 10
    assert mn.register("fa1").accepted
    assert walk.ha.bindings[NAI].vpn_info != held[0]
    assert walk.fa("fa1").visitors[NAI].vpn_info != held[1]


def test_the_renewal_marks_say_the_tunnel_was_kept() -> None:
    walk, mn = make()
    pos = walk.mark()
    assert mn.register("fa1").accepted
    marks = {(r, a.phase): a.extra for r, a in walk.of_type(Mark, pos)}
    assert marks[("ha", "ha_tunnel_set")] == {"kept": [HA1]}
    fa_key = next(r for r, a in walk.of_type(Mark, pos) if a.phase == "tunnel_up")
    assert marks[(fa_key, "tunnel_up")] == {"kept": [HA1]}


def test_a_tunnel_never_confirmed_up_is_added_again_with_a_fresh_key() -> None:
    walk = Walk(topology())
    walk.tunnels_come_up = True
    walk.tunnel_fails.add(HA1)           # the FA's initiation failed: no on_tunnel_up
    mn = MobileNode(walk)
    assert mn.register("fa1").accepted
    first = one_psk(walk)
    walk.now += 10
    walk.tunnel_fails.clear()            # this time it comes up ...
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert adds(walk, pos) == [f"ha {HA1}", f"fa1 {HA1}"]
    assert one_psk(walk) != first        # ... with the fresh key; the next renewal keeps it
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert adds(walk, pos) == []


def test_the_fas_failed_re_add_is_retried_with_the_key_the_ha_kept() -> None:
    """Another port at the same FA re-adds the FA's end (as before); that add fails;
    the next renewal keeps the HA's end (confirmed up) and the FA adds its end again
    with the key the HA holds."""
    walk, mn = make()
    first = one_psk(walk)
    walk.tunnel_fails.add(HA1)
    pos = walk.mark()
    assert mn.register("fa1", port=mn.port + 1).accepted
    assert adds(walk, pos) == [f"fa1 {HA1}"]
    assert one_psk(walk) == first
    walk.tunnel_fails.clear()
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1", port=mn.port + 1).accepted
    assert adds(walk, pos) == [f"fa1 {HA1}"]      # not confirmed at the FA: again
    assert one_psk(walk) == first
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1", port=mn.port + 1).accepted
    assert adds(walk, pos) == []


def test_a_changed_profile_adds_the_tunnel_again() -> None:
    walk, mn = make()
    first = one_psk(walk)
    profile = walk.store.profile(NAI)
    assert profile is not None
    walk.store.put_profile(VpnProfile(NAI, profile.destinations, profile.security,
                                      QosSpec(rate_kbps=2000)), now=walk.now)
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert adds(walk, pos) == [f"ha {HA1}", f"fa1 {HA1}"]
    assert one_psk(walk) != first
    walk.store.put_profile(VpnProfile(NAI, profile.destinations,
                                      SecuritySpec("aes256-sha256-ecp256", "aes256gcm16"),
                                      QosSpec(rate_kbps=2000)), now=walk.now)
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert adds(walk, pos) == [f"ha {HA1}", f"fa1 {HA1}"]


def test_route_optimised_tunnels_are_set_as_before() -> None:
    """An FA<->CN-GW tunnel's other end is set by the CN-GW from the HA's Binding
    Update, with the key the home AAA proposed: the FA sets its end again too."""
    walk, mn = make(dynamic=("cngw2",),
                    destinations={NAI: [("10.30.0.0/24", "cngw"), ("10.32.0.0/24", "cngw2")]})
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert sorted(adds(walk, pos)) == sorted([f"cngw2 {RO1}", f"fa1 {RO1}"])
    assert (walk.gateways.tunnels["fa1"][RO1].psk == walk.gateways.tunnels["cngw2"][RO1].psk)
    one_psk(walk)


def test_the_has_binding_gone_sets_the_tunnel_afresh_at_both_ends() -> None:
    """The HA's binding expired (its tunnel removed) just before the FA's visitor: the
    HA sets the tunnel with the fresh key, and the FA, told so by the key, too."""
    walk, mn = make()
    first = one_psk(walk)
    walk.now += mn.config.lifetime
    walk.execute("ha", walk.ha.on_tick(walk.now))       # the HA's tick only
    assert NAI not in walk.ha.bindings and NAI in walk.fa("fa1").visitors
    pos = walk.mark()
    assert mn.register("fa1").accepted
    assert adds(walk, pos) == [f"ha {HA1}", f"fa1 {HA1}"]
    assert one_psk(walk) != first


def test_a_move_back_within_the_retire_still_sets_the_tunnel() -> None:
    walk, mn = make(smooth_handoff=True)
    assert mn.register("fa2", "fa1").accepted
    assert HA1 in walk.ha.retiring and HA1 in walk.fa("fa1").retiring
    walk.now += 0.5
    walk.fa("fa1").in_progress.clear()
    pos = walk.mark()
    assert mn.register("fa1", "fa2").accepted
    assert adds(walk, pos)[:1] == [f"ha {HA1}"] and f"fa1 {HA1}" in adds(walk, pos)
    walk.now += 10
    pos = walk.mark()
    assert mn.register("fa1").accepted           # and then a plain renewal keeps it
    assert adds(walk, pos) == []


def test_an_earlier_simultaneous_binding_sets_the_tunnel_again() -> None:
    """S bit (issue 14): while the HA keeps the earlier binding beside the new one, a
    renewal sets the new tunnel again (the earlier one goes: the downlink moves)."""
    walk, mn = make(seamless_handover=True)
    walk.tunnel_fails.add(HA2)          # the new FA's tunnel not (yet) up: both kept
    assert mn.register("fa2", "fa1", simultaneous=True).accepted
    assert walk.ha.simultaneous.earlier.get(NAI) is not None
    walk.tunnel_fails.clear()
    walk.ha.tunnels_up[HA2] = True      # even if the HA had heard it come up
    walk.fa("fa2").tunnels_up[HA2] = True
    walk.now += 1
    pos = walk.mark()
    assert mn.register("fa2", simultaneous=True).accepted
    assert f"ha {HA2}" in adds(walk, pos) and f"fa2 {HA2}" in adds(walk, pos)
    one_psk_at(walk, "fa2", HA2)


def test_no_state_left_after_expiry() -> None:
    walk, mn = make()
    assert mn.register("fa1").accepted
    walk.now += 2 * mn.config.lifetime
    walk.tick()
    assert not walk.ha.bindings and not walk.fa("fa1").visitors
    assert walk.ha.tunnels_up == {} and walk.fa("fa1").tunnels_up == {}

"""Gateway of the correspondent host (CN-GW) as a binding-update receiver (claims 2, 5,
19-21, 25).

Role key ``"cngw:<name>"``, one per ``cn_gateway`` of the topology.  A gateway of the
static type only ever holds its stationary tunnel to the HA (claim 16 step 1) and
refuses Binding Updates (status 129).  A gateway of the dynamic type accepts, on behalf
of its correspondent hosts, the home agent's Binding Updates (``on_mip``): it
authenticates them with the HA<->CN-GW key the home AAA provisioned, caches the VPN
information they carry (one FA<->CN-GW tunnel per mobile node), deletes its tunnel to
the old FA, sets its end of the tunnel to the new FA, and acknowledges.  When the BU
asks for make before break (issue 14, an MN with seamless handover: the NVSE
``NVSE_MAKE_BEFORE_BREAK``) the tunnel to the old FA stays until the new one is up
(``on_tunnel_up``) or ``simultaneous.OVERLAP_MAX`` passed; a further move ends it at once.

Lifetime (claim 25, ``on_tick``): each binding lives for the BU's lifetime (capped by
``max_lifetime`` when set).  When less than ``refresh_fraction`` of it is left, the
gateway sends a Binding Request to the HA that posted it (a second one at half that);
the HA answers with a fresh Binding Update if the binding still exists.  A binding no
BU refreshed by its expiry is deleted with its tunnel.

Pure state machine: ``now`` in, actions out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from controller.core.actions import Action, AddTunnel, Mark, RemoveTunnel, ReplyMip, SendMip
from controller.core.binding import (BindingKey, IdentificationClock, ReceivedUpdate,
                                     binding_ack, binding_request, check_binding_update)
from controller.core.persist import Changes, TrackedDict
from controller.core.records import tunnel_from_dict, tunnel_to_dict
from controller.core.role import Role
from controller.core.simultaneous import EarlierBinding, SimultaneousBindings
from controller.core.vpn import GatewayType, TunnelSpec
from controller.proto import mip

LOG = logging.getLogger("mipvpn.cngw")

REFRESH_FRACTION = 0.2   # claim 25 threshold: Binding Request below 20 % of the lifetime


@dataclass
class CnBinding:
    """The VPN information one HA posted for one mobile node (claim 19)."""

    home_address: str
    nai: str
    home_agent: str            # role key of the HA that posted it (BReq goes there)
    tunnels: tuple[TunnelSpec, ...]
    lifetime: int
    expires: float
    identification: int
    requests: int = 0          # Binding Requests sent since the last BU


class CnGateway(Role):
    def __init__(self, name: str, address: str,
                 gateway_type: GatewayType = GatewayType.DYNAMIC,
                 keys: dict[str, BindingKey] | None = None,
                 refresh_fraction: float = REFRESH_FRACTION,
                 max_lifetime: int = 0) -> None:
        """``keys``: sender role key (``"ha"``) -> the HA<->CN-GW binding association;
        ``max_lifetime``: cap on a binding's lifetime (0: the BU's lifetime)."""
        self.name = name
        self.address = address
        self.gateway_type = gateway_type
        self.keys = keys or {}
        self.refresh_fraction = refresh_fraction
        self.max_lifetime = max_lifetime
        self.changes = Changes()   # restart persistence: the bindings, per home address
        self.bindings: dict[str, CnBinding] = TrackedDict(self.changes)  # HoA -> binding
        self._last_ident: dict[tuple[str, str], int] = {}
        self._clock = IdentificationClock()
        # home address -> the old FA's tunnels kept until the new one is up (issue 14)
        self.simultaneous = SimultaneousBindings()
        self.counters = {"bu_accepted": 0, "bu_refused": 0, "breq_sent": 0, "expired": 0,
                         "malformed": 0}

    # ------------------------------------------------------------ Binding Update

    def on_mip(self, now: float, raw: bytes, sender: str) -> list[Action]:
        """A Binding Update from a home agent (claims 19-21, 25): authenticate, cache,
        delete the tunnel to the old FA, set the one to the new FA, acknowledge."""
        try:
            msg = mip.decode(raw)
        except mip.MipDecodeError:
            self.counters["malformed"] += 1
            return []
        if not isinstance(msg, mip.BindingUpdate):
            self.counters["malformed"] += 1
            return []
        if self.gateway_type is not GatewayType.DYNAMIC:
            return self._ack(msg, mip.BACK_ADMIN_PROHIBITED)
        last = self._last_ident.get((sender, msg.home_address), 0)
        checked = check_binding_update(raw, self.keys.get(sender), now, last)
        if isinstance(checked, int):
            return self._ack(msg, checked)
        if any(self.name not in t.ends() for t in checked.tunnels):
            return self._ack(msg, mip.BACK_POORLY_FORMED)
        self._last_ident[(sender, msg.home_address)] = msg.identification
        self.counters["bu_accepted"] += 1
        return self._apply(now, checked, sender) + self._ack(msg, mip.BACK_OK)

    def _apply(self, now: float, bu: ReceivedUpdate, sender: str) -> list[Action]:
        hoa = bu.bu.home_address
        old = self.bindings.get(hoa)
        nai = bu.nai or (old.nai if old else hoa)
        new_ids = {t.tunnel_id for t in bu.tunnels}
        earlier = self.simultaneous.pop(hoa)   # two bindings at most: it goes now
        actions: list[Action] = [RemoveTunnel(self.name, t.tunnel_id) for t in
                                 (earlier.tunnels if earlier else ()) if t.tunnel_id not in new_ids]
        self.changes.note(hoa)
        if bu.is_delete or not bu.tunnels:
            self.bindings.pop(hoa, None)
            return actions + [Mark(nai, "cngw_delete", {"cngw": self.name})] + (
                self._remove_all(old) if old else [])
        actions.append(Mark(nai, "bu_at_cngw", {"cngw": self.name}))
        old_specs = {t.tunnel_id: t for t in old.tunnels} if old else {}
        gone = [t for tid, t in old_specs.items() if tid not in new_ids]
        if gone and bu.make_before_break:
            # issue 14: the old FA's tunnel stays until the new one is up
            fa = next(g for g in gone[0].ends() if g != self.name)
            self.simultaneous.keep(now, hoa, "", fa, gone, new_ids)
        else:
            # delete the VPN path to the old FA first (claims 20, 21)
            actions += [RemoveTunnel(self.name, t.tunnel_id) for t in gone]
        for spec in bu.tunnels:
            if old_specs.get(spec.tunnel_id) != spec:
                actions.append(AddTunnel(self.name, spec.side_for(self.name)))
        lifetime = bu.lifetime if not self.max_lifetime else min(bu.lifetime,
                                                                 self.max_lifetime)
        self.bindings[hoa] = CnBinding(hoa, nai, sender, bu.tunnels, lifetime,
                                       now + lifetime, bu.bu.identification)
        return actions + [Mark(nai, "cngw_tunnel_set", {"cngw": self.name})]

    def _ack(self, msg: mip.BindingUpdate, status: int) -> list[Action]:
        if status != mip.BACK_OK:
            self.counters["bu_refused"] += 1
            LOG.info("CN-GW %s: Binding Update for %s refused (%d)", self.name,
                     msg.home_address, status)
        if not msg.flags & mip.BU_FLAG_A:
            return []
        return [ReplyMip(binding_ack(status, msg.home_address, msg.identification))]

    # ------------------------------------------------------------ lifetime

    def on_tick(self, now: float) -> list[Action]:
        """Claim 25: Binding Request below the threshold; delete on expiry."""
        actions: list[Action] = [a for e in self.simultaneous.due(now) for a in self._end(e)]
        for hoa, b in list(self.bindings.items()):
            left = b.expires - now
            if left <= 0:
                del self.bindings[hoa]
                self.counters["expired"] += 1
                LOG.info("CN-GW %s: binding of %s expired", self.name, hoa)
                actions += [Mark(b.nai, "cngw_expired", {"cngw": self.name})]
                actions += self._remove_all(b)
                continue
            threshold = self.refresh_fraction * b.lifetime
            if (b.requests == 0 and left < threshold) or (
                    b.requests == 1 and left < threshold / 2):
                b.requests += 1
                self.counters["breq_sent"] += 1
                actions += [Mark(b.nai, "breq_sent", {"cngw": self.name}),
                            SendMip(b.home_agent, binding_request(hoa, self._clock.next(now)),
                                    expect_reply=False)]
        return actions

    def _remove_all(self, b: CnBinding) -> list[Action]:
        return [RemoveTunnel(self.name, t.tunnel_id) for t in b.tunnels]

    def on_tunnel_up(self, now: float, tunnel_id: str) -> list[Action]:
        """The runtime saw ``tunnel_id`` established (issue 14): the old FA's tunnel
        kept for it goes."""
        return [a for e in self.simultaneous.confirmed(tunnel_id) for a in self._end(e)]

    def _end(self, earlier: EarlierBinding) -> list[Action]:
        self.changes.note(earlier.nai)   # (keyed by home address)
        b = self.bindings.get(earlier.nai)
        actions: list[Action] = [Mark(b.nai if b else earlier.nai, "cngw_earlier_ended",
                                      {"cngw": self.name, "fa": earlier.foreign_agent})]
        return actions + [RemoveTunnel(self.name, t.tunnel_id) for t in earlier.tunnels]

    @property
    def earlier(self) -> dict[str, EarlierBinding]:
        return self.simultaneous.earlier

    # ------------------------------------------------------------ restart (issue 5)

    def export_state(self, home_address: str) -> dict[str, object] | None:
        """The binding for ``home_address`` as a JSON-able record (with the last
        Identification seen from each HA for it: replay protection survives)."""
        b = self.bindings.get(home_address)
        if b is None:
            return None
        return {"nai": b.nai, "home_agent": b.home_agent,
                "tunnels": [tunnel_to_dict(t) for t in b.tunnels], "lifetime": b.lifetime,
                "expires": b.expires, "identification": b.identification,
                "requests": b.requests,
                "last_ident": {s: self._last_ident[(s, home_address)] for s in self.keys
                               if (s, home_address) in self._last_ident},
                **self.simultaneous.state(home_address)}

    def restore_state(self, home_address: str, data: dict[str, Any]) -> None:
        self.bindings[home_address] = CnBinding(
            home_address, data["nai"], data["home_agent"],
            tuple(tunnel_from_dict(t) for t in data["tunnels"]), int(data["lifetime"]),
            float(data["expires"]), int(data["identification"]), int(data.get("requests", 0)))
        for sender, ident in data.get("last_ident", {}).items():
            self._last_ident[(sender, home_address)] = int(ident)
        if data.get("earlier"):
            self.simultaneous.earlier[home_address] = EarlierBinding.from_dict(
                home_address, data["earlier"])

    def forget_state(self, home_address: str) -> None:
        self.bindings.pop(home_address, None)
        self.simultaneous.pop(home_address)

    def state_keys(self) -> set[str]:
        return set(self.bindings)

    def tunnels_wanted(self) -> list[TunnelSpec]:
        return [t for b in self.bindings.values() for t in b.tunnels] + [
            t for e in self.simultaneous.earlier.values() for t in e.tunnels]

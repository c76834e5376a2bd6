"""Routing between the roles of one process, and the questions that span them.

Pure (in the spirit of FAUCET's ``ValvesManager``): given the roles one process runs
(role key -> role), it turns the actions that concern another role into that role's
own actions, feeds a role the outcome of a request it sent (an answer, a reply or a
timeout), and answers what no single role can: "is this MN registered elsewhere",
"which tunnels should this gateway hold", "which gateways do these roles drive".

The runtime's executor (``controller.runtime.executor``) and the unit-test walk
(``controller.testing.walk``) both execute roles' actions through one ``Dispatch``:
they differ only in how they perform I/O (sockets and charon, or fakes), so what the
unit tests walk through is what the runtime decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from controller.core.actions import (Action, NotifyVisitorLeft, RelayToHomeAgent, SendMip,
                                     VisitorMoved)
from controller.core.foreign_agent import ForeignAgent
from controller.core.role import (CNGW, FA, HA, AsksDiameter, AwaitsMipReply, RelaysToHomeAgent,
                                  RoleKey, TakesLateAnswers, kind_of, name_of)
from controller.core.vpn import TunnelSpec

#: (role key, the actions it must perform)
Followup = tuple[str, list[Action]]

__all__ = ["Dispatch", "Followup", "kind_of", "name_of"]


class Dispatch:
    """The roles of one process, seen together.  ``roles`` is shared, not copied."""

    def __init__(self, roles: Mapping[str, Any]) -> None:
        self.roles = roles

    # ------------------------------------------------------------ finding roles

    def foreign_agents(self) -> list[ForeignAgent]:
        return [r for k, r in self.roles.items() if kind_of(k) == FA]

    def gateway_of(self, role_key: str) -> str | None:
        """The gateway whose tunnels the role ``role_key`` decides (HA, FA, CN-GW)."""
        kind = kind_of(role_key)
        if kind == HA:
            return str(self.roles[role_key].name)
        if kind in (FA, CNGW):
            return name_of(role_key)
        return None

    # ------------------------------------------------------------ actions between roles

    def visitor_left(self, now: float, action: NotifyVisitorLeft) -> list[Followup]:
        """Another FA of this domain is told the MN registered elsewhere (if it runs
        here; otherwise the notice has no receiver in this process)."""
        other = RoleKey(FA, action.foreign_agent)
        if other not in self.roles:
            return []
        return [(other, self.roles[other].on_visitor_left(now, action.nai))]

    def left_elsewhere(self, now: float, moved: VisitorMoved) -> list[Followup]:
        """The MN registered at ``moved.foreign_agent``: every other FA of this process
        that still lists it as a visitor (a move across domains, where the new FA
        cannot name the old one as a peer) drops its tunnel end and the MN's flows.
        Same-domain moves are already handled by ``NotifyVisitorLeft``: idempotent."""
        new_fa = RoleKey(FA, moved.foreign_agent)
        return [(key, role.on_visitor_left(now, moved.nai))
                for key, role in list(self.roles.items())
                if kind_of(key) == FA and key != new_fa and moved.nai in role.visitors]

    # ------------------------------------------------------------ outcomes of requests

    def diameter_outcome(self, now: float, key: str, session_id: str,
                         answer: Any | None) -> list[Action]:
        """Role ``key``'s Diameter request got ``answer`` (None: it failed or timed out)."""
        role: AsksDiameter = self.roles[key]
        if answer is None:
            return role.on_diameter_timeout(now, session_id)
        return role.on_diameter_answer(now, answer)

    def home_agent_outcome(self, now: float, key: str, action: RelayToHomeAgent,
                           reply: bytes | None) -> list[Action]:
        """The FA ``key`` relayed an RRQ to a home agent: its reply, or nothing."""
        role: RelaysToHomeAgent = self.roles[key]
        if reply:
            return role.on_home_agent_reply(now, action.nai, reply)
        return role.on_home_agent_timeout(now, action.nai)

    def mip_outcome(self, now: float, key: str, action: SendMip,
                    reply: bytes | None) -> list[Action]:
        """Role ``key`` sent a Mobile IPv4 message awaiting a reply (None: none came)."""
        if not action.expect_reply:
            return []
        role: AwaitsMipReply = self.roles[key]
        return role.on_mip_reply(now, action.to, reply, action.context)

    def takes_late_answers(self, key: str) -> bool:
        return hasattr(self.roles[key], "on_late_diameter_answer")

    def late_answer(self, now: float, key: str, answer: Any) -> list[Action] | None:
        """An answer that arrived after ``key``'s request timed out (the FA: the home
        side may have completed a registration the FA already refused): the role's
        actions, or None when the MN registered elsewhere meanwhile (dropped)."""
        role: TakesLateAnswers = self.roles[key]
        if self.registered_elsewhere(key, getattr(answer, "user_name", "")):
            role.on_late_diameter_answer_dropped(answer)
            return None
        return role.on_late_diameter_answer(now, answer)

    # ------------------------------------------------------------ questions across roles

    def registered_elsewhere(self, fa_key: str, nai: str) -> bool:
        """The MN registered (or is registering) through another FA of this process,
        or the HA here binds it to another FA: a late answer for ``fa_key`` is stale."""
        for key, role in self.roles.items():
            if key == fa_key or kind_of(key) != FA:
                continue
            if nai in role.visitors or any(p.nai == nai for p in role.pending.values()):
                return True
        ha = self.roles.get(RoleKey(HA))
        binding = ha.bindings.get(nai) if ha is not None else None
        return binding is not None and binding.foreign_agent != name_of(fa_key)

    def owned_gateways(self, static: Iterable[TunnelSpec]) -> set[str]:
        """Gateways whose tunnels this process's roles decide (with the stationary
        tunnels ``static``)."""
        owned = {gw for key in self.roles if (gw := self.gateway_of(key)) is not None}
        for spec in static:
            owned.update(spec.ends())
        return owned

    def tunnels_wanted(self, gateway: str, static: Iterable[TunnelSpec]
                       ) -> dict[str, TunnelSpec]:
        """Tunnel id -> spec of every tunnel ``gateway`` should hold now, from the
        roles' state (what a restart restored) and the stationary tunnels ``static``."""
        out = {t.tunnel_id: t for t in static if gateway in t.ends()}
        for key, role in self.roles.items():
            if self.gateway_of(key) == gateway and hasattr(role, "tunnels_wanted"):
                for spec in role.tunnels_wanted():
                    out[spec.tunnel_id] = spec
        return out

    def secondary_tunnels(self, gateway: str) -> set[str]:
        """Tunnel ids ``gateway`` ends as a secondary side (smooth handoff, new FA)."""
        role = self.roles.get(RoleKey(FA, gateway))
        return role.secondary_tunnels() if role is not None else set()

    def intended_flows(self, dpid: int) -> list[Any]:
        """Every per-MN flow the FAs on switch ``dpid`` want (switch reconcile), and
        what any FA prepared there for its visitors' next move (issue 14)."""
        return [m for fa in self.foreign_agents() if fa.conf.access_dpid == dpid
                for m in fa.intended_flows()] + [
                    m for fa in self.foreign_agents() for m in fa.prepared_flows(dpid)]


if TYPE_CHECKING:
    # the type checker confirms which roles answer what the dispatch routes to them
    from controller.core.aaa_foreign import ForeignAaa
    from controller.core.aaa_home import HomeAaa
    from controller.core.home_agent import HomeAgent

    def _roles_answer_what_is_routed_to_them(fa: ForeignAgent, ha: HomeAgent,
                                             aaaf: ForeignAaa, aaah: HomeAaa) -> None:
        asks: list[AsksDiameter] = [fa, aaaf, aaah]
        relays: RelaysToHomeAgent = fa
        awaits: list[AwaitsMipReply] = [fa, ha]
        late: TakesLateAnswers = fa
        del asks, relays, awaits, late

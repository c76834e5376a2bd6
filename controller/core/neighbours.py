"""Which foreign agents a mobile node can move to next, and what preparing them costs
(issue 14: tunnels towards the FAs an MN can move to are up before it moves).

The controller knows the whole topology: an FA's neighbours are the other FAs whose
access switches are nearest to its own in the graph of switches and gateways (a
gateway joins its core switch and its inside switch: acc1 -fa1- core2 -fa2- acc2), the
FAs of the same domain first.  ``plan`` bounds the set: by the profile (an MN without
``seamless`` gets none), by ``limit`` nearest, and a movement hint (FAs the MN is
expected at, e.g. where it was before) goes first.  ``standing_sas`` says what the
prepared tunnels cost, per MN and for a population.

Pure: takes the topology data (``NeighbourMap.from_topology``), returns names and
counts; the runtime would load and initiate what the plan says.

``prepare`` turns a seamless MN's VPN information into the tunnels each planned FA
would need (its live tunnels re-pointed there, as a local move re-points them), keyed
with ``prepared_psk`` so the HA and the new FA's side can derive the key before the
move; ``preparation_changes`` says what to bring up and what to drop when the plan
changes.  A prepared tunnel is meant to stand as an IKE_SA only (no CHILD_SA: with
userspace ESP a CHILD_SA with the live one's selectors would take the MN's downlink),
the move then runs CREATE_CHILD_SA on it (docs/decisions.md, 2026-12-04).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import networkx as nx

from controller.core.vpn import rewrite_foreign_agent
from controller.model.vpn import TunnelSpec, VpnInfo

#: at most this many FAs are prepared per MN unless the caller says otherwise
DEFAULT_LIMIT = 2
#: a prepared HA<->FA tunnel stands with its CHILD_SA (secondary at the HA, promoted by
#: one rekey at the move) rather than as an IKE_SA alone (docs/decisions.md 2026-12-05,
#: "a standing CHILD_SA at the neighbour FA"); False: the CHILD_SA is created at the move
STANDING_CHILD_SA = True


@dataclass(frozen=True)
class NeighbourMap:
    """FA -> its neighbour FAs, nearest first (same domain before others, then by hops
    between the access switches, then by name)."""

    ranked: Mapping[str, tuple[str, ...]]
    hops: Mapping[tuple[str, str], int]

    @classmethod
    def from_topology(cls, topo: Any) -> NeighbourMap:
        """From a parsed topology: its switches, links and gateways (an FA's access
        switch is its inside switch)."""
        links = [(link.a_switch, link.b_switch) for link in topo.links]
        gateways = {name: (gw.core.switch, gw.inside.switch, gw.kind, gw.domain)
                    for name, gw in topo.gateways.items()}
        return cls.build(topo.switches, links, gateways)

    @classmethod
    def build(cls, switches: Iterable[str], links: Iterable[tuple[str, str]],
              gateways: Mapping[str, tuple[str, str, str, str]]) -> NeighbourMap:
        """``gateways``: name -> (core switch, inside switch, kind, domain)."""
        graph = nx.Graph()
        graph.add_nodes_from(f"sw:{s}" for s in switches)
        graph.add_edges_from((f"sw:{a}", f"sw:{b}") for a, b in links)
        fas: dict[str, tuple[str, str]] = {}
        for name, (core, inside, kind, domain) in gateways.items():
            graph.add_edge(f"sw:{core}", f"gw:{name}")
            graph.add_edge(f"gw:{name}", f"sw:{inside}")
            if kind == "foreign_agent":
                fas[name] = (inside, domain)
        hops: dict[tuple[str, str], int] = {}
        ranked: dict[str, tuple[str, ...]] = {}
        for fa, (access, domain) in fas.items():
            lengths = nx.single_source_shortest_path_length(graph, f"sw:{access}")
            reach = []
            for other, (o_access, o_domain) in fas.items():
                n = lengths.get(f"sw:{o_access}")
                if other == fa or n is None:
                    continue
                hops[(fa, other)] = int(n)
                reach.append((o_domain != domain, int(n), other))
            ranked[fa] = tuple(name for _other_domain, _n, name in sorted(reach))
        return cls(ranked, hops)

    def plan(self, fa: str, *, seamless: bool, limit: int = DEFAULT_LIMIT,
             hint: Iterable[str] = ()) -> tuple[str, ...]:
        """The FAs to prepare for an MN registered at ``fa``: none without
        ``seamless`` (the profile's choice: then nothing changes), else the hinted
        FAs that are neighbours, then the nearest others, at most ``limit``."""
        if not seamless or limit <= 0:
            return ()
        near = self.ranked.get(fa, ())
        first = [h for h in dict.fromkeys(hint) if h in near]
        rest = [n for n in near if n not in first]
        return tuple((first + rest)[:limit])


@dataclass(frozen=True)
class StandingCost:
    """What keeping prepared tunnels costs: IKE_SAs and CHILD_SAs (one of each per
    tunnel, as every tunnel is its own connection), kernel SAs (two per CHILD_SA at
    each of its two ends) and those of them the home agent holds."""

    tunnels: int
    ike_sas: int
    child_sas: int
    kernel_sas: int
    at_home_agent: int

    def per(self, mns: int) -> StandingCost:
        return StandingCost(self.tunnels * mns, self.ike_sas * mns, self.child_sas * mns,
                            self.kernel_sas * mns, self.at_home_agent * mns)


def standing_sas(prepared: Iterable[str], tunnels_at: Mapping[str, int],
                 via_home_agent: Mapping[str, int] | None = None) -> StandingCost:
    """The standing cost of one MN's plan: ``tunnels_at`` FA -> how many tunnels its
    VPN path has at that FA (1 for an HA<->FA path; one more per route-optimised
    CN-GW); ``via_home_agent``: how many of them end at the HA (default: all)."""
    tunnels = sum(tunnels_at.get(fa, 0) for fa in prepared)
    at_ha = sum((via_home_agent or tunnels_at).get(fa, 0) for fa in prepared)
    return StandingCost(tunnels, tunnels, tunnels, 4 * tunnels, at_ha)


def prepared_psk(secret: bytes, tunnel_id: str) -> bytes:
    """PSK of a prepared tunnel: HMAC-SHA-256(session secret, "mipvpn-prepared|<tunnel
    id>").  Known ahead to whoever holds the session secret (home AAA, HA, the foreign
    AAA of a local move); a label of its own, so it is never the key of a live tunnel
    (``tunnel_psk`` binds the move's RRQ identification)."""
    return hmac.digest(secret, f"mipvpn-prepared|{tunnel_id}".encode(), "sha256")


@dataclass(frozen=True)
class Preparation:
    """The tunnels one planned FA would have for the MN: its VPN path re-pointed there."""

    foreign_agent: str
    tunnels: tuple[TunnelSpec, ...]


def prepare(info: VpnInfo, neighbours: NeighbourMap, addresses: Mapping[str, str],
            secret: bytes, *, limit: int = DEFAULT_LIMIT,
            hint: Iterable[str] = ()) -> tuple[Preparation, ...]:
    """What to prepare for an MN whose VPN information is ``info`` (at its current FA):
    nothing unless ``info.seamless_handover``; else, per FA of the plan that has a
    care-of address in ``addresses``, the tunnels a move there would bring up, each
    keyed with ``prepared_psk``."""
    if not info.seamless_handover:
        return ()
    out = []
    for fa in neighbours.plan(info.foreign_agent, seamless=True, limit=limit, hint=hint):
        address = addresses.get(fa)
        if address is None:
            continue
        moved = rewrite_foreign_agent(info, fa, address,
                                      rekey=lambda tid: prepared_psk(secret, tid))
        out.append(Preparation(fa, moved.tunnels_of(fa)))
    return tuple(out)


def preparation_changes(wanted: Iterable[Preparation], standing: Mapping[str, TunnelSpec]
                        ) -> tuple[tuple[TunnelSpec, ...], tuple[str, ...]]:
    """``(to prepare, to drop)``: wanted tunnels not standing, or standing with another
    spec (e.g. a new key after a full registration), are (re)prepared; standing ones no
    longer wanted (the MN moved, the plan changed, the option was switched off) are
    dropped, by tunnel id."""
    want = {t.tunnel_id: t for p in wanted for t in p.tunnels}
    up = tuple(t for tid, t in sorted(want.items()) if standing.get(tid) != t)
    drop = tuple(sorted(tid for tid in standing if tid not in want))
    return up, drop

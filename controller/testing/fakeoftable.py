"""A fake OpenFlow 1.3 flow table (FAUCET ``clib/fakeoftable.py`` style).

Applies the core's ``FlowMod`` values the way the OpenFlow adapter sends them (deletes
of one batch before its adds; a delete is non-strict: it removes every flow whose match
contains the delete's match and whose cookie agrees under the mask) and answers
"where would this packet go?" so tests assert forwarding behaviour, not flow text.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from controller.core.flows import FlowMod, FlowSpec, GroupMod

FIELDS = ("in_port", "eth_src", "eth_dst", "eth_type", "ip_proto", "udp_dst", "icmpv4_type",
          "ipv4_dst")


class AmbiguousMatch(AssertionError):
    """Two different flows of equal, highest priority match one packet."""


class FakeOFTable:
    def __init__(self, dpid: int = 0) -> None:
        self.dpid = dpid
        self.flows: list[FlowSpec] = []
        self.groups: dict[int, tuple[tuple[int, tuple[tuple[str, int], ...]], ...]] = {}
        self.dead_ports: set[int] = set()   # ports whose link is gone (fast failover)
        self.applied = 0

    # ------------------------------------------------------------ FlowMods

    def apply(self, mods: Iterable[FlowMod]) -> None:
        mods = list(mods)
        for mod in [m for m in mods if m.op == "delete"] + [m for m in mods if m.op != "delete"]:
            self.applied += 1
            if isinstance(mod, GroupMod):   # deleting a group deletes its flows too
                if mod.op == "delete":
                    self.groups.pop(mod.group_id, None)
                    self.flows = [f for f in self.flows
                                  if ("group", mod.group_id) not in f.actions]
                else:
                    self.groups[mod.group_id] = mod.buckets
                continue
            if mod.op == "delete":
                self._delete(mod)
            elif mod.op == "add":
                self._add(mod.flow)
            else:
                raise ValueError(f"unknown flow-mod op {mod.op!r}")

    def _add(self, spec: FlowSpec) -> None:
        for key in spec.match_dict():
            if key not in FIELDS:
                raise ValueError(f"fake table cannot match on {key!r}")
        # OFPFC_ADD with an identical match and priority replaces the old entry
        self.flows = [f for f in self.flows
                      if not (f.table == spec.table and f.priority == spec.priority
                              and f.match_dict() == spec.match_dict())]
        self.flows.append(spec)

    def _delete(self, mod: FlowMod) -> None:
        want = mod.flow.match_dict()
        mask = mod.cookie_mask

        def doomed(f: FlowSpec) -> bool:
            have = f.match_dict()
            return ((f.cookie & mask) == (mod.flow.cookie & mask)
                    and all(have.get(k) == v for k, v in want.items()))

        self.flows = [f for f in self.flows if not doomed(f)]

    # ------------------------------------------------------------ lookups

    def matching(self, **packet: Any) -> list[FlowSpec]:
        for key in packet:
            if key not in FIELDS:
                raise TypeError(f"unknown packet field {key!r}")
        pkt = {k: v for k, v in packet.items() if v is not None}
        if "eth_src" in pkt:
            pkt["eth_src"] = pkt["eth_src"].lower()
        if "eth_dst" in pkt:
            pkt["eth_dst"] = pkt["eth_dst"].lower()

        def hit(f: FlowSpec) -> bool:
            for k, v in f.match:
                if k in ("eth_src", "eth_dst"):
                    v = v.lower()
                if k == "ipv4_dst" and isinstance(v, tuple):  # (address, mask)
                    if "ipv4_dst" not in pkt:
                        return False
                    net = ipaddress.IPv4Network(f"{v[0]}/{v[1]}")
                    if ipaddress.IPv4Address(pkt["ipv4_dst"]) not in net:
                        return False
                    continue
                if pkt.get(k) != v:
                    return False
            return True

        return [f for f in self.flows if f.table == 0 and hit(f)]

    def winner(self, **packet: Any) -> FlowSpec | None:
        hits = self.matching(**packet)
        if not hits:
            return None
        top = max(f.priority for f in hits)
        best = [f for f in hits if f.priority == top]
        if len({f.actions for f in best}) > 1:
            raise AmbiguousMatch(f"dpid {self.dpid:#x}: {packet} matches {best}")
        return best[0]

    def lookup(self, in_port: int, eth_src: str, eth_dst: str, eth_type: int | None = None,
               ip_proto: int | None = None, udp_dst: int | None = None,
               icmpv4_type: int | None = None) -> list[int]:
        """Output ports for the packet (empty list = dropped); highest priority wins."""
        f = self.winner(in_port=in_port, eth_src=eth_src, eth_dst=eth_dst,
                        eth_type=eth_type, ip_proto=ip_proto, udp_dst=udp_dst,
                        icmpv4_type=icmpv4_type)
        if f is None:
            return []
        out: list[int] = []
        for kind, value in f.actions:
            if kind == "output":
                out.append(value)
            elif kind == "group":     # fast failover: the first live bucket
                for watch, actions in self.groups[value]:
                    if watch == 0 or watch not in self.dead_ports:
                        out += [p for k, p in actions if k == "output"]
                        break
        return out

    def forward(self, in_port: int, eth_src: str, eth_dst: str,
                eth_type: int | None = None) -> list[tuple[int, str]]:
        """``lookup`` with the destination MAC each copy leaves with (a flow may set
        it: issue 14's redirect): ``[(port, eth_dst)]``, empty if dropped."""
        f = self.winner(in_port=in_port, eth_src=eth_src, eth_dst=eth_dst,
                        eth_type=eth_type)
        if f is None:
            return []
        dst = eth_dst.lower()
        out: list[tuple[int, str]] = []
        for kind, value in f.actions:
            if kind == "set_eth_dst":
                dst = str(value).lower()
            elif kind == "output":
                out.append((value, dst))
            elif kind == "group":
                out += [(p, dst) for p in self.lookup(in_port, eth_src, eth_dst, eth_type)]
        return out

    def cookies(self) -> set[int]:
        return {f.cookie for f in self.flows}

    def __len__(self) -> int:
        return len(self.flows)

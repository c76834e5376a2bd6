"""What the pure core asks the adapters to do.

Role state machines never send anything: each entry point takes ``now`` and an event
and returns a list of these actions, executed in order by the runtime.  Order matters
and follows the claims: e.g. the HA's tunnel actions come before its answer (claim 16).

Compiled like the roles (issue 15: about 30 actions per registration, each built by an
interpreted generated ``__init__`` before); each class writes its ``__init__``
(tests/unit/test_dataclass_inits.py) and allows interpreted subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mypy_extensions import mypyc_attr

from controller.core.flows import FlowMod, Mod
from controller.core.vpn import TunnelSide, TunnelSpec


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class AddTunnel:
    """Configure one gateway's end of a tunnel (initiate it if ``side.initiator``)."""

    gateway: str
    side: TunnelSide

    def __init__(self, gateway: str, side: TunnelSide) -> None:
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "side", side)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class RemoveTunnel:
    """Take one gateway's end of a tunnel down.  ``off_path`` (issue 14): the runtime
    runs it beside the walk, not in line (the old FA's forwarding tunnel once the MN is
    back and its local AAA accepted it: gone while the HA answers)."""

    gateway: str
    tunnel_id: str
    off_path: bool = False

    def __init__(self, gateway: str, tunnel_id: str, off_path: bool = False) -> None:
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "tunnel_id", tunnel_id)
        object.__setattr__(self, "off_path", off_path)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class PrepareTunnel:
    """Issue 14 (seamless handover): stand ``spec`` up ahead at both its ends as an
    IKE_SA without CHILD_SA (nothing steers traffic), so that a move there only runs
    CREATE_CHILD_SA; ``remove``: take such a prepared tunnel down.  Off the critical
    path: the runtime does it in the background, after the move's own tunnel work.
    ``child``: the CHILD_SA stands too, taking no traffic at the HA until the move
    promotes it (one rekey; kernel-libipsec: docs/decisions.md 2026-12-05, "a
    standing CHILD_SA at the neighbour FA")."""

    spec: TunnelSpec
    remove: bool = False
    child: bool = False

    def __init__(self, spec: TunnelSpec, remove: bool = False, child: bool = False) -> None:
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "remove", remove)
        object.__setattr__(self, "child", child)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class SendFlows:
    """Flow-, meter- and group-mods for one switch; deletes precede adds; a barrier
    follows.  ``wait`` False (issue 14): the executor sends them and goes on with the
    next action; their barrier is awaited before the next message to the mobile node
    (and before the walk ends), so what the MN is told is in place by then."""

    dpid: int
    mods: tuple[Mod, ...]
    wait: bool = True

    def __init__(self, dpid: int, mods: tuple[Mod, ...], wait: bool = True) -> None:
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "mods", mods)
        object.__setattr__(self, "wait", wait)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class SendDiameter:
    """Send a Diameter request; its answer comes back to the same role's
    ``on_diameter_answer``.  ``to`` is a realm or a Diameter identity (routing)."""

    request: Any
    to: str

    def __init__(self, request: Any, to: str) -> None:
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "to", to)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class AnswerDiameter:
    """The answer to the Diameter request this role is handling."""

    answer: Any

    def __init__(self, answer: Any) -> None:
        object.__setattr__(self, "answer", answer)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class RelayToHomeAgent:
    """FA -> HA Registration Request over UDP 434 (claim 17: intra-domain move)."""

    raw: bytes
    home_agent_address: str
    nai: str

    def __init__(self, raw: bytes, home_agent_address: str, nai: str) -> None:
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "home_agent_address", home_agent_address)
        object.__setattr__(self, "nai", nai)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class ReplyMip:
    """A Mobile IPv4 reply to the request this role is handling (HA -> FA)."""

    raw: bytes

    def __init__(self, raw: bytes) -> None:
        object.__setattr__(self, "raw", raw)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class SendToMobileNode:
    """A Registration Reply from an FA to the MN, sent as a packet-out at the
    access switch: FA inside address, UDP 434 -> ``mn_ip`` (the request's IP source,
    or the home address), ``udp_port`` (the request's UDP source port, RFC 5944
    §3.7.2.2; 434 by default)."""

    foreign_agent: str
    raw: bytes
    mn_mac: str
    mn_ip: str
    port: int
    udp_port: int = 434

    def __init__(self, foreign_agent: str, raw: bytes, mn_mac: str, mn_ip: str, port: int,
                 udp_port: int = 434) -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "mn_ip", mn_ip)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "udp_port", udp_port)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class AnnounceMobileNode:
    """Issue 14: an ARP reply on behalf of the MN just registered at ``foreign_agent``
    (its MAC, its home address) to that FA's IP stack (its inside MAC and address, a
    packet-out on its access port): the FA's neighbour entry for the home address takes
    the MN's MAC at once.  A standing CHILD_SA's preparation can bring a downlink packet
    to a neighbour FA while the MN is elsewhere; the resolution that FA then started
    would otherwise end only at an ARP retransmission (1 s) after the MN arrived.  The
    kernel does not create an entry from it (``arp_accept`` 0): it answers a resolution
    or refreshes an entry, nothing more."""

    foreign_agent: str
    mn_mac: str
    home_address: str

    def __init__(self, foreign_agent: str, mn_mac: str, home_address: str) -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "home_address", home_address)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class NotifyVisitorLeft:
    """Tell another FA of this domain that the MN now registered elsewhere."""

    foreign_agent: str
    nai: str

    def __init__(self, foreign_agent: str, nai: str) -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "nai", nai)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class VisitorMoved:
    """The MN completed a registration at ``foreign_agent``: any other FA of this
    process that still lists it as a visitor drops it (a move across domains, where
    the new FA cannot name the old one as a peer; ``controller.core.dispatch``)."""

    nai: str
    foreign_agent: str

    def __init__(self, nai: str, foreign_agent: str) -> None:
        object.__setattr__(self, "nai", nai)
        object.__setattr__(self, "foreign_agent", foreign_agent)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class Mark:
    """A timing mark for the handover record (phase breakdown)."""

    nai: str
    phase: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __init__(self, nai: str, phase: str, extra: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "nai", nai)
        object.__setattr__(self, "phase", phase)
        object.__setattr__(self, "extra", extra if extra is not None else dict())


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class SendMip:
    """A Mobile IPv4 control message (e.g. a Binding Update, claims 19-25) from this
    role to role ``to`` (a role key such as ``"ha"``, ``"fa:fa1"``, ``"cngw:cngw"``),
    sent as UDP on the wire.  The receiver's ``on_mip(now, raw, sender)`` handles it
    and may answer with ``ReplyMip``; when ``expect_reply`` is set, the answer (or
    ``None`` after retransmissions time out) comes back to this role's
    ``on_mip_reply(now, to, raw_or_none, context)``."""

    to: str
    raw: bytes
    expect_reply: bool = True
    context: Any = None

    def __init__(self, to: str, raw: bytes, expect_reply: bool = True, context: Any = None) -> None:
        object.__setattr__(self, "to", to)
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "expect_reply", expect_reply)
        object.__setattr__(self, "context", context)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class HoldTraffic:
    """Smooth handoff: keep the frames the access switch ``dpid`` punts towards the
    departed MN ``mn_mac`` (its downlink, see ``flows.hold_mn``) instead of dropping
    them, bounded in count and age, until a ``ReleaseHold``."""

    foreign_agent: str
    dpid: int
    mn_mac: str
    nai: str

    def __init__(self, foreign_agent: str, dpid: int, mn_mac: str, nai: str) -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "nai", nai)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class ReleaseHold:
    """End a ``HoldTraffic``.  ``forward``: hand the held frames to the foreign agent's
    IP stack (packet-out to its access port, addressed to its inside MAC), once the
    gateway's tunnel ``tunnel_id`` (when given) is established - at ``peer`` too, when
    named (its inbound SA must exist before the first forwarded packet arrives) - so
    that it routes them on (e.g. into the forwarding tunnel to the new FA); otherwise
    drop them.  ``mods`` (removing the punt flow) are sent after the frames."""

    foreign_agent: str
    dpid: int
    mn_mac: str
    forward: bool
    tunnel_id: str = ""
    mods: tuple[FlowMod, ...] = ()
    peer: str = ""

    def __init__(self, foreign_agent: str, dpid: int, mn_mac: str, forward: bool,
                       tunnel_id: str = "", mods: tuple[FlowMod, ...] = (), peer: str = "") -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "forward", forward)
        object.__setattr__(self, "tunnel_id", tunnel_id)
        object.__setattr__(self, "mods", mods)
        object.__setattr__(self, "peer", peer)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class DeliverHeld:
    """Issue 14 (seamless handover): the MN ``nai`` (``mn_mac``) is at port ``port`` of
    the new FA ``foreign_agent``'s access switch ``dpid``, its move accepted there by
    its AAA.  What another FA of this process holds for it
    (``HoldTraffic``) goes to it there now (packet-out on that port, from the new FA's
    inside MAC), and what that switch punts later follows at once, until the hold's own
    ``ReleaseHold``.  A hold at an FA of another process is not reached."""

    foreign_agent: str
    dpid: int
    port: int
    mn_mac: str
    nai: str

    def __init__(self, foreign_agent: str, dpid: int, port: int, mn_mac: str,
                 nai: str) -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "nai", nai)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class HoldUplink:
    """Issue 14 (seamless handover): the frames of ``mn_mac`` that switch ``dpid``
    punts through the flow its previous FA prepared there (``flows.uplink_punt_flow``)
    are its uplink after a move: kept, bounded in count, age and time, until the new
    FA's ``ReleaseUplink``.  The core's answer to the first such frame."""

    dpid: int
    mn_mac: str
    nai: str
    to_mac: str = ""        # the FA that prepared the punt (the frames' destination)

    def __init__(self, dpid: int, mn_mac: str, nai: str, to_mac: str = "") -> None:
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "nai", nai)
        object.__setattr__(self, "to_mac", to_mac)


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True)
class ReleaseUplink:
    """Issue 14: the new FA ``foreign_agent``'s tunnels ``tunnel_ids`` are up: the MN's
    uplink held at ``dpid`` goes to the FA in order (its inside MAC, its port, as the
    redirect would send it), then ``mods`` (the redirect, replacing the punt) follow;
    frames punted until the switch confirms them follow at once."""

    foreign_agent: str
    dpid: int
    mn_mac: str
    nai: str
    tunnel_ids: tuple[str, ...]
    mods: tuple[Mod, ...] = ()
    from_mac: str = ""      # the previous FA's MAC (what the punted frames are sent to)

    def __init__(self, foreign_agent: str, dpid: int, mn_mac: str, nai: str,
                       tunnel_ids: tuple[str, ...], mods: tuple[Mod, ...] = (),
                       from_mac: str = "") -> None:
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "dpid", dpid)
        object.__setattr__(self, "mn_mac", mn_mac)
        object.__setattr__(self, "nai", nai)
        object.__setattr__(self, "tunnel_ids", tunnel_ids)
        object.__setattr__(self, "mods", mods)
        object.__setattr__(self, "from_mac", from_mac)


Action = (AddTunnel | RemoveTunnel | SendFlows | SendDiameter | AnswerDiameter
          | RelayToHomeAgent | ReplyMip | SendToMobileNode | NotifyVisitorLeft | Mark
          | SendMip | HoldTraffic | ReleaseHold | VisitorMoved | PrepareTunnel | HoldUplink
          | ReleaseUplink | AnnounceMobileNode | DeliverHeld)

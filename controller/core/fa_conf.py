"""What a foreign agent is configured with and what it keeps for a registration in
flight: plain data, shared by the FA (``foreign_agent``) and its smooth-handoff part
(``fa_handoff``) without either importing the other."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.core.vpn import VpnInfo
from controller.proto import mip


@dataclass(frozen=True)
class NeighbourPort:
    """A foreign agent an MN here can move to (issue 14): where its access switch
    hands it the MN's frames (``core/neighbours.py`` plans which, nearest first)."""

    name: str
    access_dpid: int
    fa_port: int
    inside_mac: str


@dataclass(frozen=True)
class ForeignAgentConf:
    name: str
    host: str             # Diameter identity, e.g. fa1.a.example
    realm: str            # own (foreign) realm
    core_address: str     # care-of address
    inside_address: str
    inside_mac: str
    access_dpid: int
    fa_port: int          # the FA's port on its access switch
    peers: dict[str, str] = field(default_factory=dict)  # CoA -> FA name, same domain
    max_lifetime: int = 1800
    handoff_lifetime: int = 10   # s the old FA forwards to the new one (claims 22-23)
    # s the old FA holds a departed smooth-handoff MN's downlink waiting for the new
    # FA's Binding Update (claims 22-23); then it is dropped
    hold_time: float = 3.0
    # admission control (issue 5): registrations in flight (AMR or HA relay outstanding)
    # beyond which a new one is refused at once with code 66, and how long (s) the
    # oldest may wait; given by the configuration (its defaults: config/schema.py)
    max_pending: int = field(kw_only=True)
    max_pending_age: float = field(kw_only=True)
    # issue 14: the FAs a seamless-handover MN here can move to (its flows prepared at
    # their access switches), and every FA's inside MAC (an MN that arrives still
    # addresses its frames to the FA it came from)
    neighbours: tuple[NeighbourPort, ...] = field(default=(), kw_only=True)
    fa_macs: dict[str, str] = field(default_factory=dict, kw_only=True)


@dataclass
class Pending:
    nai: str
    raw: bytes
    rrq: mip.RegistrationRequest
    mn_mac: str
    port: int
    started: float
    previous_fa: str = ""
    vpn_info: VpnInfo | None = None
    fa_key: bytes = field(default=b"", repr=False)   # from the AMA's MIP-FA-to-HA-MSA
    # where the request came from: every reply to it goes there (RFC 5944 §3.7.2.2)
    src_ip: str = ""
    src_port: int = mip.MIP_PORT
    # issue 14: this FA stopped forwarding the MN elsewhere when its AAA accepted it
    # (``ForeignAgent._stop_forwarding``): a move back, not a renewal
    stopped_forwarding: bool = False

    def __init__(self, nai: str, raw: bytes, rrq: mip.RegistrationRequest, mn_mac: str, port: int,
                 started: float, previous_fa: str = "", vpn_info: VpnInfo | None = None,
                 fa_key: bytes = b"", src_ip: str = "", src_port: int = mip.MIP_PORT,
                 stopped_forwarding: bool = False) -> None:
        self.nai = nai
        self.raw = raw
        self.rrq = rrq
        self.mn_mac = mn_mac
        self.port = port
        self.started = started
        self.previous_fa = previous_fa
        self.vpn_info = vpn_info
        self.fa_key = fa_key
        self.src_ip = src_ip
        self.src_port = src_port
        self.stopped_forwarding = stopped_forwarding

    @property
    def reply_to(self) -> tuple[str, int]:
        return (self.src_ip, self.src_port)

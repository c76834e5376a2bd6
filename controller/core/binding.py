"""Route-optimisation binding messages as the roles use them (claims 19-25).

Pure helpers over the codec in ``controller.proto.mip``: build and check the Binding
Update (BU) that carries VPN information, the Binding Acknowledge (BAck) and the
Binding Request (BReq).  Message types are the experimental ones of ``mip``
(``BINDING_*``); layouts are draft-ietf-mobileip-optim-11 §4.

A BU carries, in order: MN-NAI (131), one CVSE ``CVSE_VPN_TUNNEL`` per tunnel
(``mip.encode_tunnel_extension``, PSK hidden under the BU's key), and the
route-optimisation authentication extension (type 35, HMAC-MD5, always last).  Keys:

- HA -> CN-GW (claims 19-21, 25): a per-(HA, CN-GW) :class:`BindingKey` the home AAA
  provisions at start, like the stationary tunnels of claim 16 step 1;
- new FA -> old FA (claims 22-23): derived from the smooth-handoff tunnel's PSK
  (:func:`handoff_key`), which both FAs can compute (see ``vpn.handoff_psk``).

BAck and BReq carry no extensions (the draft's layouts): a BAck is matched to its BU by
Identification, a BReq only ever makes the HA send a (authenticated) BU.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from controller.core.actions import Action
from controller.core.vpn import TunnelSpec, VpnInfo, route_optimised
from controller.proto import mip

REPLAY_WINDOW = 7.0      # seconds, as for registrations (RFC 5944 §5.7)
HANDOFF_SPI = 0x100      # SPI of the smooth-handoff (FA -> FA) security association
BINDING_SPI_BASE = 0x200  # SPIs of the HA <-> CN-GW associations: base + index
#: NVSE type (vendor ``mip.MIPVPN_VENDOR_ID``, empty value) in a BU: keep the tunnels to
#: the previous FA until the new one is up (issue 14, seamless profiles); a normal
#: vendor extension, so a receiver that does not know it goes on without it
NVSE_MAKE_BEFORE_BREAK = 5   # (4 is the MN-FA nonce reply, mip_keys)


@dataclass(frozen=True)
class BindingKey:
    """A security association for binding messages: SPI + 16-byte HMAC-MD5 key."""

    spi: int
    key: bytes = field(repr=False)


def new_binding_key(spi: int) -> BindingKey:
    """Fresh key from the OS CSPRNG (never logged)."""
    return BindingKey(spi, secrets.token_bytes(16))


def handoff_key(handoff_psk: bytes) -> BindingKey:
    """Key of the new FA -> old FA BU (claims 22-23): HMAC-SHA-256(handoff PSK,
    "mipvpn-bu-auth") truncated to 16 bytes, SPI :data:`HANDOFF_SPI`."""
    digest = hmac.digest(handoff_psk, b"mipvpn-bu-auth", "sha256")
    return BindingKey(HANDOFF_SPI, digest[:16])


class IdentificationClock:
    """Strictly increasing NTP-format Identifications for the BUs / BReqs one role
    sends (RFC 5944 §5.7 timestamps)."""

    def __init__(self) -> None:
        self.last = 0

    def next(self, now: float) -> int:
        ident = max(mip.ntp_identification(now), self.last + 1)
        self.last = ident
        return ident


# ------------------------------------------------------------------ Binding Update


def build_binding_update(key: BindingKey, identification: int, lifetime: int,
                         home_address: str, care_of_address: str, nai: str,
                         tunnels: tuple[TunnelSpec, ...], make_before_break: bool = False
                         ) -> bytes:
    """A BU with A and I set (acknowledge wanted, Identification present).
    ``lifetime`` 0 asks the receiver to delete its binding (and tunnels);
    ``make_before_break``: the NVSE ``NVSE_MAKE_BEFORE_BREAK`` (issue 14)."""
    exts: list[mip.Extension] = [mip.NaiExtension(nai)]
    exts += [mip.encode_tunnel_extension(t, key.key, identification) for t in tunnels]
    if make_before_break:
        exts.append(mip.NormalVendorExtension(mip.MIPVPN_VENDOR_ID, NVSE_MAKE_BEFORE_BREAK,
                                              b""))
    bu = mip.BindingUpdate(flags=mip.BU_FLAG_A | mip.BU_FLAG_I, lifetime=lifetime,
                           home_address=home_address, care_of_address=care_of_address,
                           identification=identification, extensions=exts)
    return mip.append_auth(mip.encode(bu), mip.AuthKind.RO, key.spi, key.key)


@dataclass(frozen=True)
class ReceivedUpdate:
    """A BU that passed :func:`check_binding_update`."""

    bu: mip.BindingUpdate
    nai: str
    tunnels: tuple[TunnelSpec, ...]

    @property
    def lifetime(self) -> int:
        return self.bu.lifetime

    @property
    def is_delete(self) -> bool:
        return self.bu.is_delete

    @property
    def make_before_break(self) -> bool:
        return any(e.vendor_id == mip.MIPVPN_VENDOR_ID and e.vendor_type == NVSE_MAKE_BEFORE_BREAK
                   for e in self.bu.find_all(mip.NormalVendorExtension))


def peek_binding_update(raw: bytes) -> mip.BindingUpdate | None:
    """The BU in ``raw`` (unauthenticated: to choose the key), else None."""
    try:
        msg = mip.decode(raw)
    except mip.MipDecodeError:
        return None
    return msg if isinstance(msg, mip.BindingUpdate) else None


def check_binding_update(raw: bytes, key: BindingKey | None, now: float,
                         last_identification: int = 0) -> ReceivedUpdate | int:
    """Authenticate and parse a BU; the BAck status (RO11 §4.4) when it fails:
    134 poorly formed, 131 authentication failed (no key, no / wrong / not-last
    authentication extension, wrong SPI), 133 identification outside the replay window
    or not newer than ``last_identification``."""
    try:
        msg = mip.decode(raw)
    except mip.MipDecodeError:
        return mip.BACK_POORLY_FORMED
    if not isinstance(msg, mip.BindingUpdate):
        return mip.BACK_POORLY_FORMED
    auth = msg.extensions[-1] if msg.extensions else None
    if (key is None or not isinstance(auth, mip.RoAuth) or auth.spi != key.spi
            or not mip.verify_auth(raw, mip.AuthKind.RO, key.key)):
        return mip.BACK_AUTH_FAILED
    stamp = mip.identification_time(msg.identification)
    if abs(stamp - now) > REPLAY_WINDOW or msg.identification <= last_identification:
        return mip.BACK_IDENTIFICATION_MISMATCH
    tunnels = []
    for ext in msg.find_all(mip.CriticalVendorExtension):
        if ext.vendor_id != mip.MIPVPN_VENDOR_ID or ext.vendor_type != mip.CVSE_VPN_TUNNEL:
            return mip.BACK_POORLY_FORMED   # a critical extension we do not know
        try:
            tunnels.append(mip.decode_tunnel_extension(ext, key.key, msg.identification))
        except mip.MipDecodeError:
            return mip.BACK_POORLY_FORMED
    return ReceivedUpdate(msg, msg.nai or "", tuple(tunnels))


# ------------------------------------------------------------------ Ack / Request


def binding_ack(status: int, home_address: str, identification: int) -> bytes:
    return mip.encode(mip.BindingAck(status, home_address, identification))


def ack_status(raw: bytes | None, identification: int) -> int | None:
    """Status of the BAck in ``raw`` if it answers ``identification``; None when
    nothing (timeout), something else or a BAck for another BU came back."""
    if raw is None:
        return None
    try:
        msg = mip.decode(raw)
    except mip.MipDecodeError:
        return None
    if not isinstance(msg, mip.BindingAck) or msg.identification != identification:
        return None
    return msg.status


def binding_request(home_address: str, identification: int) -> bytes:
    return mip.encode(mip.BindingRequest(home_address, identification))


# ------------------------------------------------------------------ the HA's records


@dataclass
class Binding:
    nai: str
    home_address: str
    care_of_address: str
    foreign_agent: str
    vpn_info: VpnInfo
    lifetime: int
    expires: float
    identification: int
    distributed: set[str] = field(default_factory=set)   # CN-GWs holding our BU
    secret: bytes = field(default=b"", repr=False)       # the session's (issue 11)

    def __init__(self, nai: str, home_address: str, care_of_address: str, foreign_agent: str,
                 vpn_info: VpnInfo, lifetime: int, expires: float, identification: int,
                 distributed: set[str] | None = None, secret: bytes = b"") -> None:
        self.nai = nai
        self.home_address = home_address
        self.care_of_address = care_of_address
        self.foreign_agent = foreign_agent
        self.vpn_info = vpn_info
        self.lifetime = lifetime
        self.expires = expires
        self.identification = identification
        self.distributed = distributed if distributed is not None else set()
        self.secret = secret

    @property
    def route_optimised(self) -> dict[str, TunnelSpec]:
        return route_optimised(self.vpn_info)


@dataclass
class PendingUpdates:
    """A registration waiting for its CN-GWs' Binding Acknowledges (claims 19-21)."""

    nai: str
    cn_gateway: str
    identification: int
    delete: bool
    queue: list[tuple[str, bool]]     # (CN-GW, delete?) still to post
    final: list[Action]               # the answer, once every BU is acknowledged
    binding: Binding                  # as it was (a deregistration removed it)

"""Mipvpn-VPN-Info AVP bytes -> the ``VpnInfo`` they carry, for bytes this process
decoded or wrote itself (issue 15).

When every role runs in one process (the default deployment), a registration's VPN
information is written by the home AAA (HAR, AMA), relayed by the foreign AAA and read
by the HA, the home AAA (HAA), the foreign AAA and the FA: the receivers would decode
bytes the sender has just made from a value it still holds.  The encoder
(``templates._vpn_info``) files each value it writes under the AVP's bytes, and the
decoder (``decoding._decode_vpn_info``) looks the bytes up before decoding them; it
files what it decodes the same way (a renewal or a relayed answer carries the same
bytes again).  ``VpnInfo`` is frozen, so sharing one value is safe.  The encoder files
a value only when decoding its bytes gives an equal one (``_round_trips``); the tests
(tests/unit/proto/test_diameter_vpn_memo.py) check that on random values.  Roles in
separate processes simply decode (nothing to find).  Bounded: cleared when full.
"""

from __future__ import annotations

from typing import Final

from controller.model.vpn import TunnelSpec, VpnInfo
from controller.proto.diameter.wire import _ip

_DECODED: Final[dict[bytes, VpnInfo]] = {}
#: entries at most: a registration's messages are written, relayed and read within
#: milliseconds, and a renewal comes with other keys; values kept for thousands of
#: registrations lived long enough to be traversed twice by the cyclic GC (issue 15)
_MAX: Final = 512


def _remember(raw: bytes, info: VpnInfo) -> None:
    """File ``info`` under its AVP bytes ``raw`` (header and members, unpadded)."""
    if len(_DECODED) >= _MAX:
        _DECODED.clear()
    _DECODED[raw] = info


def _recall(raw: bytes) -> VpnInfo | None:
    return _DECODED.get(raw)


def _canonical(address: str) -> bool:
    return not address or _ip(address) == address


def _tunnel_round_trips(t: TunnelSpec) -> bool:
    return (_canonical(t.a.address) and _canonical(t.b.address)
            and type(t.psk) is bytes and type(t.initiator) is str
            and type(t.qos.rate_kbps) is int and type(t.qos.dscp) is int)


def _round_trips(info: VpnInfo) -> bool:
    """Whether decoding ``info``'s bytes gives a value equal to ``info`` (and of the
    same types): the encoder writes addresses in their canonical spelling and the
    decoder reads integers, bools and bytes back as exactly those types."""
    # (the two bool options: VpnInfo refuses anything but bool at construction)
    return (_canonical(info.home_address)
            and all(_tunnel_round_trips(t) for t in info.tunnels)
            and (info.handoff is None or _tunnel_round_trips(info.handoff)))

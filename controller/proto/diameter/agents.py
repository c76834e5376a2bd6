"""What relay and proxy agents add to a message on its way (RFC 6733 §6.1.9, §6.7;
issue 17): Route-Record (requests: every agent appends the peer it received the
request from) and Proxy-Info (an agent's own state; every answer echoes the request's
Proxy-Info AVPs in the same order).  Decoding only; the encoder writes both back."""

from __future__ import annotations

import struct
from typing import Any, Final, Protocol

from controller.proto.diameter.messages import DiameterDecodeError
from controller.proto.diameter.numbers import AVP_PROXY_INFO, AVP_ROUTE_RECORD, MISSING_AVP

_PROXY_HOST: Final = 280     # RFC 6733 §6.7.3
_PROXY_STATE: Final = 33     # RFC 6733 §6.7.4


class _Avps(Protocol):
    """The decoder's AVP list (``decoding._Avps``)."""

    def all(self, code: int, vendor: int = 0) -> list[Any]: ...
    def ident_of(self, a: Any) -> str: ...
    def error(self, rc: int, code: int, msg: str, raw: bytes = b"") -> DiameterDecodeError:
        ...


def _member_codes(data: bytes) -> set[int]:
    """The IETF AVP codes directly inside a grouped AVP's content (already framed by
    the decoder's walk of the message: lengths are checked there)."""
    codes, pos = set(), 0
    while pos + 8 <= len(data):
        code, flags_len = struct.unpack_from("!II", data, pos)
        length = flags_len & 0xFFFFFF
        if length < 8:
            break
        if not flags_len >> 24 & 0x80:          # not vendor-specific
            codes.add(code)
        pos += length + (-length & 3)
    return codes


def _proxy_info(top: _Avps) -> tuple[bytes, ...]:
    """Every Proxy-Info's content as received, in order; only its { Proxy-Host } and
    { Proxy-State } are checked (the rest is the proxy's business)."""
    out = []
    for a in top.all(AVP_PROXY_INFO):
        missing = {_PROXY_HOST, _PROXY_STATE} - _member_codes(a.data)
        for code in sorted(missing):
            raise top.error(MISSING_AVP, code, f"Proxy-Info without AVP {code}",
                            struct.pack("!II", code, 8))
        out.append(bytes(a.data))
    return tuple(out)


def _route_record(top: _Avps) -> tuple[str, ...]:
    """A request's Route-Record identities, in order."""
    return tuple(map(top.ident_of, top.all(AVP_ROUTE_RECORD)))


"""Wire primitives of the Diameter encoders (``encoding``, ``templates``): AVP and
message headers with struct, the payloads of the AVP types our messages use (the bytes
python-diameter's value setters write), and the value conversions both encoders share."""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from typing import Any, Final

from diameter.message.avp import (AvpAddress, AvpOctetString, AvpUnsigned32,
                                  AvpUtf8String)
from diameter.message.avp.avp import AvpInteger32 as _AvpInteger32

from controller.proto.diameter.messages import DiameterEncodeError

# Final: compiled, each is a C static (not a module dict look-up per use; issue 15)
_MSG_HDR: Final = struct.Struct("!IIIII")
_U32: Final = struct.Struct("!I")
_I32: Final = struct.Struct("!i")
_PAD: Final = (b"", b"\0\0\0", b"\0\0", b"\0")     # by len(payload) % 4
_OCTETS: Final = AvpOctetString
_UTF8: Final = AvpUtf8String
_UNSIGNED32: Final = AvpUnsigned32
_INTEGER32: Final = _AvpInteger32
_ADDRESS: Final = AvpAddress


class _Unsupported(Exception):
    """A value or AVP type the fast path does not write: python-diameter does."""


def _avp_wire(code: int, flags: int, vendor: int, payload: bytes) -> bytes:
    # compiled: ``int.to_bytes(4, "big")`` is a C call on the native int and ``b"%b" %``
    # joins the parts in one allocation, where ``struct.pack`` was a method call on
    # boxed ints (issue 15; wire bytes unchanged: the codec tests)
    n = len(payload)
    if vendor:
        return b"%b%b%b%b%b" % (code.to_bytes(4, "big"),
                                ((flags << 24) | (n + 12)).to_bytes(4, "big"),
                                vendor.to_bytes(4, "big"), payload, _PAD[n & 3])
    return b"%b%b%b%b" % (code.to_bytes(4, "big"),
                          ((flags << 24) | (n + 8)).to_bytes(4, "big"), payload, _PAD[n & 3])


def _value_payload(cls: type, value: Any) -> bytes:
    if cls is _OCTETS and type(value) is bytes:
        return value
    if cls is _UTF8 and type(value) is str:
        return value.encode("utf8")
    if cls is _UNSIGNED32 and type(value) is int and 0 <= value <= 0xFFFFFFFF:
        return _U32.pack(value)
    if cls is _INTEGER32 and type(value) is int and -(1 << 31) <= value < (1 << 31):
        return _I32.pack(value)
    if cls is _ADDRESS and type(value) is str:
        try:
            return struct.pack("!h4s", 1, socket.inet_pton(socket.AF_INET, value))
        except OSError:
            pass
    raise _Unsupported


@functools.lru_cache(maxsize=4096)
def _ip(s: str) -> str:
    """Validated IP address text (python-diameter would silently encode E.164)."""
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        raise DiameterEncodeError(f"not an IP address: {s!r}") from None


def _i32(v: int) -> int:
    """python-diameter types Result-Code, Authorization-Lifetime and MIP-Feature-Vector
    (Unsigned32 in RFC 6733 / 4004) and the Enumerated AVPs as Integer32 and refuses
    values >= 2^31; the two's complement value has the very same four bytes on the wire
    (and is what our decoder, reading them unsigned, gives back)."""
    return v - (1 << 32) if (1 << 31) <= v <= 0xFFFFFFFF else v


def _ident(s: str) -> bytes:
    return s.encode("ascii")    # DiameterIdentity (FQDN / realm)

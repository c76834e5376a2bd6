"""The codec's error (it carries the reply code an FA / HA answers with) and the address
helpers every part of the codec uses."""

from __future__ import annotations

import functools
import ipaddress
import socket

from controller.proto.mip.numbers import (CODE_FA_POORLY_FORMED_REQUEST,
                                          CODE_HA_POORLY_FORMED_REQUEST)

# --------------------------------------------------------------------------- errors


class MipDecodeError(ValueError):
    """A received message is malformed and must be dropped or denied.

    ``fa_code`` / ``ha_code`` are the reply codes an FA / HA should answer with
    (70 / 134 for a request; 71 for a poorly formed reply at an FA). ``code`` is the
    FA's code, since the FA is the first receiver of a request.
    """

    def __init__(self, msg: str, fa_code: int = CODE_FA_POORLY_FORMED_REQUEST,
                 ha_code: int = CODE_HA_POORLY_FORMED_REQUEST) -> None:
        super().__init__(msg)
        self.fa_code = fa_code
        self.ha_code = ha_code

    @property
    def code(self) -> int:
        return self.fa_code


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=4096)
def _ip_to_bytes(addr: str) -> bytes:
    """Strict dotted quad (``ipaddress``; ``inet_aton`` would take ``"1.2"``), cached:
    the same few agent and care-of addresses are written again and again."""
    return ipaddress.IPv4Address(addr).packed


def _bytes_to_ip(data: bytes) -> str:
    if len(data) == 4:
        return socket.inet_ntoa(data)     # the text str(IPv4Address(data)) gives
    return str(ipaddress.IPv4Address(data))   # its error

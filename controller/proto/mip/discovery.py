"""ICMP agent discovery (RFC 1256; RFC 5944 §2.1): Agent Advertisement and Solicitation."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from controller.proto.mip.errors import _bytes_to_ip, _ip_to_bytes, MipDecodeError
from controller.proto.mip.extensions import _short
from controller.proto.mip.numbers import (ADV_CODE_MOBILITY_ONLY, ADV_CODE_ROUTES,
                                          ADV_EXT_CHALLENGE, ADV_EXT_MOBILITY_AGENT,
                                          ADV_EXT_PREFIX_LENGTHS, ADV_FLAG_F, ADV_FLAG_H,
                                          ICMP_ROUTER_ADVERTISEMENT,
                                          ICMP_ROUTER_SOLICITATION)

# --------------------------------------------------------------------------- agent discovery


def icmp_checksum(data: bytes) -> int:
    """Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class AgentAdvertisement:
    """ICMP Router Advertisement (RFC 1256) + Mobility Agent Advertisement ext (5944 §2.1.1).

    ::

        Type=9(8) Code(8: 0 routes traffic, 16 mobility only) Checksum(16)
        NumAddrs(8) AddrEntrySize(8)=2 Lifetime(16)
        RouterAddress[i](32) PreferenceLevel[i](32)   (NumAddrs = 1 here)
        Type=16(8) Length(8)=6+4N Sequence(16) RegistrationLifetime(16) Flags(16)
        CareOfAddress(32)*N
        [Type=19 Prefix-Lengths, Type=24 Challenge, Type=0 pad ...]
    """

    router_address: str
    preference: int
    lifetime: int
    sequence: int
    registration_lifetime: int
    flags: int
    care_of_addresses: list[str] = field(default_factory=list)
    code: int = ADV_CODE_MOBILITY_ONLY
    challenge: bytes | None = None
    prefix_lengths: list[int] | None = None

    @property
    def is_foreign_agent(self) -> bool:
        return bool(self.flags & ADV_FLAG_F)

    @property
    def is_home_agent(self) -> bool:
        return bool(self.flags & ADV_FLAG_H)

    def encode(self) -> bytes:
        body = struct.pack("!BBH4si", 1, 2, self.lifetime, _ip_to_bytes(self.router_address),
                           self.preference)
        coas = b"".join(_ip_to_bytes(a) for a in self.care_of_addresses)
        body += struct.pack("!BBHHH", ADV_EXT_MOBILITY_AGENT, 6 + len(coas), self.sequence,
                            self.registration_lifetime, self.flags) + coas
        if self.prefix_lengths is not None:
            body += _short(ADV_EXT_PREFIX_LENGTHS, bytes(self.prefix_lengths))
        if self.challenge is not None:
            body += _short(ADV_EXT_CHALLENGE, self.challenge)
        head = struct.pack("!BBH", ICMP_ROUTER_ADVERTISEMENT, self.code, 0)
        csum = icmp_checksum(head + body)
        return struct.pack("!BBH", ICMP_ROUTER_ADVERTISEMENT, self.code, csum) + body


@dataclass
class AgentSolicitation:
    """ICMP Router Solicitation (RFC 1256): ``Type=10 Code=0 Checksum(16) Reserved(32)``."""

    def encode(self) -> bytes:
        csum = icmp_checksum(struct.pack("!BBHI", ICMP_ROUTER_SOLICITATION, 0, 0, 0))
        return struct.pack("!BBHI", ICMP_ROUTER_SOLICITATION, 0, csum, 0)


def decode_icmp(data: bytes) -> AgentAdvertisement | AgentSolicitation:
    """Parse an ICMP message (no IP header). Raises :class:`MipDecodeError` if it is not a
    valid agent advertisement / solicitation (bad checksum, no mobility extension, ...)."""
    data = bytes(data)
    if len(data) < 8:
        raise MipDecodeError("truncated ICMP message")
    icmp_type, code = data[0], data[1]
    if icmp_checksum(data) != 0:
        raise MipDecodeError("bad ICMP checksum")
    if icmp_type == ICMP_ROUTER_SOLICITATION:
        if code != 0:
            raise MipDecodeError(f"bad solicitation code {code}")
        return AgentSolicitation()
    if icmp_type != ICMP_ROUTER_ADVERTISEMENT:
        raise MipDecodeError(f"not an agent advertisement/solicitation: ICMP type {icmp_type}")
    if code not in (ADV_CODE_ROUTES, ADV_CODE_MOBILITY_ONLY):
        raise MipDecodeError(f"bad advertisement code {code}")
    num, entry_size, lifetime = struct.unpack_from("!BBH", data, 4)
    if entry_size < 2:
        raise MipDecodeError(f"bad address entry size {entry_size}")
    off = 8 + num * entry_size * 4
    if off > len(data):
        raise MipDecodeError("truncated router address list")
    if num:
        router, pref = struct.unpack_from("!4si", data, 8)
        router_address, preference = _bytes_to_ip(router), pref
    else:
        router_address, preference = "0.0.0.0", 0
    adv: AgentAdvertisement | None = None
    challenge: bytes | None = None
    prefix_lengths: list[int] | None = None
    while off < len(data):
        ext_type = data[off]
        if ext_type == 0:
            off += 1
            continue
        if off + 2 > len(data):
            raise MipDecodeError("truncated advertisement extension header")
        length = data[off + 1]
        body = data[off + 2:off + 2 + length]
        if len(body) != length:
            raise MipDecodeError(f"advertisement extension {ext_type} overruns message")
        if ext_type == ADV_EXT_MOBILITY_AGENT:
            if length < 6 or (length - 6) % 4:
                raise MipDecodeError(f"bad mobility agent extension length {length}")
            seq, reg_life, flags = struct.unpack_from("!HHH", body)
            coas = [_bytes_to_ip(body[i:i + 4]) for i in range(6, length, 4)]
            adv = AgentAdvertisement(router_address, preference, lifetime, seq, reg_life,
                                     flags, coas, code)
        elif ext_type == ADV_EXT_PREFIX_LENGTHS:
            prefix_lengths = list(body)
        elif ext_type == ADV_EXT_CHALLENGE:
            challenge = body
        off += 2 + length
    if adv is None:
        raise MipDecodeError("router advertisement without mobility agent extension")
    adv.challenge = challenge
    adv.prefix_lengths = prefix_lengths
    return adv

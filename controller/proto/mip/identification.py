"""The Identification field as an NTP timestamp (RFC 5944 §5.7.1)."""

from __future__ import annotations

# --------------------------------------------------------------------------- identification

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def ntp_identification(unix_time: float, rand: int = 0) -> int:
    """RFC 5944 §5.7 timestamp: high 32 = seconds since 1900, low 32 = fraction.

    The fraction's lowest 8 bits (below ~4 ns, never meaningful) are replaced by ``rand``
    so that two Identifications made in the same instant still differ.
    """
    ntp = unix_time + NTP_UNIX_OFFSET
    seconds = int(ntp) & 0xFFFFFFFF
    fraction = int((ntp - int(ntp)) * (1 << 32)) & 0xFFFFFF00
    return (seconds << 32) | fraction | (rand & 0xFF)


def identification_time(ident: int) -> float:
    """Unix time encoded in an NTP-format Identification."""
    seconds = ident >> 32
    fraction = ident & 0xFFFFFFFF
    return seconds - NTP_UNIX_OFFSET + fraction / (1 << 32)

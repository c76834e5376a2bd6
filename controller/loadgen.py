"""Virtual mobile nodes and recording data-plane drivers (load generator, benchmarks,
runtime tests without Mininet).  Not used by the product's data path."""

from __future__ import annotations

import ipaddress
from typing import Any

from controller.proto import mip

VENDOR_ID = 32473
CVSE_PREVIOUS_FA = 1


def build_rrq(nai: str, home_address: str, home_agent: str, care_of_address: str,
              spi: int, key: bytes, identification: int, lifetime: int = 300,
              previous_coa: str | None = None, ha_spi: int = 0,
              ha_key: bytes = b"", fa_spi: int = 0, fa_key: bytes = b"") -> bytes:
    """A Registration Request as the MN client builds it (NAI, [previous FA], [MN-HA
    when ``ha_key``], MN-AAA, [MN-FA when ``fa_key``: ``mip_keys.mn_fa_key`` of the nonce
    in the last accepted reply])."""
    exts: list[Any] = [mip.NaiExtension(nai)]
    if previous_coa:
        exts.append(mip.CriticalVendorExtension(
            VENDOR_ID, CVSE_PREVIOUS_FA, ipaddress.IPv4Address(previous_coa).packed))
    rrq = mip.RegistrationRequest(flags=mip.FLAG_T, lifetime=lifetime,
                                  home_address=home_address, home_agent=home_agent,
                                  care_of_address=care_of_address,
                                  identification=identification, extensions=exts)
    raw = mip.encode(rrq)
    if ha_key:
        raw = mip.append_auth(raw, mip.AuthKind.MN_HA, ha_spi, ha_key)
    raw = mip.append_auth(raw, mip.AuthKind.MN_AAA, spi, key)
    if fa_key:
        raw = mip.append_auth(raw, mip.AuthKind.MN_FA, fa_spi, fa_key)
    return raw

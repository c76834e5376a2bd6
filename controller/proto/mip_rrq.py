"""The one Registration Request builder of the mobile node side (pure: no I/O, no clock).

The MN client (``mininet_scripts/mn_client.py``), the load generator
(``controller/loadgen.py``), the benchmarks and the tests build their RRQs here.  The RRQ
carries, in the order of RFC 5944 §3.6.1.3 / RFC 3012 §3.1 (PROTOCOLS.md §2): MN-NAI;
after a move a CVSE naming the previous FA's care-of address; for a service update
(claim 24) the service-update CVSE; MN-HA authentication when an MN-HA key is given;
MN-AAA authentication, covering everything before it; MN-FA authentication when an
MN-FA key is given (``mip_keys.mn_fa_key`` of the nonce in the last accepted reply,
RFC 3957; issue 11).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from controller.proto import mip


def build_rrq(*, nai: str, home_address: str, home_agent: str, care_of_address: str,
              identification: int, lifetime: int, mn_aaa_spi: int, mn_aaa_key: bytes,
              previous_coa: str | None = None, service_update: bool = False,
              ha_spi: int | None = None, ha_key: bytes | None = None,
              fa_spi: int | None = None, fa_key: bytes | None = None,
              simultaneous: bool = False) -> bytes:
    """The encoded RRQ (flags T, and S with ``simultaneous``: keep the earlier binding
    until the new one is up, RFC 5944 §3.3; issue 14).  An authenticator is appended
    only when both its SPI and its key are given."""
    exts: list[Any] = [mip.NaiExtension(nai)]
    if previous_coa is not None:
        exts.append(mip.CriticalVendorExtension(
            mip.MIPVPN_VENDOR_ID, mip.CVSE_PREVIOUS_FA,
            ipaddress.IPv4Address(previous_coa).packed))
    if service_update:
        exts.append(mip.CriticalVendorExtension(mip.MIPVPN_VENDOR_ID,
                                                mip.CVSE_SERVICE_UPDATE, b""))
    rrq = mip.RegistrationRequest(
        flags=mip.FLAG_T | (mip.FLAG_S if simultaneous else 0), lifetime=lifetime,
        home_address=home_address,
        home_agent=home_agent, care_of_address=care_of_address,
        identification=identification, extensions=exts)
    raw = mip.encode(rrq)
    if ha_key is not None and ha_spi is not None:
        raw = mip.append_auth(raw, mip.AuthKind.MN_HA, ha_spi, ha_key)
    raw = mip.append_auth(raw, mip.AuthKind.MN_AAA, mn_aaa_spi, mn_aaa_key)
    if fa_key is not None and fa_spi is not None:
        raw = mip.append_auth(raw, mip.AuthKind.MN_FA, fa_spi, fa_key)
    return raw

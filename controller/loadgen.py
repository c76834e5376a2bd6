"""Virtual mobile nodes and recording data-plane drivers (load generator, benchmarks,
runtime tests without Mininet).  Not used by the product's data path."""

from __future__ import annotations

from controller.proto import mip, mip_rrq

VENDOR_ID = mip.MIPVPN_VENDOR_ID
CVSE_PREVIOUS_FA = mip.CVSE_PREVIOUS_FA


def build_rrq(nai: str, home_address: str, home_agent: str, care_of_address: str,
              spi: int, key: bytes, identification: int, lifetime: int = 300,
              previous_coa: str | None = None, ha_spi: int = 0,
              ha_key: bytes = b"", fa_spi: int = 0, fa_key: bytes = b"",
              simultaneous: bool = False) -> bytes:
    """A Registration Request as the MN client builds it (NAI, [previous FA], [MN-HA
    when ``ha_key``], MN-AAA, [MN-FA when ``fa_key``: ``mip_keys.mn_fa_key`` of the nonce
    in the last accepted reply]); ``simultaneous`` sets S (issue 14)."""
    return mip_rrq.build_rrq(
        nai=nai, home_address=home_address, home_agent=home_agent,
        care_of_address=care_of_address, identification=identification, lifetime=lifetime,
        mn_aaa_spi=spi, mn_aaa_key=key, previous_coa=previous_coa or None,
        ha_spi=ha_spi, ha_key=ha_key or None, fa_spi=fa_spi, fa_key=fa_key or None,
        simultaneous=simultaneous)

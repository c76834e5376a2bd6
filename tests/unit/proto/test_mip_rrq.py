"""The one RRQ builder (``controller.proto.mip_rrq``) gives the bytes the three builders
gave before it replaced them (MN client, load generator, benchmarks; issue 12).

The expected bytes were recorded from ``MobileNodeState.build_rrq`` and
``controller.loadgen.build_rrq`` as they were before the move (both agreed)."""

from __future__ import annotations

import pytest

from controller.loadgen import build_rrq as loadgen_build_rrq
from controller.proto.mip_rrq import build_rrq
from mininet_scripts.mn_state import Agent, MnConfig, MobileNodeState

AAA_KEY, HA_KEY, FA_KEY = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
IDENT = 0xE1234567_00000001
NAI, HOME, HA, COA, PREV = "alice@home.example", "10.10.0.100", "10.0.0.1", "10.0.0.11", "10.0.0.12"

RECORDED = {
    "plain": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c65240100140000012c05e5ab20ac2a0888edb1549d2121b401",
    "moved": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c652600000a00007ed900010a00000c240100140000012c0e8dc4be6127ce6061fe83d9e5eee7db",
    "service_update": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c652600000600007ed90002240100140000012cb458ea9c1fc6853911b786a9a236162e",
    "mn_ha": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c65201400000190695897ea293a42f6123e785063e736a5240100140000012c205c1e025e1bdb0e5a5d658b46fe39bc",
    "mn_fa": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c65240100140000012c05e5ab20ac2a0888edb1549d2121b4012114000001006d8954f9bdd0cb4cf6c88ddb166aeddf",
    "all": "0102012c0a0a00640a0000010a00000be1234567000000018312616c69636540686f6d652e6578616d706c652600000a00007ed900010a00000c2600000600007ed9000220140000019024664ce904eef9bb40bbe0f0108756d7240100140000012c743cd35dba4fb2a98aecabba47328057211400000100a7aceaaf6eff1b12bc7312719540e46b",
}

CASES = {
    "plain": {},
    "moved": {"previous_coa": PREV},
    "service_update": {"service_update": True},
    "mn_ha": {"ha": True},
    "mn_fa": {"fa": True},
    "all": {"previous_coa": PREV, "service_update": True, "ha": True, "fa": True},
}


def _new(case: dict) -> bytes:
    return build_rrq(nai=NAI, home_address=HOME, home_agent=HA, care_of_address=COA,
                     identification=IDENT, lifetime=300, mn_aaa_spi=300, mn_aaa_key=AAA_KEY,
                     previous_coa=case.get("previous_coa"),
                     service_update=case.get("service_update", False),
                     ha_spi=400 if case.get("ha") else None,
                     ha_key=HA_KEY if case.get("ha") else None,
                     fa_spi=0x100 if case.get("fa") else None,
                     fa_key=FA_KEY if case.get("fa") else None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_builder_gives_the_recorded_bytes(name: str) -> None:
    assert _new(CASES[name]).hex() == RECORDED[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_mn_client_builds_with_it(name: str) -> None:
    case = CASES[name]
    config = MnConfig(NAI, HOME, HA, 300, AAA_KEY, 300, 400 if case.get("ha") else None,
                      HA_KEY if case.get("ha") else None)
    state = MobileNodeState(config)
    if case.get("fa"):
        state.mn_fa_spi, state.mn_fa_key = 0x100, FA_KEY
    agent = Agent(COA, COA, "02:00:00:00:00:11", 0)
    raw = state.build_rrq(agent, IDENT, case.get("previous_coa"), 300,
                          case.get("service_update", False))
    assert raw.hex() == RECORDED[name]


@pytest.mark.parametrize("name", sorted(n for n in CASES if n not in ("service_update", "all")))
def test_load_generator_builds_with_it(name: str) -> None:
    case = CASES[name]
    raw = loadgen_build_rrq(NAI, HOME, HA, COA, 300, AAA_KEY, IDENT, 300,
                            case.get("previous_coa"),
                            ha_spi=400 if case.get("ha") else 0,
                            ha_key=HA_KEY if case.get("ha") else b"",
                            fa_spi=0x100 if case.get("fa") else 0,
                            fa_key=FA_KEY if case.get("fa") else b"")
    assert raw.hex() == RECORDED[name]


def test_an_authenticator_needs_both_spi_and_key() -> None:
    assert _new({}) == build_rrq(nai=NAI, home_address=HOME, home_agent=HA,
                                 care_of_address=COA, identification=IDENT, lifetime=300,
                                 mn_aaa_spi=300, mn_aaa_key=AAA_KEY, ha_key=HA_KEY,
                                 fa_spi=0x100)


def test_simultaneous_sets_only_the_s_flag() -> None:
    """Issue 14: ``simultaneous`` sets S (0x80) next to T, nothing else changes; the
    load generator passes it through."""
    from controller.proto import mip
    plain = bytes.fromhex(RECORDED["plain"])
    with_s = loadgen_build_rrq(NAI, HOME, HA, COA, 300, AAA_KEY, IDENT, simultaneous=True)
    msg = mip.decode(with_s)
    assert msg.flags == mip.FLAG_T | mip.FLAG_S
    assert with_s[0] == plain[0] and with_s[1] == plain[1] | 0x80
    assert with_s[2:-16] == plain[2:-16]                      # authenticator differs
    assert mip.verify_auth(with_s, mip.AuthKind.MN_AAA, AAA_KEY)

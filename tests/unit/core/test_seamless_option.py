"""Issue 14: the profile option ``seamless_handover`` travels like ``smooth_handoff``:
topology YAML -> stored profile -> the home AAA's VPN information -> Diameter ->
the HA's check against the profile.  Off by default; off leaves the information as
before (no AVP on the wire)."""

from __future__ import annotations

import copy
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from controller.adapters.store import VpnStore
from controller.config import ConfigError, parse_topology
from controller.proto import diameter as dia
from tests.unit.core.test_ha_validation import ALICE, check, valid_info, walk_mixed

ROOT = Path(__file__).resolve().parents[3]


def _data() -> dict:
    return yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())


def test_topology_option_parses_and_defaults_off() -> None:
    data = _data()
    assert parse_topology(copy.deepcopy(data), "t").vpn_profiles[ALICE].seamless_handover \
        is False
    data["vpn_profiles"][ALICE]["seamless_handover"] = True
    assert parse_topology(copy.deepcopy(data), "t").vpn_profiles[ALICE].seamless_handover
    data["vpn_profiles"][ALICE]["seamless_handover"] = "yes"
    with pytest.raises(ConfigError, match="seamless_handover"):
        parse_topology(data, "t")


def test_allowance_may_let_the_user_toggle_it() -> None:
    data = _data()
    data["vpn_profiles"][ALICE]["allowance"] = {"seamless_handover": True}
    prof = parse_topology(data, "t").vpn_profiles[ALICE]
    assert prof.allowance is not None and prof.allowance.seamless_handover is True


def test_home_aaa_information_carries_it_and_the_ha_checks_it() -> None:
    walk = walk_mixed()
    info = valid_info(walk)
    assert info.seamless_handover is False and check(walk, info) is None
    # an information that claims it for a profile without it is refused (and back)
    assert check(walk, replace(info, seamless_handover=True)) == \
        "seamless handover differs from the profile"
    prof = walk.store.profile(ALICE)
    assert prof is not None
    walk.store.put_profile(replace(prof, seamless_handover=True))
    on = valid_info(walk)
    assert on.seamless_handover is True and check(walk, on) is None
    assert check(walk, replace(on, seamless_handover=False)) == \
        "seamless handover differs from the profile"


def test_diameter_carries_it_only_when_on() -> None:
    walk = walk_mixed()
    info = valid_info(walk)
    for value in (False, True):
        avp = dia.vpn_info_avp(replace(info, seamless_handover=value))
        codes = {a.code for a in avp.value}
        assert (dia.VA_SEAMLESS_HANDOVER in codes) is value
        har = dia.HaRequest(
            session_id="s;1;1", origin_host="aaa.home.example", origin_realm="home.example",
            destination_realm="home.example", destination_host="ha.home.example",
            user_name=ALICE, reg_request=b"\x01" * 24, authorization_lifetime=300,
            auth_session_state=1, feature_vector=0, home_address=info.home_address,
            home_agent_address="10.0.0.1", vpn_info=replace(info, seamless_handover=value))
        back = dia.decode(dia.encode(har))
        assert back.vpn_info.seamless_handover is value


def test_store_keeps_it_and_migrates_an_old_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)   # the options table before issue 14
    db.execute("CREATE TABLE profile_options (nai TEXT PRIMARY KEY, smooth_handoff "
               "INTEGER NOT NULL DEFAULT 0, distribution TEXT NOT NULL DEFAULT "
               "'registration')")
    db.execute("INSERT INTO profile_options VALUES ('x@y.example', 1, 'registration')")
    db.commit()
    db.close()
    store = VpnStore(str(path))
    assert store.options("x@y.example") == {"smooth_handoff": True,
                                            "distribution": "registration",
                                            "seamless_handover": False}
    topo = parse_topology(_data(), "t")
    store.seed(topo)
    prof = store.profile(ALICE)
    assert prof is not None and prof.seamless_handover is False
    store.put_profile(replace(prof, seamless_handover=True), overwrite=True)
    assert store.profile(ALICE).seamless_handover is True   # type: ignore[union-attr]
    store.put_options(ALICE, False, "registration")   # the older writer leaves it
    assert store.options(ALICE)["seamless_handover"] is True
    store.close()

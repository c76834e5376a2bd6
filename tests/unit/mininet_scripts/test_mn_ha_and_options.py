"""MN-HA security association and profile options end to end through configuration,
the VPN database (with migration of older files), the roles and the Diameter codec;
the MN client's MN-HA signing / reply checking and service-update request."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.adapters.store import VpnStore, profile_to_json
from controller.config import ConfigError, parse_topology
from controller.core.roles import build_roles
from controller.core.vpn import TunnelEnd, TunnelSpec, VpnInfo
from controller.proto import diameter as dia
from controller.proto import mip
from mininet_scripts import mn_client, mn_state
from mininet_scripts.mn_state import Agent, LogEvent, MnConfig, MobileNodeState, SendRrq
from tests.unit.harness import DEFAULT_TOPOLOGY

NAI = "alice@home.example"
AAA_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
HA_KEY = bytes.fromhex("8899aabbccddeeff0011223344556677")


def data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


# ------------------------------------------------------------------ configuration


def test_default_topology_has_mn_ha_and_options() -> None:
    topo = parse_topology(data())
    mn = topo.mobile_nodes["mn1"]
    assert (mn.mn_ha_spi, mn.mn_ha_key) == (400, HA_KEY)
    assert HA_KEY.hex() not in repr(mn)
    prof = topo.vpn_profiles[NAI]
    assert (prof.smooth_handoff, prof.distribution) == (False, "registration")


def test_mn_ha_is_optional() -> None:
    d = data()
    del d["mobile_nodes"]["mn1"]["mn_ha_spi"], d["mobile_nodes"]["mn1"]["mn_ha_key"]
    mn = parse_topology(d).mobile_nodes["mn1"]
    assert (mn.mn_ha_spi, mn.mn_ha_key) == (0, b"")


@pytest.mark.parametrize("change,path,reason", [
    ({"mn_ha_key": None}, "mobile_nodes.mn1.mn_ha_key", "go together"),
    ({"mn_ha_spi": None}, "mobile_nodes.mn1.mn_ha_spi", "go together"),
    ({"mn_ha_key": "0011"}, "mobile_nodes.mn1.mn_ha_key", "16 bytes"),
    ({"mn_ha_spi": 12}, "mobile_nodes.mn1.mn_ha_spi", "out of range"),
    ({"mn_ha_key": "00112233445566778899aabbccddeeff"}, "mobile_nodes.mn1.mn_ha_key",
     "differ from mn_aaa_key"),
])
def test_mn_ha_errors(change: dict[str, Any], path: str, reason: str) -> None:
    d = data()
    for k, v in change.items():
        if v is None:
            del d["mobile_nodes"]["mn1"][k]
        else:
            d["mobile_nodes"]["mn1"][k] = v
    with pytest.raises(ConfigError) as exc:
        parse_topology(d, "t.yaml")
    assert f"t.yaml: {path}: " in str(exc.value) and reason in str(exc.value)
    assert "8899aabb" not in str(exc.value)


@pytest.mark.parametrize("key,value,reason", [
    ("smooth_handoff", "yes", "true or false"),
    ("distribution", "lazy", "not one of registration, on_demand"),
])
def test_profile_option_errors(key: str, value: Any, reason: str) -> None:
    d = data()
    d["vpn_profiles"][NAI][key] = value
    with pytest.raises(ConfigError, match=reason):
        parse_topology(d, "t.yaml")


# ------------------------------------------------------------------ VPN database


def test_store_holds_mn_ha_and_options() -> None:
    d = data()
    d["vpn_profiles"][NAI].update(smooth_handoff=True, distribution="on_demand")
    store = VpnStore(":memory:")
    store.seed(parse_topology(d))
    user = store.user(NAI)
    assert user is not None and (user.mn_ha_spi, user.mn_ha_key) == (400, HA_KEY)
    assert HA_KEY.hex() not in repr(user) and AAA_KEY.hex() not in repr(user)
    prof = store.profile(NAI)
    assert prof is not None and prof.smooth_handoff and prof.distribution == "on_demand"
    assert store.options(NAI) == {"smooth_handoff": True, "distribution": "on_demand",
                                  "seamless_handover": False}
    assert profile_to_json(prof)["distribution"] == "on_demand"
    # a user's change (claim 24) survives a re-seed and carries its options
    store.put_profile(replace(prof, smooth_handoff=False, distribution="registration"))
    store.seed(parse_topology(d))
    again = store.profile(NAI)
    assert again is not None and not again.smooth_handoff


def test_old_database_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "vpn.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (nai TEXT PRIMARY KEY, home_address TEXT NOT NULL,
            home_agent TEXT NOT NULL, mn_aaa_spi INTEGER NOT NULL, mn_aaa_key BLOB NOT NULL);
        INSERT INTO users VALUES ('alice@home.example', '10.10.0.100', 'ha', 300,
                                  x'00112233445566778899aabbccddeeff');
    """)
    db.commit()
    db.close()
    store = VpnStore(path)
    user = store.user(NAI)
    assert user is not None and (user.mn_ha_spi, user.mn_ha_key) == (0, b"")
    store.seed(parse_topology(data()))
    assert store.user(NAI).mn_ha_key == HA_KEY   # type: ignore[union-attr]
    store.close()
    assert VpnStore(path).user(NAI).mn_ha_spi == 400   # type: ignore[union-attr]
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(users)")}
    assert {"mn_ha_spi", "mn_ha_key"} <= cols


def test_roles_give_the_ha_the_users_mn_ha_key() -> None:
    store = VpnStore(":memory:")
    topo = parse_topology(data())
    store.seed(topo)
    roles = build_roles(topo, store).roles
    assert roles["ha"].mn_ha_key(NAI) == (400, HA_KEY)
    assert roles["ha"].mn_ha_key("nobody@home.example") is None
    assert set(k for k in roles if k.startswith("cngw:")) == {"cngw:cngw"}
    assert roles["cngw:cngw"].keys["ha"] == roles["aaah"].binding_keys["cngw"]


# ------------------------------------------------------------------ Diameter


def test_vpn_info_options_and_handoff_round_trip() -> None:
    spec = TunnelSpec("o/fa1-fa2", TunnelEnd("fa1", "10.0.0.11", ("10.30.0.0/24",)),
                      TunnelEnd("fa2", "10.0.0.12", ("10.10.0.100/32",)), psk=b"k" * 32,
                      initiator="fa2")
    info = VpnInfo(NAI, "10.10.0.100", "ha", "fa2", (), "fa1", smooth_handoff=True,
                   distribution="on_demand", handoff=spec)
    ama = dia.AmAnswer("s;1", 2001, "aaaf.a.example", "a.example", vpn_info=info)
    wire = dia.encode(ama)
    assert dia.decode(wire).vpn_info == info
    codes = {(c, v) for c, _f, v in dia.walk_avp_codes(wire)}
    assert {(22, 32473), (23, 32473), (24, 32473)} <= codes
    plain = replace(info, smooth_handoff=False, distribution="registration", handoff=None)
    codes = {c for c, _f, v in dia.walk_avp_codes(dia.encode(replace(ama, vpn_info=plain)))
             if v == 32473}
    assert not codes & {22, 23, 24}


# ------------------------------------------------------------------ MN client


AGENT = Agent("10.21.0.1", "10.0.0.11", "02:00:00:00:21:01", 1800)
CONFIG = MnConfig(NAI, "10.10.0.100", "10.0.0.1", 300, AAA_KEY, 300, 400, HA_KEY)


def state() -> MobileNodeState:
    s = MobileNodeState(CONFIG, wall_offset=1_700_000_000.0, rand=lambda: 0)
    s.start(0.0)
    return s


def adv() -> mip.AgentAdvertisement:
    return mip.AgentAdvertisement("10.21.0.1", 0, 1800, 1, 1800,
                                  mip.ADV_FLAG_F | mip.ADV_FLAG_T, ["10.0.0.11"])


def rrq_of(actions: list[Any]) -> SendRrq:
    (send,) = [a for a in actions if isinstance(a, SendRrq)]
    return send


def reply(ident: int, code: int = 0, key: bytes | None = HA_KEY) -> tuple[Any, bytes]:
    raw = mip.encode(mip.RegistrationReply(code, 300 if code == 0 else 0, "10.10.0.100",
                                           "10.0.0.1", ident))
    if key is not None:
        raw = mip.append_auth(raw, mip.AuthKind.MN_HA, 400, key)
    return mip.decode(raw), raw


def test_mn_signs_mn_ha_before_mn_aaa() -> None:
    send = rrq_of(state().on_advertisement(1.0, adv(), AGENT.mac))
    msg = mip.decode(send.payload)
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension, mip.MnHaAuth,
                                                 mip.GeneralizedAuth]
    assert msg.extensions[1].spi == 400
    assert mip.verify_auth(send.payload, mip.AuthKind.MN_HA, HA_KEY)
    assert mip.verify_auth(send.payload, mip.AuthKind.MN_AAA, AAA_KEY)
    assert HA_KEY.hex() not in repr(CONFIG)


@pytest.mark.parametrize("code,key,accepted", [
    (0, HA_KEY, True), (0, bytes(16), False), (0, None, False),
    (133, None, False), (67, None, True),
], ids=["good", "forged", "unsigned", "ha-denial-unsigned", "fa-denial"])
def test_mn_checks_mn_ha_on_replies(code: int, key: bytes | None, accepted: bool) -> None:
    s = state()
    send = rrq_of(s.on_advertisement(1.0, adv(), AGENT.mac))
    rrp, raw = reply(send.identification, code, key)
    events = [a.event for a in s.on_reply(1.1, rrp, raw) if isinstance(a, LogEvent)]
    if accepted:
        assert "rrp_bad_auth" not in events and s.pending is None
    else:
        assert events == ["rrp_bad_auth"] and s.pending is not None


def test_mn_without_raw_reply_cannot_verify() -> None:
    s = state()
    send = rrq_of(s.on_advertisement(1.0, adv(), AGENT.mac))
    rrp, _raw = reply(send.identification)
    assert [a.event for a in s.on_reply(1.1, rrp) if isinstance(a, LogEvent)] == [
        "rrp_bad_auth"]


def test_service_update_request() -> None:
    s = state()
    send = rrq_of(s.on_advertisement(1.0, adv(), AGENT.mac))
    s.on_reply(1.1, *reply(send.identification))
    assert s.registered
    actions = s.request_service_update(5.0)
    send = rrq_of(actions)
    msg = mip.decode(send.payload)
    assert msg.vendor_extension(32473, mn_state.CVSE_SERVICE_UPDATE) is not None
    assert [type(e) for e in msg.extensions] == [mip.NaiExtension,
                                                 mip.CriticalVendorExtension,
                                                 mip.MnHaAuth, mip.GeneralizedAuth]
    retry = rrq_of(s.tick(6.1))                       # retransmissions carry it too
    assert mip.decode(retry.payload).vendor_extension(32473, 2) is not None
    s.on_reply(6.2, *reply(retry.identification))
    assert not s.service_update_wanted
    renewal = rrq_of(s.tick(6.2 + 240.0))
    assert mip.decode(renewal.payload).vendor_extension(32473, 2) is None


def test_cli_takes_mn_ha_options(tmp_path: Any, monkeypatch: Any) -> None:
    # the keys come from files (never argv: tests/unit/adapters/test_private_files.py)
    aaa, ha = tmp_path / "aaa.key", tmp_path / "ha.key"
    aaa.write_text(AAA_KEY.hex() + "\n")
    ha.write_text(HA_KEY.hex() + "\n")
    args = mn_client.parse_args(["--nai", NAI, "--home-address", "10.10.0.100",
                                 "--home-agent", "10.0.0.1", "--spi", "300",
                                 "--key-file", str(aaa), "--iface", "mn1-eth0",
                                 "--ha-spi", "400", "--ha-key-file", str(ha)])
    assert args.ha_spi == 400
    assert mn_client.read_key(args.ha_key_file, mn_client.HA_KEY_ENV, "MN-HA key") == HA_KEY
    monkeypatch.delenv(mn_client.HA_KEY_ENV, raising=False)
    assert mn_client.main(["--nai", NAI, "--home-address", "10.10.0.100",
                           "--home-agent", "10.0.0.1", "--spi", "300", "--key-file",
                           str(aaa), "--iface", "lo", "--ha-spi", "400"]) == 2

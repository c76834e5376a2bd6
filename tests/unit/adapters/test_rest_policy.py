"""REST policy (issue 11): the operator's allowance bounds what a user may change in their
own VPN profile; PATCH merges, PUT replaces in full; the lockout is per (NAI, client).

Reproductions of the attack that worked with a user's own credential: removing the rate
limit, taking DSCP 46, adding 0.0.0.0/0 behind a CN gateway, a PUT without ``security``
silently resetting the IKE proposal, and anyone locking a user out from anywhere.
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from controller.adapters import auth as auth_mod
from controller.adapters.rest import create_app
from controller.adapters.store import VpnStore
from controller.allowance import NOTHING, Allowance, allowance_from_profile
from controller.config import ConfigError, parse_topology

from tests.unit.rest_fakes import ALICE, ALICE_SECRET, OPERATOR, ROOT, FakeRuntime, make_auth

OP = {"Authorization": f"Bearer {OPERATOR}"}
USER = {"Authorization": f"Bearer {ALICE_SECRET}"}
URL = f"/v1/profiles/{ALICE}"
ALLOWANCE_URL = f"/v1/users/{ALICE}/allowance"

#: alice as seeded: a rate limit, best effort, one destination behind cngw
SEEDED = {"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
          "security": {"ike": "aes128-sha256-ecp256", "esp": "aes128gcm16"},
          "qos": {"rate_kbps": 5000, "dscp": 0},
          "smooth_handoff": False, "distribution": "registration"}


def topology_data() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())
    data["vpn_profiles"][ALICE] = copy.deepcopy(SEEDED)
    return data


def runtime(tmp: Path, data: dict[str, Any] | None = None) -> FakeRuntime:
    rt = FakeRuntime(tmp)
    rt.topo = parse_topology(topology_data() if data is None else data, "two-domains.yaml")
    rt.store = VpnStore(":memory:")
    rt.store.seed(rt.topo)
    return rt


@pytest.fixture()
def rt(tmp_path: Path) -> FakeRuntime:
    return runtime(tmp_path)


def full(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEEDED)
    body.update(changes)
    return body


def fields_of(r: Any) -> list[str]:
    return [d["field"] for d in r.json()["detail"]]


# ----------------------------------------------------------------- the reproductions


def test_user_cannot_remove_her_rate_limit(rt: FakeRuntime, client: TestClient) -> None:
    r = client.put(URL, headers=USER, json=full(qos={"rate_kbps": 0, "dscp": 0}))
    assert r.status_code == 403, r.text
    assert fields_of(r) == ["body.qos.rate_kbps"]
    r = client.patch(URL, headers=USER, json={"qos": {"rate_kbps": 0}})
    assert r.status_code == 403 and fields_of(r) == ["body.qos.rate_kbps"]
    assert rt.store.profile(ALICE).qos.rate_kbps == 5000      # type: ignore[union-attr]
    assert rt.changed == []


def test_user_cannot_take_dscp_46(rt: FakeRuntime, client: TestClient) -> None:
    r = client.put(URL, headers=USER, json=full(qos={"rate_kbps": 5000, "dscp": 46}))
    assert r.status_code == 403 and fields_of(r) == ["body.qos.dscp"], r.text
    assert rt.store.profile(ALICE).qos.dscp == 0              # type: ignore[union-attr]


@pytest.mark.parametrize("gateway", ["cngw", "cngw2"])
def test_user_cannot_add_the_default_route(rt: FakeRuntime, client: TestClient,
                                           gateway: str) -> None:
    dests = SEEDED["destinations"] + [{"prefix": "0.0.0.0/0", "gateway": gateway}]
    for r in (client.put(URL, headers=USER, json=full(destinations=dests)),
              client.patch(URL, headers=USER, json={"destinations": dests})):
        assert r.status_code == 403, r.text
        assert "body.destinations[1].prefix" in fields_of(r)
        if gateway == "cngw2":               # not one of hers either
            assert "body.destinations[1].gateway" in fields_of(r)
    assert len(rt.store.profile(ALICE).destinations) == 1     # type: ignore[union-attr]


def test_operator_cannot_store_a_prefix_beyond_its_gateway(rt: FakeRuntime,
                                                          client: TestClient) -> None:
    """The home agent refuses VPN information whose correspondent selectors reach
    beyond the networks behind the gateway (issue 11); such a profile could never
    register, so REST refuses it for everyone, naming the field."""
    dests = SEEDED["destinations"] + [{"prefix": "0.0.0.0/0", "gateway": "cngw"}]
    for r in (client.put(URL, headers=OP, json=full(destinations=dests)),
              client.patch(URL, headers=OP, json={"destinations": dests})):
        assert r.status_code == 422, r.text
        assert fields_of(r) == ["body.destinations[1].prefix"]
    assert len(rt.store.profile(ALICE).destinations) == 1     # type: ignore[union-attr]


def test_put_without_security_is_422_not_a_silent_reset(rt: FakeRuntime,
                                                        client: TestClient) -> None:
    client.patch(URL, headers=OP, json={"security": {"ike": "aes256-sha384-ecp384"}})
    body = full()
    del body["security"]
    for who in (USER, OP):
        r = client.put(URL, headers=who, json=body)
        assert r.status_code == 422 and fields_of(r) == ["body.security"], r.text
    assert rt.store.profile(ALICE).security.ike == "aes256-sha384-ecp384"  # type: ignore


def test_lockout_from_one_address_leaves_another_working(rt: FakeRuntime) -> None:
    app = create_app(rt, auth=make_auth())
    attacker = TestClient(app, client=("198.51.100.7", 40000))
    alice = TestClient(app, client=("192.0.2.10", 40001))
    bad = {"Authorization": "Bearer not-alices-secret-xx"}
    codes = [attacker.get(URL, headers=bad).status_code
             for _ in range(auth_mod.MAX_FAILURES + 1)]
    assert codes == [401] * auth_mod.MAX_FAILURES + [429]
    # the attacker stays locked out, even with the right credential ...
    assert attacker.get(URL, headers=USER).status_code == 429
    # ... and alice, from her own address, is not
    assert alice.get(URL, headers=USER).status_code == 200
    assert alice.get(URL, headers=bad).status_code == 401


# ----------------------------------------------------------------- PATCH and PUT


def test_patch_changes_only_the_fields_sent(rt: FakeRuntime, client: TestClient) -> None:
    r = client.patch(URL, headers=USER, json={"qos": {"rate_kbps": 2000}})
    assert r.status_code == 200, r.text
    assert r.json()["qos"] == {"rate_kbps": 2000, "dscp": 0}
    assert r.json()["security"] == SEEDED["security"]
    assert r.json()["destinations"] == SEEDED["destinations"]
    assert rt.changed == [ALICE]
    r = client.patch(URL, headers=OP, json={"security": {"esp": "aes256gcm16"}})
    assert r.status_code == 200
    assert r.json()["security"] == {"ike": "aes128-sha256-ecp256", "esp": "aes256gcm16"}
    assert r.json()["qos"]["rate_kbps"] == 2000
    # an empty patch changes nothing
    before = client.get(URL, headers=OP).json()
    assert client.patch(URL, headers=USER, json={}).json() == before


@pytest.mark.parametrize("body,field", [
    ({"qos": None}, "body.qos"),
    ({"qos": {"dscp": None}}, "body.qos.dscp"),
    ({"security": {"ike": "des-md5-modp768"}}, "body.security.ike"),
    ({"destinations": []}, "body.destinations"),
    ({"colour": 1}, "body.colour"),
    ({"qos": {"rate": 1}}, "body.qos.rate"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "ha"}]},
     "body.destinations[0].gateway"),
])
def test_invalid_patch_names_the_field(client: TestClient, body: Any, field: str) -> None:
    r = client.patch(URL, headers=OP, json=body)
    assert r.status_code == 422, r.text
    assert field in fields_of(r)


def test_patch_needs_a_profile(rt: FakeRuntime, client: TestClient) -> None:
    from controller.core.aaa_home import UserRecord
    rt.store.put_user(UserRecord("dave@home.example", "10.10.0.104", "ha", 304, b"d" * 16))
    r = client.patch("/v1/profiles/dave@home.example", headers=OP, json={"qos": {"dscp": 1}})
    assert r.status_code == 404 and "PUT" in r.json()["detail"]
    assert client.patch("/v1/profiles/nobody@home.example", headers=OP,
                        json={}).status_code == 404


@pytest.mark.parametrize("missing,field", [
    (("destinations",), "body.destinations"), (("security",), "body.security"),
    (("qos",), "body.qos"), (("smooth_handoff",), "body.smooth_handoff"),
    (("distribution",), "body.distribution"), (("security", "ike"), "body.security.ike"),
    (("qos", "rate_kbps"), "body.qos.rate_kbps"), (("qos", "dscp"), "body.qos.dscp"),
])
def test_put_is_a_full_replace(client: TestClient, missing: tuple[str, ...],
                               field: str) -> None:
    body = full()
    parent = body
    for key in missing[:-1]:
        parent = parent[key]
    del parent[missing[-1]]
    r = client.put(URL, headers=OP, json=body)
    assert r.status_code == 422 and fields_of(r) == [field], r.text
    assert client.put(URL, headers=OP, json=full()).status_code == 200


# ----------------------------------------------------------------- the allowance


WIDE = {"prefixes": ["10.30.0.0/16", "10.32.0.0/24"], "gateways": ["cngw", "cngw2"],
        "max_rate_kbps": 10000, "dscp": [0, 46],
        "ike": ["aes128-sha256-ecp256", "aes256-sha384-ecp384"],
        "esp": ["aes128gcm16", "aes256gcm16"], "smooth_handoff": True,
        "distribution": False, "seamless_handover": False}


def test_default_allowance_is_the_seeded_profile(client: TestClient) -> None:
    r = client.get(ALLOWANCE_URL, headers=OP)
    assert r.status_code == 200, r.text
    assert r.json() == {"prefixes": ["10.30.0.0/24"], "gateways": ["cngw"],
                        "max_rate_kbps": 5000, "dscp": [0],
                        "ike": ["aes128-sha256-ecp256"], "esp": ["aes128gcm16"],
                        "smooth_handoff": False, "distribution": False,
                        "seamless_handover": False}


def test_what_the_default_still_allows(client: TestClient) -> None:
    """Nothing beyond the seeded profile: a narrower prefix, a lower rate, fewer
    destinations, the same values again."""
    for patch in ({"destinations": [{"prefix": "10.30.0.128/25", "gateway": "cngw"}]},
                  {"qos": {"rate_kbps": 1000}}, {"qos": {"rate_kbps": 5000}},
                  {"security": SEEDED["security"]}, {"smooth_handoff": False}):
        r = client.patch(URL, headers=USER, json=patch)
        assert r.status_code == 200, (patch, r.text)


@pytest.mark.parametrize("patch,field", [
    ({"destinations": [{"prefix": "10.31.0.0/24", "gateway": "cngw"}]},
     "body.destinations[0].prefix"),
    ({"destinations": [{"prefix": "10.0.0.0/8", "gateway": "cngw"}]},
     "body.destinations[0].prefix"),
    ({"destinations": [{"prefix": "10.30.1.0/24", "gateway": "cngw"},
                       {"prefix": "10.32.0.0/24", "gateway": "cngw"},
                       {"prefix": "10.30.2.0/24", "gateway": "cngw2"}]},
     "body.destinations[2].gateway"),
    ({"qos": {"rate_kbps": 10001}}, "body.qos.rate_kbps"),
    ({"qos": {"rate_kbps": 0}}, "body.qos.rate_kbps"),
    ({"qos": {"dscp": 10}}, "body.qos.dscp"),
    ({"security": {"ike": "aes128-sha256-x25519"}}, "body.security.ike"),
    ({"security": {"esp": "aes256-sha384"}}, "body.security.esp"),
    ({"distribution": "on_demand"}, "body.distribution"),
])
def test_allowance_is_enforced_per_field(client: TestClient, patch: Any,
                                         field: str) -> None:
    wide = {**WIDE, "gateways": ["cngw"]} if "gateway" in field else WIDE
    assert client.put(ALLOWANCE_URL, headers=OP, json=wide).status_code == 200
    r = client.patch(URL, headers=USER, json=patch)
    assert r.status_code == 403, r.text
    assert fields_of(r) == [field]
    assert r.json()["detail"][0]["message"]
    # the operator is not bound by it (only by the topology: a prefix must lie behind
    # its gateway, for anyone)
    r = client.patch(URL, headers=OP, json=patch)
    assert r.status_code == 200 or (
        r.status_code == 422 and "within the networks behind" in r.text), r.text


def test_inside_the_allowance_the_user_decides(rt: FakeRuntime, client: TestClient) -> None:
    assert client.put(ALLOWANCE_URL, headers=OP, json=WIDE).status_code == 200
    body = {"destinations": [{"prefix": "10.30.0.128/25", "gateway": "cngw"},
                             {"prefix": "10.32.0.0/24", "gateway": "cngw2"}],
            "security": {"ike": "aes256-sha384-ecp384", "esp": "aes256gcm16"},
            "qos": {"rate_kbps": 10000, "dscp": 46},
            "smooth_handoff": True, "distribution": "registration"}
    r = client.put(URL, headers=USER, json=body)
    assert r.status_code == 200, r.text
    prof = rt.store.profile(ALICE)
    assert prof is not None and prof.qos.dscp == 46 and prof.smooth_handoff is True
    assert rt.changed == [ALICE]


def test_unlimited_allowance_allows_rate_zero(client: TestClient) -> None:
    assert client.put(ALLOWANCE_URL, headers=OP,
                      json={**WIDE, "max_rate_kbps": 0}).status_code == 200
    assert client.patch(URL, headers=USER, json={"qos": {"rate_kbps": 0}}).status_code == 200
    assert client.patch(URL, headers=USER,
                        json={"qos": {"rate_kbps": 10_000_000}}).status_code == 200


def test_what_the_operator_gave_the_user_keeps(client: TestClient) -> None:
    """Values the operator set outside the allowance stay when the user changes
    something else (a user loses nothing by editing), but cannot be re-taken later."""
    assert client.patch(URL, headers=OP, json={
        "qos": {"dscp": 18},
        "destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"},
                         {"prefix": "10.32.0.0/25", "gateway": "cngw2"}]}).status_code == 200
    r = client.patch(URL, headers=USER, json={"qos": {"rate_kbps": 3000}})
    assert r.status_code == 200 and r.json()["qos"] == {"rate_kbps": 3000, "dscp": 18}
    r = client.put(URL, headers=USER, json={k: v for k, v in r.json().items() if k != "nai"})
    assert r.status_code == 200, r.text
    assert client.patch(URL, headers=USER, json={"qos": {"dscp": 0}}).status_code == 200
    r = client.patch(URL, headers=USER, json={"qos": {"dscp": 18}})
    assert r.status_code == 403 and fields_of(r) == ["body.qos.dscp"]


def test_user_without_stored_allowance_may_change_nothing(rt: FakeRuntime,
                                                          client: TestClient) -> None:
    from controller.core.aaa_home import UserRecord
    bob = "dave@home.example"
    rt.store.put_user(UserRecord(bob, "10.10.0.104", "ha", 304, b"d" * 16))
    secret = "dave-secret-0123456789"
    assert client.put(f"/v1/users/{bob}/credential", headers=OP,
                      json={"secret": secret}).status_code == 204
    dave = {"Authorization": f"Bearer {secret}"}
    assert client.put(f"/v1/profiles/{bob}", headers=OP, json=full()).status_code == 200
    r = client.patch(f"/v1/profiles/{bob}", headers=dave, json={"qos": {"rate_kbps": 10}})
    assert r.status_code == 403 and fields_of(r) == ["body.qos.rate_kbps"]
    assert client.get(f"/v1/users/{bob}/allowance", headers=OP).json() == {
        "prefixes": [], "gateways": [], "max_rate_kbps": None, "dscp": [], "ike": [],
        "esp": [], "smooth_handoff": False, "distribution": False,
        "seamless_handover": False}


def test_allowance_routes_are_for_the_operator_only(client: TestClient) -> None:
    for headers in ({}, USER, {"Authorization": "Bearer wrong-token-xxxxxxxx"}):
        assert client.get(ALLOWANCE_URL, headers=headers).status_code == 401
        assert client.put(ALLOWANCE_URL, headers=headers, json=WIDE).status_code == 401
    assert client.get(ALLOWANCE_URL, headers=OP).json()["dscp"] == [0]   # unchanged
    assert client.put(ALLOWANCE_URL, headers=OP, json=WIDE).status_code == 200
    got = client.get(ALLOWANCE_URL, headers=OP).json()
    assert got == {**WIDE, "prefixes": sorted(WIDE["prefixes"])}
    assert client.get("/v1/users/nobody@home.example/allowance",
                      headers=OP).status_code == 404
    assert client.put("/v1/users/nobody@home.example/allowance", headers=OP,
                      json=WIDE).status_code == 404


@pytest.mark.parametrize("change,field", [
    ({"gateways": ["ha"]}, "body.gateways[0]"),
    ({"gateways": ["nosuch"]}, "body.gateways[0]"),
    ({"prefixes": ["10.30.0.1/16"]}, "body.prefixes[0]"),
    ({"dscp": [64]}, "body.dscp[0]"),
    ({"ike": ["des-md5-modp768"]}, "body.ike[0]"),
    ({"max_rate_kbps": -1}, "body.max_rate_kbps"),
    ({"smooth_handoff": "yes"}, "body.smooth_handoff"),
    ({"esp": None}, "body.esp"),
])
def test_invalid_allowance_names_the_field(client: TestClient, change: Any,
                                           field: str) -> None:
    r = client.put(ALLOWANCE_URL, headers=OP, json={**WIDE, **change})
    assert r.status_code == 422, r.text
    assert field in fields_of(r)
    body = dict(WIDE)
    del body["dscp"]
    r = client.put(ALLOWANCE_URL, headers=OP, json=body)
    assert r.status_code == 422 and fields_of(r) == ["body.dscp"]


# ----------------------------------------------------------------- from the YAML


def test_allowance_seeded_from_the_topology(tmp_path: Path) -> None:
    data = topology_data()
    data["user_allowance"] = {"dscp": [0, 10, 18], "max_rate_kbps": 20000}
    data["vpn_profiles"][ALICE]["allowance"] = {
        "prefixes": ["10.30.0.0/16"], "gateways": ["cngw", "cngw2"], "dscp": [0, 46],
        "smooth_handoff": True}
    topo = parse_topology(data, "t.yaml")
    store = VpnStore(":memory:")
    store.seed(topo)
    # alice: her own keys win, then the topology's default, then her seeded profile
    assert store.allowance(ALICE) == Allowance(
        prefixes=("10.30.0.0/16",), gateways=("cngw", "cngw2"), max_rate_kbps=20000,
        dscp=(0, 46), ike=("aes128-sha256-ecp256",), esp=("aes128gcm16",),
        smooth_handoff=True, distribution=False)
    # bob: the topology's default over his profile (rate 0 there: unlimited already)
    bob = store.allowance("bob@home.example")
    assert bob is not None and bob.dscp == (0, 10, 18) and bob.max_rate_kbps == 20000
    assert bob.prefixes == ("10.30.0.0/24",) and bob.ike == ("aes256-sha256-ecp256",)


@pytest.mark.parametrize("where,value,key,reason", [
    ("user", {"prefixes": ["10.30.0.1/16"]}, "allowance.prefixes[0]", "IPv4 network"),
    ("user", {"gateways": ["ha"]}, "allowance.gateways[0]", "not a cn_gateway"),
    ("user", {"gateways": ["nosuch"]}, "allowance.gateways[0]", "not defined"),
    ("user", {"dscp": [64]}, "allowance.dscp[0]", "out of range"),
    ("user", {"dscp": 46}, "allowance.dscp", "expected a list"),
    ("user", {"max_rate_kbps": "fast"}, "allowance.max_rate_kbps", "integer"),
    ("user", {"smooth_handoff": "yes"}, "allowance.smooth_handoff", "true or false"),
    ("user", {"colour": 1}, "allowance.colour", "unknown key"),
    ("top", {"ike": [""]}, "user_allowance.ike[0]", "non-empty string"),
    ("top", [1], "user_allowance", "expected a mapping"),
])
def test_allowance_config_errors_name_file_and_key(where: str, value: Any, key: str,
                                                   reason: str) -> None:
    data = topology_data()
    if where == "top":
        data["user_allowance"] = value
    else:
        data["vpn_profiles"][ALICE]["allowance"] = value
        key = f"vpn_profiles.{ALICE}.{key}"
    with pytest.raises(ConfigError) as exc:
        parse_topology(data, "t.yaml")
    assert str(exc.value).startswith(f"t.yaml: {key}: "), str(exc.value)
    assert reason in str(exc.value)


def test_existing_db_file_is_migrated(tmp_path: Path) -> None:
    """A VPN DB from before the allowance: the table is added, and the default comes
    from the topology's profile, not from what the user had already changed."""
    path = tmp_path / "vpn.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE users (nai TEXT PRIMARY KEY, home_address TEXT NOT NULL,
            home_agent TEXT NOT NULL, mn_aaa_spi INTEGER NOT NULL, mn_aaa_key BLOB NOT NULL,
            mn_ha_spi INTEGER NOT NULL DEFAULT 0, mn_ha_key BLOB NOT NULL DEFAULT x'');
        CREATE TABLE profiles (nai TEXT PRIMARY KEY REFERENCES users(nai),
            destinations TEXT NOT NULL, ike TEXT NOT NULL, esp TEXT NOT NULL,
            rate_kbps INTEGER NOT NULL, dscp INTEGER NOT NULL, updated REAL NOT NULL DEFAULT 0);
        INSERT INTO profiles VALUES ('alice@home.example',
            '[{"prefix": "0.0.0.0/0", "gateway": "cngw"}]', 'aes128-sha256-ecp256',
            'aes128gcm16', 0, 46, 1.0);
    """)
    old.commit()
    old.close()
    store = VpnStore(path)
    assert store.allowance(ALICE) is None
    store.seed(parse_topology(topology_data(), "t.yaml"))
    got = store.allowance(ALICE)
    assert got == allowance_from_profile(store_profile_from_yaml())
    assert got is not None and got.prefixes == ("10.30.0.0/24",) and got.dscp == (0,)
    assert store.profile(ALICE).qos.dscp == 46   # type: ignore[union-attr]  # kept
    # the operator's change survives a restart and a re-seed
    store.put_allowance(ALICE, Allowance(dscp=(0, 46)))
    store.close()
    again = VpnStore(path)
    again.seed(parse_topology(topology_data(), "t.yaml"))
    assert again.allowance(ALICE) == Allowance(dscp=(0, 46))


def store_profile_from_yaml() -> Any:
    from controller.adapters.store import profile_from_conf
    topo = parse_topology(topology_data(), "t.yaml")
    return profile_from_conf(ALICE, topo.vpn_profiles[ALICE])


def test_nothing_allows_nothing() -> None:
    assert allowance_from_profile(None) == NOTHING


def test_allowance_keys_are_the_fields_of_both_forms() -> None:
    """The YAML form (config) and the policy's ``Allowance`` name the same keys, in the
    same order: ``resolve_allowance`` maps one onto the other key by key."""
    from dataclasses import fields

    from controller.config.allowance import ALLOWANCE_KEYS
    from controller.config.schema import AllowanceConf
    assert tuple(f.name for f in fields(Allowance)) == ALLOWANCE_KEYS == tuple(
        f.name for f in fields(AllowanceConf))


def test_scenario_profiles_are_whole() -> None:
    """Scenarios PUT their ``set_profile`` body (claim 24, scenarios/customise.yaml): each
    must be a whole profile, or the scenario would stop at a 422."""
    from controller.adapters.rest import ProfileIn
    found = 0
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        for step in yaml.safe_load(path.read_text()).get("timeline", []):
            if isinstance(step, dict) and "set_profile" in step:
                ProfileIn.model_validate(step["set_profile"]["profile"])
                found += 1
    assert found >= 1


def test_seamless_handover_is_an_option_like_smooth_handoff(tmp_path: Path) -> None:
    """Issue 14: seeded from the topology, kept by a PUT that does not name it, toggled
    by the user only with the allowance's leave; off by default."""
    data = topology_data()
    data["vpn_profiles"][ALICE]["seamless_handover"] = True
    rt = runtime(tmp_path, data)
    client = TestClient(create_app(rt, auth=make_auth()), raise_server_exceptions=False)
    prof = rt.store.profile(ALICE)
    assert prof is not None and prof.seamless_handover is True
    assert client.get(URL, headers=USER).json()["seamless_handover"] is True
    # a whole profile without the field keeps it (the field is optional)
    assert client.put(URL, headers=USER, json=full()).status_code == 200
    assert rt.store.profile(ALICE).seamless_handover is True   # type: ignore[union-attr]
    # switching it off needs the allowance
    r = client.patch(URL, headers=USER, json={"seamless_handover": False})
    assert r.status_code == 403 and fields_of(r) == ["body.seamless_handover"]
    assert client.put(ALLOWANCE_URL, headers=OP,
                      json={**WIDE, "seamless_handover": True}).status_code == 200
    assert client.patch(URL, headers=USER, json={"seamless_handover": False}).status_code == 200
    assert rt.store.profile(ALICE).seamless_handover is False  # type: ignore[union-attr]
    # default off: alice as seeded elsewhere
    seeded = runtime(tmp_path).store.profile(ALICE)
    assert seeded is not None and seeded.seamless_handover is False

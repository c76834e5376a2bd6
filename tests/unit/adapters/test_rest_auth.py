"""REST API: authentication, authorisation (claim 24), validation, hostile input, secrets."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controller.adapters import auth as auth_mod
from controller.adapters.auth import Auth, UserCredentials, load_operator_token
from controller.adapters.rest import create_app

from tests.unit.rest_fakes import ALICE, ALICE_SECRET, OPERATOR, FakeRuntime, make_auth, secret_strings

OP = {"Authorization": f"Bearer {OPERATOR}"}
USER = {"Authorization": f"Bearer {ALICE_SECRET}"}
OPERATOR_ROUTES = ["/v1/bindings", "/v1/tunnels", "/v1/topology", "/v1/handovers",
                   "/v1/gateways",
                   "/v1/counters"]
GOOD_PROFILE: dict[str, Any] = {
    "destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
    "security": {"ike": "aes256-sha384-ecp384", "esp": "aes256gcm16"},
    "qos": {"rate_kbps": 5000, "dscp": 46},
    "smooth_handoff": True, "distribution": "on_demand"}
#: an allowance that covers GOOD_PROFILE
ALLOW_GOOD: dict[str, Any] = {
    "prefixes": ["10.30.0.0/24"], "gateways": ["cngw"], "max_rate_kbps": 5000,
    "dscp": [0, 46], "ike": ["aes256-sha384-ecp384"], "esp": ["aes256gcm16"],
    "smooth_handoff": True, "distribution": True}


@pytest.fixture()
def rt(tmp_path: Path) -> FakeRuntime:
    return FakeRuntime(tmp_path)


def _bob(rt: FakeRuntime, client: TestClient) -> dict[str, str]:
    """A second user, bob, with a credential of his own."""
    from controller.core.aaa_home import UserRecord
    rt.store.put_user(UserRecord("bob@home.example", "10.10.0.101", "ha", 301, b"b" * 16))
    secret = "bob-secret-0123456789"
    r = client.put("/v1/users/bob@home.example/credential", headers=OP,
                   json={"secret": secret})
    assert r.status_code == 204, r.text
    return {"Authorization": f"Bearer {secret}"}


# ----------------------------------------------------------------- operator token


def test_operator_token_file_created_0600_and_reused(tmp_path: Path) -> None:
    token, src = load_operator_token(tmp_path, env={})
    path = tmp_path / "operator.token"
    assert src == str(path) and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_operator_token(tmp_path, env={}) == (token, src)
    os.chmod(path, 0o644)                       # too open: narrowed, same token
    assert load_operator_token(tmp_path, env={})[0] == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_operator_token_from_environment(tmp_path: Path) -> None:
    tok, src = load_operator_token(tmp_path, env={"MIPVPN_OPERATOR_TOKEN": "e" * 20})
    assert tok == "e" * 20 and src == "$MIPVPN_OPERATOR_TOKEN"
    assert not (tmp_path / "operator.token").exists()
    with pytest.raises(auth_mod.AuthConfigError):
        load_operator_token(tmp_path, env={"MIPVPN_OPERATOR_TOKEN": "short"})


def test_default_auth_from_run_dir_and_log_names_only_the_path(
        rt: FakeRuntime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.delenv("MIPVPN_OPERATOR_TOKEN", raising=False)
    rt.store.path = str(tmp_path / "vpn.db")
    app = create_app(rt)                        # no auth given: RUN_DIR/operator.token
    token = (tmp_path / "operator.token").read_text().strip()
    c = TestClient(app)
    assert c.get("/v1/bindings").status_code == 401
    assert c.get("/v1/bindings", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert app.state.auth.token_source == str(tmp_path / "operator.token")
    assert token not in caplog.text


# ----------------------------------------------------------------- who may do what


@pytest.mark.parametrize("path", OPERATOR_ROUTES)
def test_operator_routes_need_the_operator_token(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
                      ).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {OPERATOR}"}).status_code == 401
    assert client.get(path, headers=USER).status_code == 401     # a user is not the operator
    assert client.get(path, headers=OP).status_code == 200


def test_user_reads_and_changes_only_their_own_profile(rt: FakeRuntime,
                                                       client: TestClient) -> None:
    bob = _bob(rt, client)
    r = client.get(f"/v1/profiles/{ALICE}", headers=USER)
    assert r.status_code == 200 and r.json()["destinations"][0]["gateway"] == "cngw"
    assert r.json()["smooth_handoff"] is False and r.json()["distribution"] == "registration"
    # alice's credential does not open bob's profile, and bob's not alice's
    assert client.get("/v1/profiles/bob@home.example", headers=USER).status_code == 401
    assert client.put(f"/v1/profiles/{ALICE}", headers=bob, json=GOOD_PROFILE
                      ).status_code == 401
    assert client.get(f"/v1/profiles/{ALICE}").status_code == 401
    # alice changes her own (claim 24), within what the operator allows her (issue 11)
    assert client.put(f"/v1/users/{ALICE}/allowance", headers=OP, json=ALLOW_GOOD
                      ).status_code == 200
    r = client.put(f"/v1/profiles/{ALICE}", headers=USER, json=GOOD_PROFILE)
    assert r.status_code == 200, r.text
    got = client.get(f"/v1/profiles/{ALICE}", headers=USER).json()
    assert got["security"] == GOOD_PROFILE["security"] and got["qos"] == GOOD_PROFILE["qos"]
    assert got["smooth_handoff"] is True and got["distribution"] == "on_demand"
    prof = rt.store.profile(ALICE)
    assert prof is not None and prof.qos.dscp == 46 and prof.security.esp == "aes256gcm16"
    assert rt.changed == [ALICE]
    # the operator may change anyone's
    assert client.put("/v1/profiles/bob@home.example", headers=OP,
                      json=GOOD_PROFILE).status_code == 200


def test_user_rotates_own_credential(rt: FakeRuntime, client: TestClient) -> None:
    new = "alice-new-secret-0000"
    assert client.put(f"/v1/users/{ALICE}/credential", headers=USER,
                      json={"secret": new}).status_code == 204
    assert client.get(f"/v1/profiles/{ALICE}", headers=USER).status_code == 401
    assert client.get(f"/v1/profiles/{ALICE}",
                      headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_unknown_user_and_profile(client: TestClient) -> None:
    assert client.get("/v1/profiles/nobody@home.example", headers=OP).status_code == 404
    assert client.put("/v1/profiles/nobody@home.example", headers=OP,
                      json=GOOD_PROFILE).status_code == 404
    # a guessed credential for an unknown user is a plain 401 (no user enumeration)
    assert client.get("/v1/profiles/nobody@home.example", headers=USER).status_code == 401


def test_failed_attempts_are_throttled(client: TestClient) -> None:
    bad = {"Authorization": "Bearer not-alices-secret-xx"}
    codes = [client.get(f"/v1/profiles/{ALICE}", headers=bad).status_code
             for _ in range(auth_mod.MAX_FAILURES + 2)]
    assert codes[:auth_mod.MAX_FAILURES] == [401] * auth_mod.MAX_FAILURES
    assert codes[-1] == 429
    assert client.get(f"/v1/profiles/{ALICE}", headers=OP).status_code == 200


def test_credentials_are_salted_hashes(tmp_path: Path) -> None:
    creds = UserCredentials(tmp_path / "vpn.db", n=1 << 10)
    creds.set("a@x", "same-secret-0123456")
    creds.set("b@x", "same-secret-0123456")
    assert stat.S_IMODE((tmp_path / "vpn.db").stat().st_mode) == 0o600
    rows = creds._db.execute("SELECT salt, hash FROM user_credentials").fetchall()
    assert rows[0][0] != rows[1][0] and rows[0][1] != rows[1][1]
    assert b"same-secret" not in (tmp_path / "vpn.db").read_bytes()
    assert creds.verify("a@x", "same-secret-0123456")
    assert not creds.verify("a@x", "same-secret-0123457")
    assert not creds.verify("nobody@x", "same-secret-0123456")
    with pytest.raises(ValueError):
        creds.set("a@x", "short")


def test_auth_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth_mod.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_mod.hmac, "compare_digest", spy)
    a = Auth(OPERATOR)
    assert a.is_operator(OPERATOR) and not a.is_operator("x" * 40)
    assert not a.is_operator("é" * 20)          # non-ASCII: no TypeError
    assert len(calls) == 3


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize("body,field", [
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}], "colour": 1},
     "body.colour"),
    ({"destinations": [{"prefix": "10.30.0.1/24", "gateway": "cngw"}]},
     "body.destinations[0].prefix"),
    ({"destinations": [{"prefix": "not-a-net", "gateway": "cngw"}]},
     "body.destinations[0].prefix"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "ha"}]},
     "body.destinations[0].gateway"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "nosuch"}]},
     "body.destinations[0].gateway"),
    ({"destinations": []}, "body.destinations"),
    ({"destinations": None}, "body.destinations"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "security": {"ike": "des-md5-modp768"}}, "body.security.ike"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "security": {"esp": "null"}}, "body.security.esp"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "qos": {"dscp": 64}}, "body.qos.dscp"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "qos": {"rate_kbps": 10_000_001}}, "body.qos.rate_kbps"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "qos": {"dscp": "46"}}, "body.qos.dscp"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "smooth_handoff": "yes"}, "body.smooth_handoff"),
    ({"destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
      "distribution": "sometimes"}, "body.distribution"),
    ({"destinations": "10.30.0.0/24"}, "body.destinations"),
])
def test_invalid_profile_names_the_field(client: TestClient, body: Any, field: str) -> None:
    # as a PATCH (only these fields) and as a PUT (these over an otherwise whole profile)
    for method, sent in (("PATCH", body), ("PUT", {**GOOD_PROFILE, **body})):
        r = client.request(method, f"/v1/profiles/{ALICE}", headers=OP, json=sent)
        assert r.status_code == 422, (method, r.text)
        fields = [d["field"] for d in r.json()["detail"]]
        assert field in fields, (method, fields)
        assert all("input" not in d for d in r.json()["detail"])


def test_invalid_json_and_huge_bodies(client: TestClient) -> None:
    url = f"/v1/profiles/{ALICE}"
    r = client.put(url, headers={**OP, "content-type": "application/json"}, content=b"{nope")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body"
    r = client.put(url, headers={**OP, "content-type": "application/json"}, content=b"[1, 2]")
    assert r.status_code == 422
    big = b'{"destinations": [' + b'{"prefix": "10.0.0.0/8", "gateway": "cngw"},' * 3000 + b"]}"
    assert len(big) > auth_mod.MAX_BODY
    assert client.put(url, headers={**OP, "content-type": "application/json"},
                      content=big).status_code == 413

    def chunks() -> Any:                       # chunked, no Content-Length
        for _ in range(100):
            yield b" " * 1024
    assert client.put(url, headers={**OP, "content-type": "application/json"},
                      content=chunks()).status_code == 413
    # the limit holds before authentication too
    assert client.put(url, content=big).status_code == 413


def test_credential_body_is_validated_and_never_echoed(client: TestClient) -> None:
    r = client.put(f"/v1/users/{ALICE}/credential", headers=OP, json={"secret": "tiny"})
    assert r.status_code == 422 and "tiny" not in r.text
    r = client.put(f"/v1/users/{ALICE}/credential", headers=OP,
                   json={"secret": 12345678901234567890})
    assert r.status_code == 422 and "12345678901234567890" not in r.text


GARBAGE_BODIES = [b"", b"\x00\xff\xfe", b"null", b"[]", b"{}", b'{"a":', b"1e999999",
                  b'"' + b"\\u0000" * 50 + b'"', b"{" * 5000 + b"}" * 5000,
                  b'{"destinations": [{"prefix": null, "gateway": []}]}',
                  b'{"destinations": [{"prefix": "10.0.0.0/33", "gateway": "cngw"}]}',
                  b'{"destinations": [{"prefix": "::/0", "gateway": "cngw"}]}',
                  b'{"__proto__": {}, "destinations": 1}']
GARBAGE_NAIS = ["alice@home.example", "x", "%00", "a" * 300 + "@b", "..%2f..%2fetc",
                "al ice@home", "é@ü", "@", "a@b@c"]
GARBAGE_HEADERS = [{}, OP, USER, {"Authorization": "Bearer"}, {"Authorization": "Bearer "},
                   {"Authorization": "Bearer " + "A" * 10000},
                   {"Authorization": b"Bearer \x7f\x80\xff"}, {"Authorization": "garbage"},
                   {"Content-Length": "-1"}, {"Content-Length": "abc"}]


def test_no_route_answers_500_to_garbage(client: TestClient, rt: FakeRuntime) -> None:
    import itertools
    import random
    from fastapi.routing import APIRoute
    app: Any = client.app
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/v1/")]
    assert len(routes) >= 8
    combos = [(route.path, method, nai, headers, body)
              for route in routes
              for method in sorted(route.methods | {"POST", "DELETE", "PATCH"})
              for nai, headers, body in itertools.product(GARBAGE_NAIS, GARBAGE_HEADERS,
                                                          GARBAGE_BODIES)]
    sample = random.Random(5).sample(combos, 800)
    # and every route/method once with the operator token and each body
    sample += [(path, method, ALICE, OP, body) for path, method, _n, _h, body in combos
               if _n == ALICE and _h is OP]
    for path, method, nai, headers, body in sample:
        h = {"content-type": "application/json", "accept": "application/json", **headers}
        r = client.request(method, path.replace("{nai}", nai), headers=h, content=body)
        assert r.status_code < 500, (method, path, nai, headers, body, r.text)


def test_generic_500_hides_details(rt: FakeRuntime, caplog: pytest.LogCaptureFixture) -> None:
    class Boom(Exception):
        pass

    async def broken() -> dict[str, Any]:
        raise Boom(f"secret {OPERATOR} inside")
    rt.gateway_tunnels = broken      # type: ignore[method-assign]
    c = TestClient(create_app(rt, auth=make_auth()), raise_server_exceptions=False)
    with caplog.at_level(logging.DEBUG):
        r = c.get("/v1/tunnels", headers=OP)
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    # the type and the traceback's source lines are logged, never the message
    assert "Boom" in caplog.text and "broken" in caplog.text
    assert OPERATOR not in caplog.text and OPERATOR not in r.text


# ----------------------------------------------------------------- secrets


def test_no_secret_in_any_response_or_log(rt: FakeRuntime, client: TestClient,
                                          caplog: pytest.LogCaptureFixture) -> None:
    secrets_ = secret_strings(rt)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for path in OPERATOR_ROUTES + [f"/v1/profiles/{ALICE}", "/openapi.json", "/docs"]:
            for headers in (OP, USER, {}):
                r = client.get(path, headers=headers)
                assert r.status_code < 500
                texts.append(r.text + str(dict(r.headers)))
        for body in (GOOD_PROFILE, {"bad": 1}):
            r = client.put(f"/v1/profiles/{ALICE}", headers=USER, json=body)
            texts.append(r.text + str(dict(r.headers)))
        r = client.put(f"/v1/users/{ALICE}/credential", headers=OP, json={"secret": 3})
        texts.append(r.text)
        r = client.put(f"/v1/users/{ALICE}/credential", headers=OP,
                       json={"secret": ALICE_SECRET})
        assert r.status_code == 204
        texts.append(r.text + str(dict(r.headers)))
    # the bindings really were served (so the scan covered VPN info holding the PSK)
    assert "alice/ha-fa1" in "".join(texts)
    texts.append(caplog.text)
    for what, value in secrets_.items():
        for text in texts:
            assert value not in text, f"{what} leaked"

"""Issue 11, point 4: a peer-chosen string is text, never markup or a forged log line.

- a bad NAI (RFC 7542) in the MN-NAI extension is a poorly formed request (70 at the FA,
  134 at the HA) and a bad Diameter User-Name in an AMR/HAR is 5004 with Failed-AVP:
  decoders refuse them, so they never reach a handover record, /v1/handovers or the web
  view (the attack: markup NAI, garbage authenticator, denied 67, stored, rendered);
- the topology loader and the REST ``{nai}`` path check the same grammar.

(Log lines: tests/unit/test_log_text.py; the page: tests/unit/adapters/test_webview_browser.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from controller.proto import diameter as d
from controller.proto import mip

from tests.unit.proto.test_diameter_codec import AMR, HAR

XSS = "<img src=x onerror=alert(document.title)>@home.example"
FORGED = "alice\r\nmipvpn.handover INFO registration of root@home.example: accepted"
BAD_NAIS = [XSS, FORGED, "alice@home..example", "a" * 249 + "@b.cd", "al ice@home.example"]


# ------------------------------------------------------------------ Mobile IPv4 decode


def _rrq(nai: str, msg_type: type = mip.RegistrationRequest) -> bytes:
    if msg_type is mip.RegistrationReply:
        msg: Any = mip.RegistrationReply(67, 0, "10.10.0.100", "10.1.0.1", 1,
                                         [mip.NaiExtension(nai)])
    else:
        msg = mip.RegistrationRequest(mip.FLAG_T, 300, "10.10.0.100", "10.1.0.1",
                                      "10.2.0.1", 1, [mip.NaiExtension(nai)])
    return mip.append_auth(mip.encode(msg), mip.AuthKind.MN_AAA, 256, b"\0" * 16)


@pytest.mark.parametrize("nai", BAD_NAIS, ids=["markup", "crlf", "empty-label", "254-octets",
                                                "space"])
def test_a_bad_nai_is_a_poorly_formed_request(nai: str) -> None:
    with pytest.raises(mip.MipDecodeError) as exc:
        mip.decode(_rrq(nai))
    assert (exc.value.fa_code, exc.value.ha_code) == (mip.CODE_FA_POORLY_FORMED_REQUEST,
                                                      mip.CODE_HA_POORLY_FORMED_REQUEST)
    assert (exc.value.fa_code, exc.value.ha_code) == (70, 134)
    assert "<" not in str(exc.value) and "\n" not in str(exc.value)
    assert "MN-NAI" in str(exc.value)


def test_a_bad_nai_in_a_reply_is_a_poorly_formed_reply() -> None:
    with pytest.raises(mip.MipDecodeError) as exc:
        mip.decode(_rrq(XSS, mip.RegistrationReply))
    assert exc.value.fa_code == mip.CODE_FA_POORLY_FORMED_REPLY


def test_a_good_nai_still_decodes() -> None:
    for nai in ("alice@home.example", "bob.smith@a.b-c.example", "müller@bücher.example"):
        assert mip.decode(_rrq(nai)).nai == nai   # type: ignore[union-attr]


# ------------------------------------------------------------------ Diameter decode


@pytest.mark.parametrize("request_msg", [AMR, HAR], ids=["AMR", "HAR"])
@pytest.mark.parametrize("nai", BAD_NAIS[:3], ids=["markup", "crlf", "empty-label"])
def test_a_bad_user_name_is_5004_with_failed_avp(request_msg: Any, nai: str) -> None:
    raw = d.encode(replace(request_msg, user_name=nai))
    with pytest.raises(d.DiameterDecodeError) as exc:
        d.decode(raw)
    err = exc.value
    assert err.result_code == d.INVALID_AVP_VALUE == 5004
    assert err.failed_avp_code == d.AVP_USER_NAME
    (failed,) = d.parse_avps(err.failed_avp)
    assert failed.code == d.AVP_USER_NAME and failed.data == nai.encode()
    assert "<" not in str(err) and "\n" not in str(err)
    # what the node answers: 5004, the offending User-Name as Failed-AVP
    assert err.header is not None
    answer = d.decode(d.encode_error_answer(err.header, err.result_code, "aaah.home.example",
                                            "home.example", session_id=err.session_id,
                                            error_message=err.message,
                                            failed_avp=err.failed_avp))
    assert answer.result_code == 5004  # type: ignore[union-attr]


def test_answers_keep_their_user_name_unchecked() -> None:
    """Only requests carry an NAI somebody acts on; an answer's User-Name is ignored
    (``user_name`` of AMA/HAA is not read by any role)."""
    from tests.unit.proto.test_diameter_codec import AMA
    ama = d.decode(d.encode(replace(AMA, user_name="u@r2")))
    assert ama.user_name == "u@r2"  # type: ignore[union-attr]


# ------------------------------------------------------------------ loader and REST path


def test_the_topology_loader_refuses_a_bad_nai(tmp_path: Path) -> None:
    from controller.config import ConfigError, parse_topology
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "topology" / "default.yaml").read_text())
    mn = next(iter(data["mobile_nodes"].values()))
    for nai in (XSS, "alice@home", "alice@home..example"):
        bad = json.loads(json.dumps(data))
        next(iter(bad["mobile_nodes"].values()))["nai"] = nai
        with pytest.raises(ConfigError, match="is not an NAI"):
            parse_topology(bad, "bad.yaml")
    bad = json.loads(json.dumps(data))
    profiles = bad.get("vpn_profiles") or {}
    assert mn["nai"] in profiles
    profiles[XSS] = profiles.pop(mn["nai"])
    with pytest.raises(ConfigError, match="is not an NAI"):
        parse_topology(bad, "bad.yaml")


def test_the_rest_path_refuses_a_bad_nai(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from controller.adapters.rest import create_app

    from tests.unit.rest_fakes import OPERATOR, FakeRuntime, make_auth
    client = TestClient(create_app(FakeRuntime(tmp_path), make_auth()))
    op = {"Authorization": f"Bearer {OPERATOR}"}
    assert client.get("/v1/profiles/alice@home.example", headers=op).status_code == 200
    for nai in ("<b>@home.example", "alice@home", "alice@-home.example", "a%0a@home.example",
                "alice@home..example"):
        r = client.get(f"/v1/profiles/{nai}", headers=op)
        assert r.status_code == 422, (nai, r.status_code, r.text)
        assert "<b>" not in r.text


# ------------------------------------------------------------------ the running runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_runtime(tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """The loopback runtime with REST on a free port: (runtime, base URL, token)."""
    from controller.testing.gateways import RecordingGateway
    from controller.runtime import Runtime

    from tests.unit.runtime.test_runtime_loopback import free_port_topology

    port = free_port()
    rt = Runtime(free_port_topology(), tmp_path, ":memory:", rest=("127.0.0.1", port),
                 gateway_factory=RecordingGateway, flow_sink=lambda dpid, m: None,
                 fa_ingress=True, advertise=False)
    rt.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert asyncio.run_coroutine_threadsafe(rt.wait_links(), rt.loop).result(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield rt, base, (tmp_path / "operator.token").read_text().strip()
    finally:
        rt.stop()


def get_json(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_a_markup_nai_never_reaches_a_handover_record(tmp_path: Path) -> None:
    """The reported attack, over the real sockets: RRQ with a markup NAI and a garbage
    MN-AAA authenticator.  It used to be denied 67 and stored in a handover record
    (then rendered by the web view); now the FA's decoder refuses it as malformed."""
    from controller.loadgen import build_rrq
    with running_runtime(tmp_path) as (rt, base, token):
        topo = rt.topo
        mn = topo.mobile_nodes["mn1"]
        ha, coa = topo.gateways["ha"].core.ip, topo.gateways["fa1"].core.ip
        now = time.time()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            fa = rt.ingress["fa:fa1"].address
            for nai in (XSS, FORGED):
                sock.sendto(build_rrq(nai, mn.home_address, ha, coa, mn.mn_aaa_spi,
                                      b"garbage-key-0123", mip.ntp_identification(now)), fa)
            sock.sendto(build_rrq(mn.nai, mn.home_address, ha, coa, mn.mn_aaa_spi,
                                  mn.mn_aaa_key, mip.ntp_identification(now + 0.1),
                                  ha_spi=mn.mn_ha_spi, ha_key=mn.mn_ha_key), fa)
            data, _ = sock.recvfrom(2048)    # the only reply: the good registration's
            assert mip.decode(data).code == 0  # type: ignore[union-attr]
        assert rt.roles["fa:fa1"].counters["malformed"] == 2
        records = get_json(base + "/v1/handovers", token)
        assert [(r["nai"], r["code"]) for r in records] == [(mn.nai, 0)]
        view = get_json(base + "/v1/view", token)
        assert [h["nai"] for h in view["handovers"]] == [mn.nai]
        for text in (json.dumps(records), json.dumps(view)):
            assert "<img" not in text and "onerror" not in text and "root@" not in text

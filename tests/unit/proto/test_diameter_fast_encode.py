"""The fast serialisation in ``controller.proto.diameter`` (``_message_bytes`` and the
direct vendor-AVP payloads of ``_vavp``) writes byte for byte what python-diameter's
own ``Message.as_bytes()`` and value setters write, for random messages of every kind."""

from __future__ import annotations

import dataclasses
import random

import pytest

from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
from controller.proto import diameter as dia
from controller.proto.diameter import encoding as dia_encoding


def _reference_vavp(code: int, value: object) -> dia.Avp:
    """``_vavp`` through python-diameter's value setters (the original code path)."""
    cls = dia.VENDOR_AVPS[code][1]
    avp = cls(code, dia.VENDOR_ID)
    avp.name = dia.VENDOR_AVPS[code][0]
    avp.value = dia_encoding._ip(value) if cls is dia.AvpAddress else value  # type: ignore[arg-type]
    return avp


def _reference_bytes(msg: object, monkeypatch: pytest.MonkeyPatch) -> bytes:
    build = {dia.AmRequest: dia_encoding._encode_amr, dia.AmAnswer: dia_encoding._encode_ama,
             dia.HaRequest: dia_encoding._encode_har, dia.HaAnswer: dia_encoding._encode_haa}[type(msg)]
    with monkeypatch.context() as m:
        m.setattr(dia_encoding, "_vavp", _reference_vavp)
        return bytes(build(msg).as_bytes())  # type: ignore[arg-type]


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randrange(256)) for _ in range(4))


def _name(rng: random.Random, n: int = 12) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-é") for _ in
                   range(rng.randrange(1, n)))


def _tunnel(rng: random.Random) -> TunnelSpec:
    def end() -> TunnelEnd:
        return TunnelEnd(_name(rng), _ip(rng) if rng.random() < 0.9 else "",
                         tuple(f"{_ip(rng)}/32" for _ in range(rng.randrange(0, 3))))
    return TunnelSpec(f"{_name(rng)}/{_name(rng)}", end(), end(),
                      psk=rng.randbytes(rng.choice((0, 16, 32, 33))),
                      security=SecuritySpec(_name(rng), _name(rng)),
                      qos=QosSpec(rng.randrange(1 << 20), rng.randrange(64)),
                      initiator=rng.choice(("", _name(rng))))


def _vpn_info(rng: random.Random) -> VpnInfo | None:
    if rng.random() < 0.3:
        return None
    kw = {}
    fields = VpnInfo.__dataclass_fields__
    if "smooth_handoff" in fields:
        kw["smooth_handoff"] = rng.random() < 0.5
    kw["seamless_handover"] = rng.random() < 0.5
    if "handoff" in fields and rng.random() < 0.3:
        kw["handoff"] = _tunnel(rng)
    return VpnInfo(_name(rng) + "@" + _name(rng), rng.choice(("", _ip(rng))), _name(rng),
                   _name(rng), tuple(_tunnel(rng) for _ in range(rng.randrange(0, 4))),
                   previous_foreign_agent=rng.choice(("", _name(rng))), **kw)


def _message(rng: random.Random) -> object:
    ids = {"hop_by_hop": rng.randrange(1 << 32), "end_to_end": rng.randrange(1 << 32)}
    common = {"session_id": f"{_name(rng)};{rng.randrange(1 << 32)};{rng.randrange(99)}"}
    kind = rng.randrange(4)
    if kind == 0:
        return dia.AmRequest(
            origin_host=_name(rng), origin_realm=_name(rng), destination_realm=_name(rng),
            user_name=_name(rng), reg_request=rng.randbytes(rng.randrange(1, 90)),
            mn_aaa_spi=rng.randrange(1 << 32), auth_input_length=rng.randrange(1 << 16),
            authenticator_length=rng.randrange(1 << 16),
            authenticator_offset=rng.randrange(1 << 16),
            home_address=rng.choice(("", _ip(rng))),
            home_agent_address=rng.choice(("", _ip(rng))),
            feature_vector=rng.randrange(1 << 16),
            destination_host=rng.choice(("", _name(rng))),
            originating_foreign_aaa=rng.choice((None, (_name(rng), _name(rng)))),
            previous_fa_address=rng.choice(("", _ip(rng))),
            previous_fa=rng.choice(("", _name(rng))),
            foreign_agent=rng.choice(("", _name(rng))),
            service_update=rng.random() < 0.3, **common, **ids)
    answer = {"result_code": rng.choice((2001, 4001, 5012)), "origin_host": _name(rng),
              "origin_realm": _name(rng), "user_name": rng.choice(("", _name(rng))),
              "reg_reply": rng.choice((b"", rng.randbytes(28))),
              "home_address": rng.choice(("", _ip(rng))),
              "home_agent_address": rng.choice(("", _ip(rng))),
              "vpn_info": _vpn_info(rng), "error_message": rng.choice(("", _name(rng, 40)))}
    if kind == 1:
        key = rng.choice((None, dia.MsaKey(rng.randrange(1 << 32), rng.randbytes(16))))
        return dia.AmAnswer(fa_ha_key=key, **answer, **common, **ids)
    if kind == 2:
        return dia.HaRequest(
            origin_host=_name(rng), origin_realm=_name(rng), destination_realm=_name(rng),
            destination_host=_name(rng), user_name=_name(rng),
            reg_request=rng.randbytes(rng.randrange(1, 90)),
            authorization_lifetime=rng.randrange(1 << 16), auth_session_state=1,
            feature_vector=rng.randrange(1 << 16), home_address=rng.choice(("", _ip(rng))),
            home_agent_address=rng.choice(("", _ip(rng))), vpn_info=_vpn_info(rng),
            ha_to_fa_key=rng.choice((None, dia.MsaKey(rng.randrange(1 << 32),
                                                      rng.randbytes(16)))),
            originating_foreign_aaa=rng.choice((None, (_name(rng), _name(rng)))),
            **common, **ids)
    return dia.HaAnswer(**answer, **common, **ids)


@pytest.mark.parametrize("seed", range(8))
def test_fast_encode_is_byte_identical_to_python_diameter(seed, monkeypatch):
    rng = random.Random(seed)
    for _ in range(60):
        msg = _message(rng)
        try:
            ref = _reference_bytes(msg, monkeypatch)
        except Exception:
            with pytest.raises(dia.DiameterEncodeError):
                dia.encode(msg)  # type: ignore[arg-type]
            continue
        assert dia.encode(msg) == ref, msg  # type: ignore[arg-type]
        assert dia.decode(ref) == dia.decode(dia.encode(msg))  # type: ignore[arg-type]


def test_fast_path_falls_back_for_values_it_does_not_write():
    """A value python-diameter itself refuses still raises DiameterEncodeError."""
    amr = _message(random.Random(99))
    while not isinstance(amr, dia.AmRequest):
        amr = _message(random.Random(random.random()))
    bad = dataclasses.replace(amr, mn_aaa_spi=1 << 40)
    with pytest.raises(dia.DiameterEncodeError):
        dia.encode(bad)


def test_vpn_info_encode_and_decode_caches_return_equal_values() -> None:
    """The VPN-info caches (per VpnInfo value when encoding, per AVP bytes when
    decoding) give the same bytes / values as a fresh encode / decode."""
    from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo
    from controller.proto import diameter as d
    from controller.proto.diameter import decoding, encoding, vpn_memo

    spec = TunnelSpec("t/ha-fa1", TunnelEnd("ha", "10.0.0.1", ("10.30.0.0/24",)),
                      TunnelEnd("fa1", "10.0.0.2", ("10.1.0.5/32",)), b"k" * 16,
                      SecuritySpec(), QosSpec(1000, 10), initiator="fa1")
    info = VpnInfo("u@x", "10.1.0.5", "ha", "fa1", (spec,))
    first = d.vpn_info_avp(info)
    second = d.vpn_info_avp(info)
    assert first is not second and first.payload == second.payload
    assert first.payload == encoding._vpn_info_avp(info).payload       # uncached build
    vpn_memo._DECODED.clear()
    avps = d.parse_avps(first.as_bytes())
    top = decoding._Avps(avps, None, frozenset(), frozenset(d.VENDOR_AVPS), session_id="s")
    decoded = decoding._decode_vpn_info(top)
    assert decoded == info
    assert decoding._decode_vpn_info(top) is decoded                   # served from the cache


@pytest.mark.parametrize("seed", range(4))
def test_templates_write_the_four_mip_messages_byte_identically(seed, monkeypatch):
    """Issue 15: AMR, AMA, HAR and HAA are written from precomputed AVP templates (no
    python-diameter objects), byte for byte what python-diameter writes; a value the
    templates do not write leaves the message to the python-diameter path (None)."""
    from controller.proto.diameter import templates
    rng = random.Random(1000 + seed)
    written = 0
    for _ in range(60):
        msg = _message(rng)
        try:
            ref = _reference_bytes(msg, monkeypatch)
        except Exception:
            assert templates.encode_fast(msg) is None  # type: ignore[arg-type]
            continue
        fast = templates.encode_fast(msg)  # type: ignore[arg-type]
        assert fast == ref, msg
        written += 1
    assert written > 10
    nonce = dia.AmAnswer("s;1", 2001, "h", "r", mn_fa_nonce=dia.MnFaNonce(300, b"n" * 16),
                         session_secret=b"s" * 16, hop_by_hop=1, end_to_end=2)
    assert templates.encode_fast(nonce) == _reference_bytes(nonce, monkeypatch)
    big = dataclasses.replace(_first_amr(), mn_aaa_spi=1 << 40)
    assert templates.encode_fast(big) is None
    assert templates.encode_fast(dia.Dwr("h", "r", 1, 2)) is None


def _first_amr() -> dia.AmRequest:
    rng = random.Random(7)
    while True:
        msg = _message(rng)
        if isinstance(msg, dia.AmRequest):
            return msg


def test_templates_vpn_info_payload_is_python_diameters(monkeypatch) -> None:
    """The VPN information's members written by the templates are the bytes of
    python-diameter's grouped AVP, for random values (the reference builds them through
    python-diameter's value setters)."""
    from controller.proto.diameter import encoding, templates
    rng = random.Random(5)
    checked = 0
    while checked < 40:
        info = _vpn_info(rng)
        if info is None:
            continue
        monkeypatch.setattr(encoding, "_vavp", _reference_vavp)
        try:
            ref = encoding._vpn_info_avp(info).payload
        except Exception:
            continue
        finally:
            monkeypatch.undo()
        assert templates.vpn_info_payload(info) == ref
        checked += 1


@pytest.mark.parametrize("seed", range(3))
def test_templates_write_relayed_requests_byte_identically(seed, monkeypatch):
    """Issue 15: a request a relay passes on (Route-Record: the foreign AAA's AMR to the
    home AAA) is written from the templates too, byte for byte python-diameter's."""
    from dataclasses import replace

    from controller.proto.diameter import templates
    rng = random.Random(2000 + seed)
    written = 0
    for _ in range(60):
        msg = _message(rng)
        if not isinstance(msg, (dia.AmRequest, dia.HaRequest)):
            continue
        msg = replace(msg, route_record=tuple(_name(rng).encode("idna").decode()
                                              for _ in range(rng.randrange(1, 3))))
        try:
            ref = _reference_bytes(msg, monkeypatch)
        except Exception:
            continue
        fast = templates.encode_fast(msg)
        assert fast is not None and fast == ref, msg
        written += 1
    assert written > 5


def test_a_tunnel_shared_by_two_vpn_informations_is_written_once(monkeypatch) -> None:
    """Issue 15: the HA's VPN information (the MN's tunnel and the stationary HA-CN-GW
    one) and the FA's (the MN's tunnel) share a tunnel: its AVP is written once and
    reused, the same bytes as writing it again (python-diameter's, in the payload)."""
    from controller.proto.diameter import encoding, templates
    rng = random.Random(21)
    mine, static = _tunnel(rng), _tunnel(rng)
    ha = VpnInfo("u@home.example", "10.0.0.9", "ha", "fa1", (mine, static))
    fa = VpnInfo("u@home.example", "10.0.0.9", "ha", "fa1", (mine,))
    before = templates._tunnel.cache_info().hits
    assert templates.vpn_info_payload(ha) != templates.vpn_info_payload(fa)
    assert templates._tunnel.cache_info().hits == before + 1
    with monkeypatch.context() as m:
        m.setattr(encoding, "_vavp", _reference_vavp)
        for info in (ha, fa):
            assert templates.vpn_info_payload(info) == encoding._vpn_info_avp(info).payload

"""Encoding the four MIP messages (AMR, AMA, HAR, HAA) from precomputed AVP templates,
without building python-diameter objects (issue 15).

``encoding._encode_amr`` & co. fill a python-diameter command object and
``encoding._message_bytes`` walks its ``avp_def`` (the AVP order of python-diameter's
class), looking up each attribute (most are unset: ``DefinedMessage.__getattr__``
scans the definitions) and each AVP's flags and type.  Here that walk is done once per
command class (``_template``): each entry is (attribute, code, vendor, flags, AVP type,
template of a grouped type), read from the same ``avp_def`` and ``Avp.new`` as the
slow path, so the order and flags cannot drift from python-diameter's.  The encoders
below fill a dict with the very values ``_encode_*`` sets, and the template writes the
bytes.  Any value the fast serialisation does not write (``encoding._value_payload``)
makes ``encode_fast`` return None: ``encoding.encode`` then takes the python-diameter
path, whose errors are the library's.  Byte-identity with python-diameter:
tests/unit/proto/test_diameter_fast_encode.py.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Final

from diameter.message.avp import Avp, AvpAddress, AvpGrouped
from diameter.message.avp.generator import AvpGenDef
from diameter.message.avp.grouped import (MipFaToHaMsa, MipFaToMnMsa, MipHaToFaMsa,
                                          MipMnAaaAuth, MipOriginatingForeignAaa)
from diameter.message.commands import (AaMobileNodeAnswer, AaMobileNodeRequest,
                                       HomeAgentMipAnswer, HomeAgentMipRequest)

from controller.model.vpn import TunnelEnd, TunnelSpec, VpnInfo
from controller.proto.diameter.messages import (AmAnswer, AmRequest, DiameterMessage,
                                                HaAnswer, HaRequest, MnFaNonce, MsaKey)
from controller.proto.diameter.numbers import (AVP_MIP_ALGORITHM_TYPE, AVP_MIP_NONCE,
                                               MIP4_APPLICATION_ID)
from controller.proto.diameter.vpn_memo import _MAX, _remember, _round_trips
from controller.proto.diameter.vendor import (DISTRIBUTION_CODES, VA_DISTRIBUTION,
                                              VA_ESP_PROPOSAL, VA_FOREIGN_AGENT,
                                              VA_GATEWAY_ADDRESS, VA_GATEWAY_NAME,
                                              VA_HANDOFF_TUNNEL, VA_HOME_ADDRESS,
                                              VA_HOME_AGENT, VA_IKE_PROPOSAL, VA_INITIATOR,
                                              VA_MN_FA_SPI, VA_MN_TO_FA_MSA, VA_NAI,
                                              VA_PREVIOUS_FA, VA_PREVIOUS_FA_ADDRESS,
                                              VA_PSK, VA_QOS_DSCP, VA_QOS_RATE_KBPS,
                                              VA_SEAMLESS_HANDOVER, VA_SERVICE_UPDATE, VA_SESSION_SECRET,
                                              VA_SMOOTH_HANDOFF, VA_TRAFFIC_SELECTOR,
                                              VA_TUNNEL, VA_TUNNEL_END_A, VA_TUNNEL_END_B,
                                              VA_TUNNEL_ID, VA_VPN_INFO, VENDOR_AVPS,
                                              VENDOR_ID)
from controller.proto.diameter.wire import (_MSG_HDR, _avp_wire, _i32, _ident, _ip,
                                            _Unsupported, _value_payload)

#: one AVP of a template: attribute, code, vendor, flags, python-diameter AVP type,
#: the grouped type's template (None: not grouped), and whether the fast path writes it
_Entry = tuple[str, int, int, int, type, "tuple[_Entry, ...] | None", bool]


@functools.cache
def _template(cls: type) -> tuple[_Entry, ...]:
    """The AVPs of python-diameter's ``cls`` (a command or grouped AVP class), in its
    ``avp_def`` order, with the flags and type ``Avp.new`` gives each."""
    out: list[_Entry] = []
    for d in cls.avp_def:  # type: ignore[attr-defined]
        if not isinstance(d, AvpGenDef):
            continue
        proto = Avp.new(d.avp_code, d.vendor_id, is_mandatory=d.is_mandatory)
        kind = type(proto)
        grouped = d.type_class is not None
        sub = _template(d.type_class) if grouped and kind is AvpGrouped else None
        out.append((d.attr_name, d.avp_code, d.vendor_id, proto.flags, kind, sub,
                    not grouped or sub is not None))
    return tuple(out)


# the per-class and per-code tables below are dicts filled once, not ``functools``
# caches: a compiled dict look-up, not a call through the cache's wrapper (issue 15)
_HEADERS: Final[dict[type, tuple[int, int, int]]] = {}


def _header(cls: type) -> tuple[int, int, int]:
    """(version, command flags, command code) of a fresh ``cls`` message."""
    got = _HEADERS.get(cls)
    if got is None:
        h = cls().header
        got = _HEADERS[cls] = (h.version, h.command_flags, h.command_code)
    return got


#: the attributes whose values repeat from message to message (a peer's identity and
#: realm, the application, fixed numbers): the AVP bytes of each value are kept, at
#: most ``_KEPT`` values per attribute of a command (issue 15).  Never a key, a user's
#: name or anything else that differs per user.
_REPEATING: Final = frozenset({
    "origin_host", "origin_realm", "destination_host", "destination_realm",
    "auth_application_id", "result_code", "mip_feature_vector", "authorization_lifetime",
    "auth_session_state", "mip_home_agent_address", "mip_originating_foreign_aaa",
    "mip_mn_aaa_auth"})
_KEPT: Final = 64

#: ``_template(cls)``, each attribute's index in it, and per index the AVP bytes kept
#: by value (None: an attribute not in ``_REPEATING``)
_Layout = tuple[tuple[_Entry, ...], dict[str, int], list["dict[object, bytes] | None"]]


_LAYOUTS: Final[dict[type, _Layout]] = {}


def _layout(cls: type) -> _Layout:
    got = _LAYOUTS.get(cls)
    if got is None:
        tmpl = _template(cls)
        got = _LAYOUTS[cls] = (tmpl, {e[0]: i for i, e in enumerate(tmpl)},
                               [{} if e[0] in _REPEATING else None for e in tmpl])
    return got


def _write(tmpl: tuple[_Entry, ...], get: Callable[[str], Any], out: list[bytes]) -> None:
    for entry in tmpl:
        value = get(entry[0])
        if value is not None:
            out.append(_entry_wire(entry, value))


def _entry_wire(entry: _Entry, value: Any) -> bytes:
    """The AVP (or, for a list, the AVPs) of one template entry holding ``value``."""
    _attr, code, vendor, flags, kind, sub, supported = entry
    if not supported:
        raise _Unsupported
    out = []
    for v in (value if isinstance(value, list) else (value,)):
        if v is None:
            continue
        if sub is not None and type(v) is bytes:    # members written by ``_members``
            payload = v
        elif sub is not None:
            inner: list[bytes] = []
            _write(sub, _getter(v), inner)
            for avp in getattr(v, "additional_avps", ()) or ():
                inner.append(_avp_wire(avp.code, avp.flags, avp.vendor_id, avp.payload))
            payload = b"".join(inner)
        else:
            payload = _value_payload(kind, v)
        out.append(_avp_wire(code, flags, vendor, payload))
    return out[0] if len(out) == 1 else b"".join(out)


def _getter(obj: Any) -> Callable[[str], Any]:
    return lambda name: getattr(obj, name, None)


#: per vendor AVP: the flags python-diameter gives it (V set, M and P clear) and its type
_VENDOR: Final[dict[int, tuple[int, type[Avp]]]] = {
    code: (kind(code, VENDOR_ID).flags, kind) for code, (_name, kind) in VENDOR_AVPS.items()}


def _vendor_flags(code: int) -> int:
    return _VENDOR[code][0]


def _vendor_avp(code: int, value: object) -> bytes:
    """``encoding._vavp(code, value)`` as wire bytes (scalar vendor AVPs)."""
    flags, kind = _VENDOR[code]
    if kind is AvpAddress:
        value = _ip(value)
    return _avp_wire(code, flags, VENDOR_ID, _value_payload(kind, value))


_IETF: Final[dict[int, tuple[int, type]]] = {}


def _ietf(code: int) -> tuple[int, type]:
    got = _IETF.get(code)
    if got is None:
        proto = Avp.new(code, is_mandatory=True)
        got = _IETF[code] = (proto.flags, type(proto))
    return got


def _ietf_avp(code: int, value: object) -> bytes:
    """``Avp.new(code, value=value, is_mandatory=True)`` as wire bytes."""
    flags, kind = _ietf(code)
    return _avp_wire(code, flags, 0, _value_payload(kind, value))


def _vendor_group(code: int, members: list[bytes]) -> bytes:
    return _avp_wire(code, _vendor_flags(code), VENDOR_ID, b"".join(members))


def vpn_info_payload(info: VpnInfo) -> bytes:
    """The members of the Mipvpn-VPN-Info AVP for ``info`` (``encoding._vpn_info_avp``
    as bytes), from the cached AVP (``_vpn_info``)."""
    return _vpn_info(info)[12:]


def _vpn_info_members(info: VpnInfo) -> bytes:
    m = [_vendor_avp(VA_NAI, info.nai)]
    if info.home_address:
        m.append(_vendor_avp(VA_HOME_ADDRESS, info.home_address))
    m.append(_vendor_avp(VA_HOME_AGENT, info.home_agent))
    m.append(_vendor_avp(VA_FOREIGN_AGENT, info.foreign_agent))
    if info.previous_foreign_agent:
        m.append(_vendor_avp(VA_PREVIOUS_FA, info.previous_foreign_agent))
    for t in info.tunnels:
        m.append(_tunnel(VA_TUNNEL, t))
    if info.smooth_handoff:
        m.append(_vendor_avp(VA_SMOOTH_HANDOFF, 1))
    if info.seamless_handover:
        m.append(_vendor_avp(VA_SEAMLESS_HANDOVER, 1))
    if info.distribution != "registration":
        m.append(_vendor_avp(VA_DISTRIBUTION, DISTRIBUTION_CODES[info.distribution]))
    if info.handoff is not None:
        m.append(_tunnel(VA_HANDOFF_TUNNEL, info.handoff))
    return b"".join(m)


@functools.lru_cache(maxsize=_MAX)
def _tunnel(code: int, t: TunnelSpec) -> bytes:
    """A Mipvpn-Tunnel (or -Handoff-Tunnel) AVP, cached per value: the HA's VPN
    information and the FA's share the MN's tunnel, and every HA's holds the stationary
    HA-CN-GW tunnel (issue 15)."""
    m = [_vendor_avp(VA_TUNNEL_ID, t.tunnel_id), _tunnel_end(VA_TUNNEL_END_A, t.a),
         _tunnel_end(VA_TUNNEL_END_B, t.b), _vendor_avp(VA_IKE_PROPOSAL, t.security.ike),
         _vendor_avp(VA_ESP_PROPOSAL, t.security.esp), _vendor_avp(VA_PSK, bytes(t.psk)),
         _vendor_avp(VA_QOS_RATE_KBPS, t.qos.rate_kbps),
         _vendor_avp(VA_QOS_DSCP, t.qos.dscp)]
    if t.initiator:
        m.append(_vendor_avp(VA_INITIATOR, t.initiator))
    return _vendor_group(code, m)


def _tunnel_end(code: int, end: TunnelEnd) -> bytes:
    m = [_vendor_avp(VA_GATEWAY_NAME, end.gateway)]
    if end.address:
        m.append(_vendor_avp(VA_GATEWAY_ADDRESS, end.address))
    m.extend(_vendor_avp(VA_TRAFFIC_SELECTOR, s) for s in end.selectors)
    return _vendor_group(code, m)


#: id(info) -> (info, its AVP): the same object sent again (a relayed answer, the value
#: the decoder's memo gave back) costs one int look-up, not a hash of the whole value
#: (about 8,000 instructions; issue 15).  Holding ``info`` keeps its id from being
#: reused.  Bounded: cleared when full.
_BY_ID: Final[dict[int, tuple[VpnInfo, bytes]]] = {}


def _vpn_info(info: VpnInfo) -> bytes:
    """``_vpn_info_avp(info)``, for an object written before without hashing it."""
    hit = _BY_ID.get(id(info))
    if hit is not None and hit[0] is info:
        return hit[1]
    avp = _vpn_info_avp(info)
    if len(_BY_ID) >= _MAX:
        _BY_ID.clear()
    _BY_ID[id(info)] = (info, avp)
    return avp


@functools.lru_cache(maxsize=_MAX)
def _vpn_info_avp(info: VpnInfo) -> bytes:
    """The Mipvpn-VPN-Info AVP for ``info``, cached per ``VpnInfo`` value (frozen,
    hashable): one registration sends the same information in HAR and HAA, in the home
    AAA's AMA and the foreign AAA's, and every renewal again.  Filed in ``vpn_memo``
    so that a receiver in this process does not decode it again."""
    avp = _avp_wire(VA_VPN_INFO, _vendor_flags(VA_VPN_INFO), VENDOR_ID,
                    _vpn_info_members(info))
    if _round_trips(info):
        _remember(avp, info)
    return avp


def _mn_to_fa_msa(n: MnFaNonce) -> bytes:
    payload = (_vendor_avp(VA_MN_FA_SPI, n.spi)
               + _ietf_avp(AVP_MIP_ALGORITHM_TYPE, _i32(n.algorithm))
               + _ietf_avp(AVP_MIP_NONCE, bytes(n.nonce)))
    return _avp_wire(VA_MN_TO_FA_MSA, _vendor_flags(VA_MN_TO_FA_MSA), VENDOR_ID, payload)


def _slots(cls: type, values: dict[str, Any]) -> list[bytes]:
    """The AVPs of the values set, each in its entry's slot of ``cls``'s template (not
    a walk of every entry, most of them unset; issue 15): in the template's order."""
    tmpl, where, kept = _layout(cls)
    slots = [b""] * len(tmpl)
    for attr, value in values.items():
        if value is not None:
            i = where[attr]
            known = kept[i]
            # only bytes and int values are kept: never one that only equals them
            # (True, 1.0), which the fast path does not write (python-diameter does)
            if known is None or not (type(value) is bytes or type(value) is int):
                slots[i] = _entry_wire(tmpl[i], value)
                continue
            wire = known.get(value)
            if wire is None:
                wire = _entry_wire(tmpl[i], value)
                if len(known) < _KEPT:
                    known[value] = wire
            slots[i] = wire
    return slots


def _members(cls: type, values: dict[str, Any]) -> bytes:
    """The members of a grouped AVP of python-diameter's ``cls`` holding ``values``
    (by attribute name), as bytes: what ``_write`` makes of a ``cls(...)`` object,
    without building one."""
    return b"".join(_slots(cls, values))


def _msa(cls: type, spi_attr: str, k: MsaKey) -> bytes:
    return _members(cls, {spi_attr: k.spi, "mip_algorithm_type": _i32(k.algorithm),
                          "mip_session_key": bytes(k.session_key)})


@functools.lru_cache(maxsize=256)
def _ofaaa(realm: str, host: str) -> bytes:
    return _members(MipOriginatingForeignAaa, {"origin_realm": _ident(realm),
                                               "origin_host": _ident(host)})


def _message(cls: type, m: DiameterMessage, values: dict[str, Any],
             extra: list[bytes]) -> bytes:
    slots = _slots(cls, values)
    slots += extra
    body = b"".join(slots)
    version, flags, code = _header(cls)
    return _MSG_HDR.pack((version << 24) | (20 + len(body)), (flags << 24) | code,
                         MIP4_APPLICATION_ID, m.hop_by_hop, m.end_to_end) + body


@functools.lru_cache(maxsize=256)
def _mn_aaa_auth(spi: int, input_length: int, length: int, offset: int) -> bytes:
    """The members of MIP-MN-AAA-Auth: the same four numbers for every registration of
    one kind of MN (issue 15)."""
    return _members(MipMnAaaAuth, {
        "mip_mn_aaa_spi": spi, "mip_auth_input_data_length": input_length,
        "mip_authenticator_length": length, "mip_authenticator_offset": offset})


# the values below are those encoding._encode_amr / _ama / _har / _haa set, in the
# same cases; the vendor AVPs are appended in the same order


def _amr(m: AmRequest) -> bytes:
    v: dict[str, Any] = {
        "session_id": m.session_id, "auth_application_id": MIP4_APPLICATION_ID,
        "user_name": m.user_name, "destination_realm": _ident(m.destination_realm),
        "origin_host": _ident(m.origin_host), "origin_realm": _ident(m.origin_realm),
        "mip_reg_request": bytes(m.reg_request),
        "mip_mn_aaa_auth": _mn_aaa_auth(m.mn_aaa_spi, m.auth_input_length,
                                        m.authenticator_length, m.authenticator_offset),
        "mip_feature_vector": _i32(m.feature_vector)}
    if m.destination_host:
        v["destination_host"] = _ident(m.destination_host)
    if m.home_address:
        v["mip_mobile_node_address"] = _ip(m.home_address)
    if m.home_agent_address:
        v["mip_home_agent_address"] = _ip(m.home_agent_address)
    if m.originating_foreign_aaa is not None:
        realm, host = m.originating_foreign_aaa
        v["mip_originating_foreign_aaa"] = _ofaaa(realm, host)
    if m.route_record:
        v["route_record"] = [_ident(h) for h in m.route_record]
    extra = []
    if m.foreign_agent:
        extra.append(_vendor_avp(VA_FOREIGN_AGENT, m.foreign_agent))
    if m.previous_fa:
        extra.append(_vendor_avp(VA_PREVIOUS_FA, m.previous_fa))
    if m.previous_fa_address:
        extra.append(_vendor_avp(VA_PREVIOUS_FA_ADDRESS, m.previous_fa_address))
    if m.service_update:
        extra.append(_vendor_avp(VA_SERVICE_UPDATE, 1))
    return _message(AaMobileNodeRequest, m, v, extra)


def _answer_values(m: AmAnswer | HaAnswer) -> dict[str, Any]:
    v: dict[str, Any] = {
        "session_id": m.session_id, "auth_application_id": MIP4_APPLICATION_ID,
        "result_code": _i32(m.result_code), "origin_host": _ident(m.origin_host),
        "origin_realm": _ident(m.origin_realm)}
    if m.user_name:
        v["user_name"] = m.user_name
    if m.error_message:
        v["error_message"] = m.error_message
    if m.reg_reply:
        v["mip_reg_reply"] = bytes(m.reg_reply)
    if m.home_agent_address:
        v["mip_home_agent_address"] = _ip(m.home_agent_address)
    if m.home_address:
        v["mip_mobile_node_address"] = _ip(m.home_address)
    return v


def _ama(m: AmAnswer) -> bytes:
    v = _answer_values(m)
    if m.fa_ha_key is not None:
        v["mip_fa_to_ha_msa"] = _msa(MipFaToHaMsa, "mip_fa_to_ha_spi", m.fa_ha_key)
    if m.fa_mn_key is not None:
        v["mip_fa_to_mn_msa"] = _msa(MipFaToMnMsa, "mip_fa_to_mn_spi", m.fa_mn_key)
    extra = []
    if m.vpn_info is not None:
        extra.append(_vpn_info(m.vpn_info))
    if m.mn_fa_nonce is not None:
        extra.append(_mn_to_fa_msa(m.mn_fa_nonce))
    if m.session_secret:
        extra.append(_vendor_avp(VA_SESSION_SECRET, bytes(m.session_secret)))
    return _message(AaMobileNodeAnswer, m, v, extra)


def _har(m: HaRequest) -> bytes:
    v: dict[str, Any] = {
        "session_id": m.session_id, "auth_application_id": MIP4_APPLICATION_ID,
        "authorization_lifetime": _i32(m.authorization_lifetime),
        "auth_session_state": _i32(m.auth_session_state),
        "mip_reg_request": bytes(m.reg_request), "origin_host": _ident(m.origin_host),
        "origin_realm": _ident(m.origin_realm), "user_name": m.user_name,
        "destination_realm": _ident(m.destination_realm),
        "mip_feature_vector": _i32(m.feature_vector)}
    if m.destination_host:
        v["destination_host"] = _ident(m.destination_host)
    if m.ha_to_fa_key is not None:
        v["mip_ha_to_fa_msa"] = _msa(MipHaToFaMsa, "mip_ha_to_fa_spi", m.ha_to_fa_key)
    if m.originating_foreign_aaa is not None:
        realm, host = m.originating_foreign_aaa
        v["mip_originating_foreign_aaa"] = _ofaaa(realm, host)
    if m.home_address:
        v["mip_mobile_node_address"] = _ip(m.home_address)
    if m.home_agent_address:
        v["mip_home_agent_address"] = _ip(m.home_agent_address)
    if m.route_record:
        v["route_record"] = [_ident(h) for h in m.route_record]
    extra = []
    if m.vpn_info is not None:
        extra.append(_vpn_info(m.vpn_info))
    if m.session_secret:
        extra.append(_vendor_avp(VA_SESSION_SECRET, bytes(m.session_secret)))
    return _message(HomeAgentMipRequest, m, v, extra)


def _haa(m: HaAnswer) -> bytes:
    extra = [] if m.vpn_info is None else [_vpn_info(m.vpn_info)]
    return _message(HomeAgentMipAnswer, m, _answer_values(m), extra)


_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    AmRequest: _amr, AmAnswer: _ama, HaRequest: _har, HaAnswer: _haa}


def encode_fast(msg: DiameterMessage) -> bytes | None:
    """``msg``'s wire bytes from the templates; None when it is not one of the four MIP
    messages or holds a value only python-diameter writes (or refuses)."""
    enc = _ENCODERS.get(type(msg))
    if enc is None:
        return None
    if msg.proxy_info:  # type: ignore[union-attr]
        return None     # Proxy-Info: the python-diameter path writes it (the T flag: encode)
    try:
        return enc(msg)
    except Exception:   # noqa: BLE001 - the python-diameter path decides (and raises)
        return None


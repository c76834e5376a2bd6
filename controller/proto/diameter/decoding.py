"""Decoding: a small strict AVP walker of our own, so that malformed input maps onto
RFC 6733 result codes (``DiameterDecodeError``), and the forbidden codes of
PROTOCOLS.md §6 are checked in one place."""

from __future__ import annotations

import ipaddress
import struct
from typing import Final, TypedDict

from controller.model.vpn import (DEFAULT_ESP, DEFAULT_IKE, QosSpec, SecuritySpec, TunnelEnd,
                                  TunnelSpec, VpnInfo)
from controller.proto import nai as nai_syntax
from controller.proto.diameter.agents import _proxy_info, _route_record
from controller.proto.diameter.framing import RawAvp, _example_avp, parse_avps, parse_header
from controller.proto.diameter.messages import (AmAnswer, AmRequest, Cea, Cer,
                                                DiameterDecodeError, DiameterHeader,
                                                DiameterMessage, Dpa, Dpr, Dwa, Dwr,
                                                HaAnswer, HaRequest, MnFaNonce, MsaKey)
from controller.proto.diameter.numbers import (APPLICATION_UNSUPPORTED,
                                               AVP_ACCOUNTING_MULTI_SESSION_ID,
                                               AVP_AUTHORIZATION_LIFETIME, AVP_AUTH_APPLICATION_ID,
                                               AVP_AUTH_SESSION_STATE, AVP_DESTINATION_HOST,
                                               AVP_DESTINATION_REALM, AVP_DISCONNECT_CAUSE,
                                               AVP_ERROR_MESSAGE, AVP_ERROR_REPORTING_HOST,
                                               AVP_FIRMWARE_REVISION, AVP_FLAG_MANDATORY,
                                               AVP_HOST_IP_ADDRESS, AVP_MIP_ALGORITHM_TYPE,
                                               AVP_MIP_AUTHENTICATOR_LENGTH,
                                               AVP_MIP_AUTHENTICATOR_OFFSET,
                                               AVP_MIP_AUTH_INPUT_DATA_LENGTH, AVP_MIP_FA_TO_HA_MSA,
                                               AVP_MIP_FA_TO_HA_SPI, AVP_MIP_FA_TO_MN_MSA,
                                               AVP_MIP_FA_TO_MN_SPI, AVP_MIP_FEATURE_VECTOR,
                                               AVP_MIP_HA_TO_FA_MSA, AVP_MIP_HA_TO_FA_SPI,
                                               AVP_MIP_HOME_AGENT_ADDRESS, AVP_MIP_MN_AAA_AUTH,
                                               AVP_MIP_MN_AAA_SPI, AVP_MIP_MOBILE_NODE_ADDRESS,
                                               AVP_MIP_MSA_LIFETIME, AVP_MIP_NONCE,
                                               AVP_MIP_ORIGINATING_FOREIGN_AAA, AVP_MIP_REG_REPLY,
                                               AVP_MIP_REG_REQUEST, AVP_MIP_SESSION_KEY,
                                               AVP_OCCURS_TOO_MANY_TIMES, AVP_ORIGIN_HOST,
                                               AVP_ORIGIN_REALM, AVP_ORIGIN_STATE_ID,
                                               AVP_PRODUCT_NAME, AVP_RESULT_CODE,
                                               AVP_RE_AUTH_REQUEST_TYPE, AVP_SESSION_ID,
                                               AVP_UNSUPPORTED, AVP_USER_NAME, AVP_VENDOR_ID,
                                               CMD_AA_MOBILE_NODE, CMD_CAPABILITIES_EXCHANGE,
                                               CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER,
                                               CMD_HOME_AGENT_MIP, COMMAND_UNSUPPORTED, FLAG_ERROR,
                                               INVALID_AVP_LENGTH, INVALID_AVP_VALUE,
                                               INVALID_HDR_BITS, INVALID_MESSAGE_LENGTH,
                                               KNOWN_IETF_AVPS, MIP4_APPLICATION_ID, MISSING_AVP,
                                               UNABLE_TO_COMPLY)
from controller.proto.diameter.vpn_memo import _recall, _remember
from controller.proto.diameter.vendor import (
    DISTRIBUTION_CODES, VA_DISTRIBUTION, VA_ESP_PROPOSAL, VA_FOREIGN_AGENT, VA_GATEWAY_ADDRESS,
    VA_GATEWAY_NAME, VA_HANDOFF_TUNNEL, VA_HOME_ADDRESS, VA_HOME_AGENT, VA_IKE_PROPOSAL,
    VA_INITIATOR, VA_MN_FA_SPI, VA_MN_TO_FA_MSA, VA_NAI, VA_PREVIOUS_FA, VA_PREVIOUS_FA_ADDRESS,
    VA_PSK, VA_QOS_DSCP, VA_QOS_RATE_KBPS, VA_SEAMLESS_HANDOVER, VA_SERVICE_UPDATE,
    VA_SESSION_SECRET, VA_SMOOTH_HANDOFF, VA_TRAFFIC_SELECTOR, VA_TUNNEL, VA_TUNNEL_END_A,
    VA_TUNNEL_END_B, VA_TUNNEL_ID, VA_VPN_INFO, VENDOR_AVPS, VENDOR_ID)

# ------------------------------------------------------------------ decoding


#: User-Names found valid (each hop and renewal of a user carries the same one): checked
#: once, not at every message (issue 15).  Bounded: cleared when full.
_VALID_NAIS: Final[set[str]] = set()
_KEPT_NAIS: Final = 16384


class _Avps:
    """Lookup over one AVP list, raising DiameterDecodeError with the right code."""

    __slots__ = ("avps", "header", "session_id", "first")

    def __init__(self, avps: list[RawAvp], header: DiameterHeader | None,
                 known_ietf: frozenset[int], known_vendor: frozenset[int],
                 session_id: str | None = None, once: frozenset[int] = frozenset(),
                 once_vendor: frozenset[int] = frozenset()) -> None:
        self.avps = avps
        self.header = header
        #: vendor << 32 | code -> the first such AVP: every look-up is one dict probe
        #: (an int key: no tuple to build and hash per AVP and per look-up; issue 15)
        first: dict[int, RawAvp] = {}
        # one pass (issue 15): the first M-bit AVP we do not know (5001) and the first
        # second occurrence of an AVP ``once`` / ``once_vendor`` allow once (5009,
        # Failed-AVP = the second), raised in that order once the Session-Id is known
        unknown = again = None
        for a in avps:
            code, flags, vendor = a.code, a.flags, a.vendor
            key = vendor << 32 | code
            if key not in first:
                first[key] = a
            elif again is None and ((vendor == 0 and code in once) or (
                    vendor == VENDOR_ID and code in once_vendor)):
                again = a
            if unknown is None and flags & AVP_FLAG_MANDATORY and not (
                    (code in known_vendor) if vendor == VENDOR_ID else (
                        vendor == 0 and code in known_ietf)):
                unknown = a
        self.first = first
        if session_id is None:      # top level: known early, for error answers
            sid = first.get(AVP_SESSION_ID)
            session_id = sid.data.decode("utf-8", "replace") if sid is not None else ""
        self.session_id = session_id
        if unknown is not None:
            raise self.error(AVP_UNSUPPORTED, unknown.code, f"unknown M-bit AVP {unknown.code}"
                             f"{f' vendor {unknown.vendor}' if unknown.vendor else ''}",
                             unknown.raw)
        if again is not None:
            raise self.error(AVP_OCCURS_TOO_MANY_TIMES, again.code,
                             f"AVP {again.code} occurs more than once", again.raw)

    def error(self, rc: int, code: int, msg: str, raw: bytes = b"") -> DiameterDecodeError:
        return DiameterDecodeError(rc, code, msg, header=self.header, failed_avp=raw,
                                   session_id=self.session_id)

    def find(self, code: int, vendor: int = 0) -> RawAvp | None:
        return self.first.get(vendor << 32 | code)

    def all(self, code: int, vendor: int = 0) -> list[RawAvp]:
        return [a for a in self.avps if a.code == code and a.vendor == vendor]

    def need(self, code: int, vendor: int = 0) -> RawAvp:
        a = self.first.get(vendor << 32 | code)
        if a is None:
            raise self.missing(code, vendor)
        return a

    def missing(self, code: int, vendor: int = 0) -> DiameterDecodeError:
        return self.error(MISSING_AVP, code, f"missing AVP {code}", _example_avp(code, vendor))

    # the getters below look their AVP up themselves (not through ``find`` / ``need``:
    # one call less per field, about 200 per registration; issue 15)

    # typed getters: required when default is None
    def u32(self, code: int, default: int | None = None, vendor: int = 0) -> int:
        a = self.first.get(vendor << 32 | code)
        if a is None:
            if default is None:
                raise self.missing(code, vendor)
            return default
        d = a.data
        if len(d) != 4:
            raise self.error(INVALID_AVP_LENGTH, code, f"AVP {code}: not 4 bytes", a.raw)
        return d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3]     # native ints, no struct

    def text(self, code: int, default: str | None = None, vendor: int = 0) -> str:
        a = self.first.get(vendor << 32 | code)
        if a is None:
            if default is None:
                raise self.missing(code, vendor)
            return default
        return self.text_of(a)

    def ident(self, code: int, default: str | None = None) -> str:
        """A DiameterIdentity (RFC 6733 §4.3.1: an FQDN or realm, ASCII; IDNs in
        A-label form): anything else is 5004, since it could never be sent on."""
        a = self.first.get(code)
        if a is None:
            if default is None:
                raise self.missing(code)
            return default
        return self.ident_of(a)

    def ident_of(self, a: RawAvp) -> str:
        if not a.data.isascii():
            raise self.error(INVALID_AVP_VALUE, a.code,
                             f"AVP {a.code}: DiameterIdentity is not ASCII", a.raw)
        return a.data.decode("ascii")

    def nai(self, code: int) -> str:
        """A required User-Name: an RFC 7542 NAI (``controller.proto.nai``), else 5004
        with the AVP as Failed-AVP; the reason never repeats the value."""
        a = self.need(code)
        value = self.text_of(a)
        if value in _VALID_NAIS:
            return value
        why = nai_syntax.problem(value)
        if why is not None:
            raise self.error(INVALID_AVP_VALUE, code, f"AVP {code}: {why}", a.raw)
        if len(_VALID_NAIS) >= _KEPT_NAIS:
            _VALID_NAIS.clear()
        _VALID_NAIS.add(value)
        return value

    def text_of(self, a: RawAvp) -> str:
        try:
            return a.data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(INVALID_AVP_VALUE, a.code, f"AVP {a.code}: bad UTF-8",
                             a.raw) from None

    def octets(self, code: int, default: bytes | None = None, vendor: int = 0) -> bytes:
        a = self.first.get(vendor << 32 | code)
        if a is None:
            if default is None:
                raise self.missing(code, vendor)
            return default
        return a.data

    def address(self, code: int, default: str | None = None, vendor: int = 0) -> str:
        a = self.first.get(vendor << 32 | code)
        if a is None:
            if default is None:
                raise self.missing(code, vendor)
            return default
        return self.to_address(a)

    def to_address(self, a: RawAvp) -> str:
        d = a.data
        fam = d[:2]
        if fam == b"\0\1" and len(d) == 6:      # = socket.inet_ntoa, str(IPv4Address(...))
            return f"{d[2]}.{d[3]}.{d[4]}.{d[5]}"
        if fam == b"\0\2" and len(a.data) == 18:
            return str(ipaddress.IPv6Address(a.data[2:]))
        raise self.error(INVALID_AVP_VALUE, a.code, f"AVP {a.code}: not an IP address",
                         a.raw)

    def group(self, a: RawAvp, known_ietf: frozenset[int] = frozenset(),
              known_vendor: frozenset[int] = frozenset(), once: frozenset[int] = frozenset(),
              once_vendor: frozenset[int] = frozenset()) -> _Avps:
        inner = parse_avps(a.data, header=self.header)
        return _Avps(inner, self.header, known_ietf, known_vendor, self.session_id, once,
                     once_vendor)


_VENDOR_KNOWN: Final = frozenset(VENDOR_AVPS)

# AVPs a message may carry at most once (RFC 6733 §5.3-5.5 grammars, RFC 4004 §5);
# a second one is DIAMETER_AVP_OCCURS_TOO_MANY_TIMES (5009), Failed-AVP = the second.
_ONCE_BASE: Final = frozenset({AVP_SESSION_ID, AVP_ORIGIN_HOST, AVP_ORIGIN_REALM, AVP_RESULT_CODE,
                        AVP_ERROR_MESSAGE, AVP_ORIGIN_STATE_ID, AVP_ERROR_REPORTING_HOST})
_ONCE_BY_COMMAND: Final = {
    CMD_CAPABILITIES_EXCHANGE: _ONCE_BASE | {AVP_VENDOR_ID, AVP_PRODUCT_NAME,
                                             AVP_FIRMWARE_REVISION},
    CMD_DEVICE_WATCHDOG: _ONCE_BASE,
    CMD_DISCONNECT_PEER: _ONCE_BASE | {AVP_DISCONNECT_CAUSE},
}
_ONCE_MIP: Final = _ONCE_BASE | {
    AVP_AUTH_APPLICATION_ID, AVP_DESTINATION_REALM, AVP_DESTINATION_HOST, AVP_USER_NAME,
    AVP_AUTHORIZATION_LIFETIME, AVP_AUTH_SESSION_STATE, AVP_ACCOUNTING_MULTI_SESSION_ID,
    AVP_RE_AUTH_REQUEST_TYPE, *range(318, 342), *range(343, 349), AVP_MIP_MSA_LIFETIME}
_ONCE_MIP_VENDOR: Final = frozenset({VA_VPN_INFO, VA_PREVIOUS_FA, VA_PREVIOUS_FA_ADDRESS,
                              VA_SERVICE_UPDATE, VA_FOREIGN_AGENT, VA_SESSION_SECRET,
                              VA_MN_TO_FA_MSA})
_ONCE_BY_COMMAND[CMD_AA_MOBILE_NODE] = _ONCE_BY_COMMAND[CMD_HOME_AGENT_MIP] = _ONCE_MIP


def _decode_end(g: _Avps) -> TunnelEnd:
    return TunnelEnd(
        gateway=g.text(VA_GATEWAY_NAME, vendor=VENDOR_ID),
        address=g.address(VA_GATEWAY_ADDRESS, "", vendor=VENDOR_ID),
        selectors=tuple(g.text_of(a) for a in g.all(VA_TRAFFIC_SELECTOR, VENDOR_ID)))


def _decode_vpn_info(top: _Avps) -> VpnInfo | None:
    a = top.find(VA_VPN_INFO, VENDOR_ID)
    if a is None:
        return None
    info = _recall(a.raw)
    if info is None:
        info = _decode_vpn_info_avp(top, a)
        _remember(a.raw, info)
    return info


def _decode_vpn_info_avp(top: _Avps, a: RawAvp) -> VpnInfo:
    g = top.group(a, known_vendor=_VENDOR_KNOWN)
    tunnels = tuple(_decode_tunnel(g, ta) for ta in g.all(VA_TUNNEL, VENDOR_ID))
    handoff = g.find(VA_HANDOFF_TUNNEL, VENDOR_ID)
    distribution = g.u32(VA_DISTRIBUTION, 0, vendor=VENDOR_ID)
    names = {v: k for k, v in DISTRIBUTION_CODES.items()}
    if distribution not in names:
        raise g.error(INVALID_AVP_VALUE, VA_DISTRIBUTION,
                      f"Mipvpn-Distribution {distribution}")
    return VpnInfo(
        nai=g.text(VA_NAI, vendor=VENDOR_ID),
        home_address=g.address(VA_HOME_ADDRESS, "", vendor=VENDOR_ID),
        home_agent=g.text(VA_HOME_AGENT, vendor=VENDOR_ID),
        foreign_agent=g.text(VA_FOREIGN_AGENT, "", vendor=VENDOR_ID),
        tunnels=tunnels,
        previous_foreign_agent=g.text(VA_PREVIOUS_FA, "", vendor=VENDOR_ID),
        smooth_handoff=bool(g.u32(VA_SMOOTH_HANDOFF, 0, vendor=VENDOR_ID)),
        seamless_handover=bool(g.u32(VA_SEAMLESS_HANDOVER, 0, vendor=VENDOR_ID)),
        distribution=names[distribution],
        handoff=None if handoff is None else _decode_tunnel(g, handoff))


def _decode_tunnel(g: _Avps, ta: RawAvp) -> TunnelSpec:
    t = g.group(ta, known_vendor=_VENDOR_KNOWN)
    ends = []
    for code in (VA_TUNNEL_END_A, VA_TUNNEL_END_B):
        ends.append(_decode_end(t.group(t.need(code, VENDOR_ID),
                                        known_vendor=_VENDOR_KNOWN)))
    return TunnelSpec(
        tunnel_id=t.text(VA_TUNNEL_ID, vendor=VENDOR_ID),
        a=ends[0], b=ends[1],
        psk=t.octets(VA_PSK, vendor=VENDOR_ID),
        security=SecuritySpec(
            ike=t.text(VA_IKE_PROPOSAL, DEFAULT_IKE, vendor=VENDOR_ID),
            esp=t.text(VA_ESP_PROPOSAL, DEFAULT_ESP, vendor=VENDOR_ID)),
        qos=QosSpec(rate_kbps=t.u32(VA_QOS_RATE_KBPS, 0, vendor=VENDOR_ID),
                    dscp=t.u32(VA_QOS_DSCP, 0, vendor=VENDOR_ID)),
        initiator=t.text(VA_INITIATOR, "", vendor=VENDOR_ID))


def _decode_msa(top: _Avps, code: int, spi_code: int) -> MsaKey | None:
    a = top.find(code)
    if a is None:
        return None
    g = top.group(a, KNOWN_IETF_AVPS, once=KNOWN_IETF_AVPS)
    return MsaKey(spi=g.u32(spi_code), algorithm=g.u32(AVP_MIP_ALGORITHM_TYPE),
                  session_key=g.octets(AVP_MIP_SESSION_KEY))


def _decode_mn_fa_nonce(top: _Avps) -> MnFaNonce | None:
    a = top.find(VA_MN_TO_FA_MSA, VENDOR_ID)
    if a is None:
        return None
    g = top.group(a, KNOWN_IETF_AVPS, _VENDOR_KNOWN, KNOWN_IETF_AVPS, _VENDOR_KNOWN)
    spi = g.u32(VA_MN_FA_SPI, vendor=VENDOR_ID)
    nonce = g.octets(AVP_MIP_NONCE)
    if spi < 256 or not nonce:
        raise g.error(INVALID_AVP_VALUE, VA_MN_TO_FA_MSA,
                      "Mipvpn-MN-to-FA-MSA: reserved SPI or empty nonce", a.raw)
    return MnFaNonce(spi=spi, nonce=nonce, algorithm=g.u32(AVP_MIP_ALGORITHM_TYPE))


def _decode_secret(top: _Avps) -> bytes:
    secret = top.octets(VA_SESSION_SECRET, b"", vendor=VENDOR_ID)
    if top.find(VA_SESSION_SECRET, VENDOR_ID) is not None and len(secret) < 16:
        raise top.error(INVALID_AVP_VALUE, VA_SESSION_SECRET,
                        "Mipvpn-Session-Secret shorter than 16 bytes")
    return secret


#: MIP-Originating-Foreign-AAA members -> (realm, host): a few AAAs send all (issue 15)
_OFAAA: Final[dict[bytes, tuple[str, str]]] = {}


def _decode_ofaaa(top: _Avps) -> tuple[str, str] | None:
    a = top.find(AVP_MIP_ORIGINATING_FOREIGN_AAA)
    if a is None:
        return None
    known = _OFAAA.get(a.data)
    if known is not None:
        return known
    g = top.group(a, KNOWN_IETF_AVPS)
    out = (g.ident(AVP_ORIGIN_REALM), g.ident(AVP_ORIGIN_HOST))
    if len(_OFAAA) >= 256:
        _OFAAA.clear()
    _OFAAA[a.data] = out
    return out


def _check_app(top: _Avps, hdr: DiameterHeader) -> None:
    if hdr.application_id != MIP4_APPLICATION_ID:
        raise top.error(APPLICATION_UNSUPPORTED, 0,
                        f"application id {hdr.application_id} for command "
                        f"{hdr.command_code}")
    # {Auth-Application-Id} is required in AMR and HAR (RFC 4004 §5.1, §5.3)
    a = top.need(AVP_AUTH_APPLICATION_ID) if hdr.is_request else top.find(
        AVP_AUTH_APPLICATION_ID)
    if a is not None and top.u32(AVP_AUTH_APPLICATION_ID) != MIP4_APPLICATION_ID:
        raise top.error(APPLICATION_UNSUPPORTED, AVP_AUTH_APPLICATION_ID,
                        "Auth-Application-Id is not 2", a.raw)


class _Ids(TypedDict):
    """The header identifiers every decoded message carries (keyword arguments)."""

    hop_by_hop: int
    end_to_end: int


class _Capabilities(TypedDict):
    """The fields CER and CEA share (RFC 6733 §5.3.1, §5.3.2)."""

    host_ip_addresses: tuple[str, ...]
    vendor_id: int
    product_name: str
    auth_application_ids: tuple[int, ...]


def _ids(hdr: DiameterHeader) -> _Ids:
    return _Ids(hop_by_hop=hdr.hop_by_hop, end_to_end=hdr.end_to_end)


def _decode_mip(top: _Avps, hdr: DiameterHeader) -> DiameterMessage:
    # every field is passed by name (no ``**`` of a dict): mypyc then calls the
    # dataclass's native constructor, not the generic call with a keyword dict (about
    # 17,000 instructions a message; issue 15).  The fields are read in the order they
    # were, so the first error raised stays the same.
    hbh, e2e = hdr.hop_by_hop, hdr.end_to_end
    err = bool(hdr.flags & FLAG_ERROR)
    if not err:     # an E-bit answer echoes whatever application id the request had
        _check_app(top, hdr)
    if not hdr.is_request:
        rc = top.u32(AVP_RESULT_CODE)
        # an error answer to an unreadable request may have no Session-Id
        sid = top.session_id = top.text(AVP_SESSION_ID, "" if err or rc >= 3000 else None)
        host, realm = top.ident(AVP_ORIGIN_HOST), top.ident(AVP_ORIGIN_REALM)
        user, reply = top.text(AVP_USER_NAME, ""), top.octets(AVP_MIP_REG_REPLY, b"")
        home = top.address(AVP_MIP_MOBILE_NODE_ADDRESS, "")
        ha_addr = top.address(AVP_MIP_HOME_AGENT_ADDRESS, "")
        info, text = _decode_vpn_info(top), top.text(AVP_ERROR_MESSAGE, "")
        if hdr.command_code == CMD_AA_MOBILE_NODE:
            fa_ha = _decode_msa(top, AVP_MIP_FA_TO_HA_MSA, AVP_MIP_FA_TO_HA_SPI)
            fa_mn = _decode_msa(top, AVP_MIP_FA_TO_MN_MSA, AVP_MIP_FA_TO_MN_SPI)
            nonce, secret = _decode_mn_fa_nonce(top), _decode_secret(top)
            return AmAnswer(sid, rc, host, realm, user, reply, home, ha_addr, info, fa_ha,
                            fa_mn, nonce, secret, text, hbh, e2e, _proxy_info(top))
        return HaAnswer(sid, rc, host, realm, user, reply, home, ha_addr, info, text, hbh,
                        e2e, _proxy_info(top))
    sid = top.session_id = top.text(AVP_SESSION_ID)
    if hdr.command_code == CMD_AA_MOBILE_NODE:
        auth = top.group(top.need(AVP_MIP_MN_AAA_AUTH), KNOWN_IETF_AVPS,
                         once=KNOWN_IETF_AVPS)
        return AmRequest(
            session_id=sid,
            origin_host=top.ident(AVP_ORIGIN_HOST),
            origin_realm=top.ident(AVP_ORIGIN_REALM),
            destination_realm=top.ident(AVP_DESTINATION_REALM),
            user_name=top.nai(AVP_USER_NAME),
            reg_request=top.octets(AVP_MIP_REG_REQUEST),
            mn_aaa_spi=auth.u32(AVP_MIP_MN_AAA_SPI),
            auth_input_length=auth.u32(AVP_MIP_AUTH_INPUT_DATA_LENGTH),
            authenticator_length=auth.u32(AVP_MIP_AUTHENTICATOR_LENGTH),
            authenticator_offset=auth.u32(AVP_MIP_AUTHENTICATOR_OFFSET),
            home_address=top.address(AVP_MIP_MOBILE_NODE_ADDRESS, ""),
            home_agent_address=top.address(AVP_MIP_HOME_AGENT_ADDRESS, ""),
            feature_vector=top.u32(AVP_MIP_FEATURE_VECTOR, 0),
            destination_host=top.ident(AVP_DESTINATION_HOST, ""),
            originating_foreign_aaa=_decode_ofaaa(top),
            previous_fa_address=top.address(VA_PREVIOUS_FA_ADDRESS, "", vendor=VENDOR_ID),
            previous_fa=top.text(VA_PREVIOUS_FA, "", vendor=VENDOR_ID),
            foreign_agent=top.text(VA_FOREIGN_AGENT, "", vendor=VENDOR_ID),
            service_update=bool(top.u32(VA_SERVICE_UPDATE, 0, vendor=VENDOR_ID)),
            route_record=_route_record(top), proxy_info=_proxy_info(top),
            hop_by_hop=hbh, end_to_end=e2e)
    return HaRequest(
        session_id=sid,
        origin_host=top.ident(AVP_ORIGIN_HOST),
        origin_realm=top.ident(AVP_ORIGIN_REALM),
        destination_realm=top.ident(AVP_DESTINATION_REALM),
        destination_host=top.ident(AVP_DESTINATION_HOST, ""),
        user_name=top.nai(AVP_USER_NAME),
        reg_request=top.octets(AVP_MIP_REG_REQUEST),
        authorization_lifetime=top.u32(AVP_AUTHORIZATION_LIFETIME),
        auth_session_state=top.u32(AVP_AUTH_SESSION_STATE),
        feature_vector=top.u32(AVP_MIP_FEATURE_VECTOR),
        home_address=top.address(AVP_MIP_MOBILE_NODE_ADDRESS, ""),
        home_agent_address=top.address(AVP_MIP_HOME_AGENT_ADDRESS, ""),
        vpn_info=_decode_vpn_info(top),
        ha_to_fa_key=_decode_msa(top, AVP_MIP_HA_TO_FA_MSA, AVP_MIP_HA_TO_FA_SPI),
        originating_foreign_aaa=_decode_ofaaa(top), session_secret=_decode_secret(top),
        route_record=_route_record(top), proxy_info=_proxy_info(top),
        hop_by_hop=hbh, end_to_end=e2e)


def _decode_base(top: _Avps, hdr: DiameterHeader) -> DiameterMessage:
    ids = _ids(hdr)
    req = hdr.is_request
    err = bool(hdr.flags & FLAG_ERROR) and not req
    host = top.ident(AVP_ORIGIN_HOST, "" if err else None)
    realm = top.ident(AVP_ORIGIN_REALM, "" if err else None)
    rc = 0 if req else top.u32(AVP_RESULT_CODE)
    if hdr.command_code == CMD_CAPABILITIES_EXCHANGE:
        caps = _Capabilities(
            host_ip_addresses=tuple(top.to_address(a) for a in top.all(AVP_HOST_IP_ADDRESS)),
            vendor_id=top.u32(AVP_VENDOR_ID, 0),
            product_name=top.text(AVP_PRODUCT_NAME, ""),
            auth_application_ids=tuple(
                int(struct.unpack("!I", a.data)[0]) for a in top.all(AVP_AUTH_APPLICATION_ID)
                if len(a.data) == 4))
        if req:
            if not caps["host_ip_addresses"]:
                top.need(AVP_HOST_IP_ADDRESS)
            return Cer(host, realm, origin_state_id=top.u32(AVP_ORIGIN_STATE_ID, 0),
                       **caps, **ids)
        return Cea(rc, host, realm, error_message=top.text(AVP_ERROR_MESSAGE, ""),
                   **caps, **ids)
    if hdr.command_code == CMD_DEVICE_WATCHDOG:
        return Dwr(host, realm, **ids) if req else Dwa(rc, host, realm, **ids)
    if req:
        return Dpr(host, realm, top.u32(AVP_DISCONNECT_CAUSE, 0), **ids)
    return Dpa(rc, host, realm, **ids)


_BASE_COMMANDS: Final = (CMD_CAPABILITIES_EXCHANGE, CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER)


def decode(buf: bytes | bytearray | memoryview) -> DiameterMessage:
    """Decode one whole Diameter message.  Raises only ``DiameterDecodeError``."""
    data: bytes = buf if type(buf) is bytes else bytes(buf)     # once (issue 15)
    try:
        hdr = parse_header(data)
        if hdr.length != len(data):
            raise DiameterDecodeError(INVALID_MESSAGE_LENGTH, 0,
                                      f"length {hdr.length} != {len(data)} bytes",
                                      header=hdr)
        if hdr.flags & 0x0F or (hdr.is_request and hdr.flags & FLAG_ERROR):
            raise DiameterDecodeError(INVALID_HDR_BITS, 0, f"flags {hdr.flags:#x}",
                                      header=hdr)
        top = _Avps(parse_avps(data, 20, header=hdr), hdr, KNOWN_IETF_AVPS, _VENDOR_KNOWN,
                    None, _ONCE_BY_COMMAND.get(hdr.command_code, frozenset()),
                    _ONCE_MIP_VENDOR if hdr.command_code in _ONCE_BY_COMMAND else frozenset())
        if hdr.command_code in (CMD_AA_MOBILE_NODE, CMD_HOME_AGENT_MIP):
            return _decode_mip(top, hdr)
        if hdr.command_code in _BASE_COMMANDS:
            if hdr.application_id != 0:
                raise top.error(APPLICATION_UNSUPPORTED, 0,
                                f"application id {hdr.application_id} on base command")
            return _decode_base(top, hdr)
        raise top.error(COMMAND_UNSUPPORTED, 0, f"command {hdr.command_code}")
    except DiameterDecodeError:
        raise
    except Exception as e:      # defensive: nothing else may escape
        raise DiameterDecodeError(UNABLE_TO_COMPLY, 0, f"undecodable: {e!r}") from None

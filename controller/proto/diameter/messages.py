"""The frozen dataclasses the rest of mipvpn sees (``AmRequest`` ... ``Dpa``), the parsed
header and the codec's errors (each carries its RFC 6733 result code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union

from controller.model.vpn import VpnInfo
from controller.proto.diameter.numbers import FLAG_REQUEST, FLAG_RETRANSMIT, MIP4_APPLICATION_ID
from controller.proto.diameter.vendor import PRODUCT_NAME

# ------------------------------------------------------------------ our messages


@dataclass(frozen=True)
class MsaKey:
    """RFC 4004 MIP-FA-to-HA-MSA (328) / MIP-HA-to-FA-MSA (329) / MIP-FA-to-MN-MSA (326)
    content."""

    spi: int
    session_key: bytes = field(repr=False)
    algorithm: int = 2          # MIP-Algorithm-Type 2 = HMAC-SHA-1, the only one defined

    def __init__(self, spi: int, session_key: bytes, algorithm: int = 2) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "session_key", session_key)
        object.__setattr__(self, "algorithm", algorithm)


@dataclass(frozen=True)
class MnFaNonce:
    """RFC 4004 MIP-MN-to-FA-MSA content (carried as Mipvpn-MN-to-FA-MSA: the SPI AVP
    RFC 4004 names has no code): what the MN derives its MN-FA key from."""

    spi: int
    nonce: bytes = field(repr=False)
    algorithm: int = 2

    def __init__(self, spi: int, nonce: bytes, algorithm: int = 2) -> None:
        object.__setattr__(self, "spi", spi)
        object.__setattr__(self, "nonce", nonce)
        object.__setattr__(self, "algorithm", algorithm)


@dataclass(frozen=True)
class AmRequest:
    session_id: str
    origin_host: str
    origin_realm: str
    destination_realm: str
    user_name: str
    reg_request: bytes
    mn_aaa_spi: int
    auth_input_length: int
    authenticator_length: int
    authenticator_offset: int
    home_address: str = ""
    home_agent_address: str = ""
    feature_vector: int = 0
    destination_host: str = ""
    originating_foreign_aaa: tuple[str, str] | None = None   # (realm, host)
    previous_fa_address: str = ""
    previous_fa: str = ""
    foreign_agent: str = ""
    service_update: bool = False
    hop_by_hop: int = 0
    end_to_end: int = 0
    #: RFC 6733 §6.7.1: the identities of the agents the request passed, in order (each
    #: relay or proxy appends the peer it received it from)
    route_record: tuple[str, ...] = ()
    #: RFC 6733 §6.7.3: each Proxy-Info AVP's content (its grouped members, as received),
    #: in order; the answer echoes them
    proxy_info: tuple[bytes, ...] = ()

    def __init__(self, session_id: str, origin_host: str, origin_realm: str, destination_realm: str,
                 user_name: str, reg_request: bytes, mn_aaa_spi: int, auth_input_length: int,
                 authenticator_length: int, authenticator_offset: int, home_address: str = "",
                 home_agent_address: str = "", feature_vector: int = 0,
                 destination_host: str = "",
                 originating_foreign_aaa: tuple[str, str] | None = None,
                 previous_fa_address: str = "", previous_fa: str = "",
                 foreign_agent: str = "", service_update: bool = False, hop_by_hop: int = 0,
                 end_to_end: int = 0, route_record: tuple[str, ...] = (),
                 proxy_info: tuple[bytes, ...] = ()) -> None:
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "origin_host", origin_host)
        object.__setattr__(self, "origin_realm", origin_realm)
        object.__setattr__(self, "destination_realm", destination_realm)
        object.__setattr__(self, "user_name", user_name)
        object.__setattr__(self, "reg_request", reg_request)
        object.__setattr__(self, "mn_aaa_spi", mn_aaa_spi)
        object.__setattr__(self, "auth_input_length", auth_input_length)
        object.__setattr__(self, "authenticator_length", authenticator_length)
        object.__setattr__(self, "authenticator_offset", authenticator_offset)
        object.__setattr__(self, "home_address", home_address)
        object.__setattr__(self, "home_agent_address", home_agent_address)
        object.__setattr__(self, "feature_vector", feature_vector)
        object.__setattr__(self, "destination_host", destination_host)
        object.__setattr__(self, "originating_foreign_aaa", originating_foreign_aaa)
        object.__setattr__(self, "previous_fa_address", previous_fa_address)
        object.__setattr__(self, "previous_fa", previous_fa)
        object.__setattr__(self, "foreign_agent", foreign_agent)
        object.__setattr__(self, "service_update", service_update)
        object.__setattr__(self, "hop_by_hop", hop_by_hop)
        object.__setattr__(self, "end_to_end", end_to_end)
        object.__setattr__(self, "route_record", route_record)
        object.__setattr__(self, "proxy_info", proxy_info)


@dataclass(frozen=True)
class AmAnswer:
    session_id: str
    result_code: int
    origin_host: str
    origin_realm: str
    user_name: str = ""
    reg_reply: bytes = b""
    home_address: str = ""
    home_agent_address: str = ""
    vpn_info: VpnInfo | None = None
    fa_ha_key: MsaKey | None = None
    # issue 11: the MN-FA key for the foreign AAA (MIP-FA-to-MN-MSA), the nonce for the
    # MN (via the FA) and the session secret for the foreign AAA; never to an FA
    fa_mn_key: MsaKey | None = None
    mn_fa_nonce: MnFaNonce | None = None
    session_secret: bytes = field(default=b"", repr=False)
    error_message: str = ""
    hop_by_hop: int = 0
    end_to_end: int = 0
    #: the request's Proxy-Info contents, echoed in the same order (RFC 6733 §6.2)
    proxy_info: tuple[bytes, ...] = ()

    def __init__(self, session_id: str, result_code: int, origin_host: str, origin_realm: str,
                 user_name: str = "", reg_reply: bytes = b"", home_address: str = "",
                 home_agent_address: str = "", vpn_info: VpnInfo | None = None,
                 fa_ha_key: MsaKey | None = None, fa_mn_key: MsaKey | None = None,
                 mn_fa_nonce: MnFaNonce | None = None, session_secret: bytes = b"",
                 error_message: str = "", hop_by_hop: int = 0, end_to_end: int = 0,
                 proxy_info: tuple[bytes, ...] = ()) -> None:
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "result_code", result_code)
        object.__setattr__(self, "origin_host", origin_host)
        object.__setattr__(self, "origin_realm", origin_realm)
        object.__setattr__(self, "user_name", user_name)
        object.__setattr__(self, "reg_reply", reg_reply)
        object.__setattr__(self, "home_address", home_address)
        object.__setattr__(self, "home_agent_address", home_agent_address)
        object.__setattr__(self, "vpn_info", vpn_info)
        object.__setattr__(self, "fa_ha_key", fa_ha_key)
        object.__setattr__(self, "fa_mn_key", fa_mn_key)
        object.__setattr__(self, "mn_fa_nonce", mn_fa_nonce)
        object.__setattr__(self, "session_secret", session_secret)
        object.__setattr__(self, "error_message", error_message)
        object.__setattr__(self, "hop_by_hop", hop_by_hop)
        object.__setattr__(self, "end_to_end", end_to_end)
        object.__setattr__(self, "proxy_info", proxy_info)


@dataclass(frozen=True)
class HaRequest:
    session_id: str
    origin_host: str
    origin_realm: str
    destination_realm: str
    destination_host: str
    user_name: str
    reg_request: bytes
    authorization_lifetime: int
    auth_session_state: int
    feature_vector: int
    home_address: str = ""
    home_agent_address: str = ""
    vpn_info: VpnInfo | None = None
    ha_to_fa_key: MsaKey | None = None
    originating_foreign_aaa: tuple[str, str] | None = None
    session_secret: bytes = field(default=b"", repr=False)   # issue 11
    hop_by_hop: int = 0
    end_to_end: int = 0
    #: RFC 6733 §6.7.1: the identities of the agents the request passed, in order (each
    #: relay or proxy appends the peer it received it from)
    route_record: tuple[str, ...] = ()
    #: RFC 6733 §6.7.3: each Proxy-Info AVP's content (its grouped members, as received),
    #: in order; the answer echoes them
    proxy_info: tuple[bytes, ...] = ()

    def __init__(self, session_id: str, origin_host: str, origin_realm: str, destination_realm: str,
                 destination_host: str, user_name: str, reg_request: bytes,
                 authorization_lifetime: int, auth_session_state: int, feature_vector: int,
                 home_address: str = "", home_agent_address: str = "",
                 vpn_info: VpnInfo | None = None, ha_to_fa_key: MsaKey | None = None,
                 originating_foreign_aaa: tuple[str, str] | None = None,
                 session_secret: bytes = b"", hop_by_hop: int = 0, end_to_end: int = 0,
                 route_record: tuple[str, ...] = (),
                 proxy_info: tuple[bytes, ...] = ()) -> None:
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "origin_host", origin_host)
        object.__setattr__(self, "origin_realm", origin_realm)
        object.__setattr__(self, "destination_realm", destination_realm)
        object.__setattr__(self, "destination_host", destination_host)
        object.__setattr__(self, "user_name", user_name)
        object.__setattr__(self, "reg_request", reg_request)
        object.__setattr__(self, "authorization_lifetime", authorization_lifetime)
        object.__setattr__(self, "auth_session_state", auth_session_state)
        object.__setattr__(self, "feature_vector", feature_vector)
        object.__setattr__(self, "home_address", home_address)
        object.__setattr__(self, "home_agent_address", home_agent_address)
        object.__setattr__(self, "vpn_info", vpn_info)
        object.__setattr__(self, "ha_to_fa_key", ha_to_fa_key)
        object.__setattr__(self, "originating_foreign_aaa", originating_foreign_aaa)
        object.__setattr__(self, "session_secret", session_secret)
        object.__setattr__(self, "hop_by_hop", hop_by_hop)
        object.__setattr__(self, "end_to_end", end_to_end)
        object.__setattr__(self, "route_record", route_record)
        object.__setattr__(self, "proxy_info", proxy_info)


@dataclass(frozen=True)
class HaAnswer:
    session_id: str
    result_code: int
    origin_host: str
    origin_realm: str
    user_name: str = ""
    reg_reply: bytes = b""
    home_address: str = ""
    home_agent_address: str = ""
    vpn_info: VpnInfo | None = None
    error_message: str = ""
    hop_by_hop: int = 0
    end_to_end: int = 0
    #: the request's Proxy-Info contents, echoed in the same order (RFC 6733 §6.2)
    proxy_info: tuple[bytes, ...] = ()

    def __init__(self, session_id: str, result_code: int, origin_host: str, origin_realm: str,
                 user_name: str = "", reg_reply: bytes = b"", home_address: str = "",
                 home_agent_address: str = "", vpn_info: VpnInfo | None = None,
                 error_message: str = "", hop_by_hop: int = 0, end_to_end: int = 0,
                 proxy_info: tuple[bytes, ...] = ()) -> None:
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "result_code", result_code)
        object.__setattr__(self, "origin_host", origin_host)
        object.__setattr__(self, "origin_realm", origin_realm)
        object.__setattr__(self, "user_name", user_name)
        object.__setattr__(self, "reg_reply", reg_reply)
        object.__setattr__(self, "home_address", home_address)
        object.__setattr__(self, "home_agent_address", home_agent_address)
        object.__setattr__(self, "vpn_info", vpn_info)
        object.__setattr__(self, "error_message", error_message)
        object.__setattr__(self, "hop_by_hop", hop_by_hop)
        object.__setattr__(self, "end_to_end", end_to_end)
        object.__setattr__(self, "proxy_info", proxy_info)


@dataclass(frozen=True)
class Cer:
    origin_host: str
    origin_realm: str
    host_ip_addresses: tuple[str, ...]
    vendor_id: int = 0
    product_name: str = PRODUCT_NAME
    auth_application_ids: tuple[int, ...] = (MIP4_APPLICATION_ID,)
    origin_state_id: int = 0
    hop_by_hop: int = 0
    end_to_end: int = 0


@dataclass(frozen=True)
class Cea:
    result_code: int
    origin_host: str
    origin_realm: str
    host_ip_addresses: tuple[str, ...]
    vendor_id: int = 0
    product_name: str = PRODUCT_NAME
    auth_application_ids: tuple[int, ...] = (MIP4_APPLICATION_ID,)
    error_message: str = ""
    hop_by_hop: int = 0
    end_to_end: int = 0


@dataclass(frozen=True)
class Dwr:
    origin_host: str
    origin_realm: str
    hop_by_hop: int = 0
    end_to_end: int = 0


@dataclass(frozen=True)
class Dwa:
    result_code: int
    origin_host: str
    origin_realm: str
    hop_by_hop: int = 0
    end_to_end: int = 0


@dataclass(frozen=True)
class Dpr:
    origin_host: str
    origin_realm: str
    disconnect_cause: int = 0    # 0 REBOOTING, 1 BUSY, 2 DO_NOT_WANT_TO_TALK_TO_YOU
    hop_by_hop: int = 0
    end_to_end: int = 0


@dataclass(frozen=True)
class Dpa:
    result_code: int
    origin_host: str
    origin_realm: str
    hop_by_hop: int = 0
    end_to_end: int = 0


Request = Union[AmRequest, HaRequest]
Answer = Union[AmAnswer, HaAnswer]
DiameterMessage = Union[AmRequest, AmAnswer, HaRequest, HaAnswer, Cer, Cea, Dwr, Dwa,
                        Dpr, Dpa]
REQUEST_TYPES = (AmRequest, HaRequest, Cer, Dwr, Dpr)


class DiameterHeader(NamedTuple):
    version: int
    length: int
    flags: int
    command_code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int

    @property
    def is_request(self) -> bool:
        return bool(self.flags & FLAG_REQUEST)

    @property
    def is_retransmit(self) -> bool:
        """The 'T' flag: a request possibly sent before (RFC 6733 §3, §5.5.4)."""
        return bool(self.flags & FLAG_RETRANSMIT)


class DiameterDecodeError(ValueError):
    """Malformed or unacceptable input, with the RFC 6733 result code to answer with.

    ``header`` is set when the header was readable (so an error answer can be sent);
    ``failed_avp`` holds the bytes for the Failed-AVP's content (the offending AVP, or a
    zero-payload example AVP for a missing one).
    """

    def __init__(self, result_code: int, failed_avp_code: int, message: str, *,
                 header: DiameterHeader | None = None, failed_avp: bytes = b"",
                 session_id: str = "") -> None:
        super().__init__(f"{result_code}: {message}")
        self.result_code = result_code
        self.failed_avp_code = failed_avp_code
        self.message = message
        self.header = header
        self.failed_avp = failed_avp
        self.session_id = session_id


class DiameterEncodeError(ValueError):
    """A message field that cannot be encoded (bad address, out-of-range integer...)."""

"""Diameter codec for the Mobile IPv4 application (RFC 4004) and mipvpn's vendor AVPs.

Pure codec: no sockets, no threads, no clock.  The rest of mipvpn only sees the frozen
dataclasses defined here (``AmRequest``, ``AmAnswer``, ``HaRequest``, ``HaAnswer``,
``Cer``/``Cea``, ``Dwr``/``Dwa``, ``Dpr``/``Dpa``); python-diameter objects never leave
this module.

Encoding goes through python-diameter's message classes.  Decoding uses a small strict
AVP walker of our own, so that malformed input maps onto RFC 6733 result codes
(``DiameterDecodeError``) instead of library exceptions, and so that the forbidden codes
of PROTOCOLS.md §6 are checked in one place.

Message header (RFC 6733 §3)::

     0                   1                   2                   3
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    Version    |                 Message Length                |
    | command flags |                  Command Code                 |
    |                         Application-ID                        |
    |                      Hop-by-Hop Identifier                    |
    |                      End-to-End Identifier                    |
    |  AVPs ...

AVP (§4.1)::

    |                           AVP Code                            |
    |V M P r r r r r|                  AVP Length                   |
    |                        Vendor-ID (opt)                        |
    |    Data ... (padded to 4 bytes; AVP Length excludes padding)

The vendor AVPs (vendor id ``VENDOR_ID``) are documented in ``docs/diameter-avps.md``.

The package, along the codec's sections: ``numbers`` (application ids, command codes,
result codes: the one definition the roles use), ``vendor`` (our AVPs), ``messages``
(the dataclasses, header, errors), ``wire`` (AVP bytes), ``templates`` (the MIP
messages from precomputed AVP templates), ``encoding``, ``decoding``.  This ``__init__``
re-exports every name, so ``from controller.proto import diameter as dia; dia.X`` keeps
working; python-diameter's AVP classes and IETF AVP codes are re-exported as before.
"""

from __future__ import annotations

# python-diameter's classes and the IETF AVP codes, re-exported as the module had them
from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp, AvpAddress, AvpGrouped, AvpOctetString
from diameter.message.avp import AvpUnsigned32, AvpUtf8String
from diameter.message.avp.grouped import (MipFaToHaMsa, MipFaToMnMsa, MipHaToFaMsa,
                                          MipMnAaaAuth, MipOriginatingForeignAaa)
# IETF AVP codes (RFC 6733, RFC 4004): python-diameter's constants, one source of truth
from diameter.message.constants import (
    AVP_ACCOUNTING_MULTI_SESSION_ID, AVP_ACCT_APPLICATION_ID,
    AVP_AUTHORIZATION_LIFETIME, AVP_AUTH_APPLICATION_ID, AVP_AUTH_SESSION_STATE,
    AVP_DESTINATION_HOST, AVP_DESTINATION_REALM, AVP_DISCONNECT_CAUSE,
    AVP_ERROR_MESSAGE, AVP_ERROR_REPORTING_HOST, AVP_EXPERIMENTAL_RESULT,
    AVP_FAILED_AVP, AVP_FIRMWARE_REVISION, AVP_HOST_IP_ADDRESS, AVP_INBAND_SECURITY_ID,
    AVP_MIP_ALGORITHM_TYPE, AVP_MIP_AUTHENTICATOR_LENGTH, AVP_MIP_AUTHENTICATOR_OFFSET,
    AVP_MIP_AUTH_INPUT_DATA_LENGTH, AVP_MIP_CANDIDATE_HOME_AGENT_HOST,
    AVP_MIP_FA_CHALLENGE, AVP_MIP_FA_TO_HA_MSA, AVP_MIP_FA_TO_HA_SPI,
    AVP_MIP_FA_TO_MN_MSA, AVP_MIP_FA_TO_MN_SPI, AVP_MIP_FEATURE_VECTOR,
    AVP_MIP_FILTER_RULE, AVP_MIP_HA_TO_FA_MSA, AVP_MIP_HA_TO_FA_SPI,
    AVP_MIP_HA_TO_MN_MSA, AVP_MIP_HOME_AGENT_ADDRESS, AVP_MIP_HOME_AGENT_HOST,
    AVP_MIP_MN_AAA_AUTH, AVP_MIP_MN_AAA_SPI, AVP_MIP_MN_TO_FA_MSA,
    AVP_MIP_MN_TO_HA_MSA, AVP_MIP_MOBILE_NODE_ADDRESS, AVP_MIP_MSA_LIFETIME,
    AVP_MIP_NONCE, AVP_MIP_ORIGINATING_FOREIGN_AAA, AVP_MIP_REG_REPLY,
    AVP_MIP_REG_REQUEST, AVP_MIP_REPLAY_MODE, AVP_MIP_SESSION_KEY, AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM, AVP_ORIGIN_STATE_ID, AVP_PRODUCT_NAME, AVP_PROXY_INFO,
    AVP_RESULT_CODE, AVP_RE_AUTH_REQUEST_TYPE, AVP_ROUTE_RECORD, AVP_SESSION_ID,
    AVP_SUPPORTED_VENDOR_ID, AVP_USER_NAME, AVP_VENDOR_ID,
    AVP_VENDOR_SPECIFIC_APPLICATION_ID,
)
from diameter.message.commands import (AaMobileNodeAnswer, AaMobileNodeRequest,
                                       CapabilitiesExchangeAnswer,
                                       CapabilitiesExchangeRequest, DeviceWatchdogAnswer,
                                       DeviceWatchdogRequest, DisconnectPeerAnswer,
                                       DisconnectPeerRequest, HomeAgentMipAnswer,
                                       HomeAgentMipRequest)

from controller.proto.diameter.numbers import (APPLICATION_UNSUPPORTED,
                                               AUTHENTICATION_REJECTED, AUTHORIZATION_REJECTED,
                                               AVP_FLAG_MANDATORY,
                                               AVP_FLAG_PRIVATE, AVP_FLAG_VENDOR,
                                               AVP_OCCURS_TOO_MANY_TIMES, AVP_UNSUPPORTED,
                                               CMD_AA_MOBILE_NODE,
                                               CMD_CAPABILITIES_EXCHANGE,
                                               CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER,
                                               CMD_HOME_AGENT_MIP, COMMAND_UNSUPPORTED,
                                               ERROR_HA_NOT_AVAILABLE,
                                               ERROR_MIP_REPLY_FAILURE, FLAG_ERROR,
                                               FLAG_PROXIABLE, FLAG_REQUEST,
                                               FLAG_RETRANSMIT, FORBIDDEN_AVP_CODES,
                                               INVALID_AVP_BITS, INVALID_AVP_LENGTH,
                                               INVALID_AVP_VALUE, INVALID_HDR_BITS,
                                               INVALID_MESSAGE_LENGTH, KNOWN_IETF_AVPS,
                                               MIP4_APPLICATION_ID, MISSING_AVP,
                                               NO_COMMON_APPLICATION, REALM_NOT_SERVED,
                                               RELAY_APPLICATION_ID, SUCCESS,
                                               UNABLE_TO_COMPLY, UNABLE_TO_DELIVER,
                                               UNKNOWN_PEER, UNSUPPORTED_VERSION)
from controller.proto.diameter.vendor import (DISTRIBUTION_CODES, PRODUCT_NAME,
                                              VA_DISTRIBUTION, VA_ESP_PROPOSAL,
                                              VA_FOREIGN_AGENT, VA_GATEWAY_ADDRESS,
                                              VA_GATEWAY_NAME, VA_HANDOFF_TUNNEL,
                                              VA_HOME_ADDRESS, VA_HOME_AGENT,
                                              VA_IKE_PROPOSAL, VA_INITIATOR, VA_MN_FA_SPI,
                                              VA_MN_TO_FA_MSA, VA_NAI, VA_PREVIOUS_FA,
                                              VA_PREVIOUS_FA_ADDRESS, VA_PSK, VA_QOS_DSCP,
                                              VA_QOS_RATE_KBPS, VA_SEAMLESS_HANDOVER,
                                              VA_SERVICE_UPDATE,
                                              VA_SESSION_SECRET, VA_SMOOTH_HANDOFF,
                                              VA_TRAFFIC_SELECTOR, VA_TUNNEL,
                                              VA_TUNNEL_END_A, VA_TUNNEL_END_B,
                                              VA_TUNNEL_ID, VA_VPN_INFO, VENDOR_AVPS,
                                              VENDOR_ID)
from controller.proto.diameter.messages import (AmAnswer, AmRequest, Answer, Cea, Cer,
                                                DiameterDecodeError, DiameterEncodeError,
                                                DiameterHeader, DiameterMessage, Dpa, Dpr,
                                                Dwa, Dwr, HaAnswer, HaRequest, MnFaNonce,
                                                MsaKey, Request, REQUEST_TYPES)
from controller.proto.diameter.templates import encode_fast, vpn_info_payload
from controller.proto.diameter.encoding import encode, encode_error_answer, vpn_info_avp
from controller.proto.diameter.decoding import decode
from controller.proto.diameter.framing import parse_avps, parse_header, RawAvp
from controller.proto.diameter.walk import GROUPED_AVPS, walk_avp_codes

# Every name imported above is part of the package's interface (sorted).
__all__ = [
    "APPLICATION_UNSUPPORTED", "AUTHENTICATION_REJECTED", "AUTHORIZATION_REJECTED",
    "AVP_ACCOUNTING_MULTI_SESSION_ID", "AVP_ACCT_APPLICATION_ID", "AVP_AUTHORIZATION_LIFETIME",
    "AVP_AUTH_APPLICATION_ID", "AVP_AUTH_SESSION_STATE", "AVP_DESTINATION_HOST",
    "AVP_DESTINATION_REALM", "AVP_DISCONNECT_CAUSE", "AVP_ERROR_MESSAGE",
    "AVP_ERROR_REPORTING_HOST", "AVP_EXPERIMENTAL_RESULT", "AVP_FAILED_AVP",
    "AVP_FIRMWARE_REVISION", "AVP_FLAG_MANDATORY", "AVP_FLAG_PRIVATE", "AVP_FLAG_VENDOR",
    "AVP_HOST_IP_ADDRESS", "AVP_INBAND_SECURITY_ID", "AVP_MIP_ALGORITHM_TYPE",
    "AVP_MIP_AUTHENTICATOR_LENGTH", "AVP_MIP_AUTHENTICATOR_OFFSET",
    "AVP_MIP_AUTH_INPUT_DATA_LENGTH", "AVP_MIP_CANDIDATE_HOME_AGENT_HOST",
    "AVP_MIP_FA_CHALLENGE", "AVP_MIP_FA_TO_HA_MSA", "AVP_MIP_FA_TO_HA_SPI",
    "AVP_MIP_FA_TO_MN_MSA", "AVP_MIP_FA_TO_MN_SPI", "AVP_MIP_FEATURE_VECTOR",
    "AVP_MIP_FILTER_RULE", "AVP_MIP_HA_TO_FA_MSA", "AVP_MIP_HA_TO_FA_SPI",
    "AVP_MIP_HA_TO_MN_MSA", "AVP_MIP_HOME_AGENT_ADDRESS", "AVP_MIP_HOME_AGENT_HOST",
    "AVP_MIP_MN_AAA_AUTH", "AVP_MIP_MN_AAA_SPI", "AVP_MIP_MN_TO_FA_MSA", "AVP_MIP_MN_TO_HA_MSA",
    "AVP_MIP_MOBILE_NODE_ADDRESS", "AVP_MIP_MSA_LIFETIME", "AVP_MIP_NONCE",
    "AVP_MIP_ORIGINATING_FOREIGN_AAA", "AVP_MIP_REG_REPLY", "AVP_MIP_REG_REQUEST",
    "AVP_MIP_REPLAY_MODE", "AVP_MIP_SESSION_KEY", "AVP_OCCURS_TOO_MANY_TIMES",
    "AVP_ORIGIN_HOST", "AVP_ORIGIN_REALM", "AVP_ORIGIN_STATE_ID", "AVP_PRODUCT_NAME",
    "AVP_PROXY_INFO", "AVP_RESULT_CODE", "AVP_RE_AUTH_REQUEST_TYPE", "AVP_ROUTE_RECORD",
    "AVP_SESSION_ID", "AVP_SUPPORTED_VENDOR_ID", "AVP_UNSUPPORTED", "AVP_USER_NAME",
    "AVP_VENDOR_ID", "AVP_VENDOR_SPECIFIC_APPLICATION_ID", "AaMobileNodeAnswer",
    "AaMobileNodeRequest", "AmAnswer", "AmRequest", "Answer", "Avp", "AvpAddress", "AvpGrouped",
    "AvpOctetString", "AvpUnsigned32", "AvpUtf8String", "CMD_AA_MOBILE_NODE",
    "CMD_CAPABILITIES_EXCHANGE", "CMD_DEVICE_WATCHDOG", "CMD_DISCONNECT_PEER",
    "CMD_HOME_AGENT_MIP", "COMMAND_UNSUPPORTED", "CapabilitiesExchangeAnswer",
    "CapabilitiesExchangeRequest", "Cea", "Cer", "DISTRIBUTION_CODES", "DeviceWatchdogAnswer",
    "DeviceWatchdogRequest", "DiameterDecodeError", "DiameterEncodeError", "DiameterHeader",
    "DiameterMessage", "DisconnectPeerAnswer", "DisconnectPeerRequest", "Dpa", "Dpr", "Dwa",
    "Dwr", "ERROR_HA_NOT_AVAILABLE", "ERROR_MIP_REPLY_FAILURE", "FLAG_ERROR", "FLAG_PROXIABLE",
    "FLAG_REQUEST", "FLAG_RETRANSMIT", "FORBIDDEN_AVP_CODES", "GROUPED_AVPS", "HaAnswer",
    "HaRequest", "HomeAgentMipAnswer", "HomeAgentMipRequest", "INVALID_AVP_BITS",
    "INVALID_AVP_LENGTH", "INVALID_AVP_VALUE", "INVALID_HDR_BITS", "INVALID_MESSAGE_LENGTH",
    "KNOWN_IETF_AVPS", "MIP4_APPLICATION_ID", "MISSING_AVP", "Message", "MessageHeader",
    "MipFaToHaMsa", "MipFaToMnMsa", "MipHaToFaMsa", "MipMnAaaAuth", "MipOriginatingForeignAaa",
    "MnFaNonce", "MsaKey", "NO_COMMON_APPLICATION", "PRODUCT_NAME", "REALM_NOT_SERVED",
    "RELAY_APPLICATION_ID", "REQUEST_TYPES", "RawAvp", "Request", "SUCCESS", "UNABLE_TO_COMPLY",
    "UNABLE_TO_DELIVER", "UNKNOWN_PEER", "UNSUPPORTED_VERSION", "VA_DISTRIBUTION",
    "VA_ESP_PROPOSAL", "VA_FOREIGN_AGENT", "VA_GATEWAY_ADDRESS", "VA_GATEWAY_NAME",
    "VA_HANDOFF_TUNNEL", "VA_HOME_ADDRESS", "VA_HOME_AGENT", "VA_IKE_PROPOSAL", "VA_INITIATOR",
    "VA_MN_FA_SPI", "VA_MN_TO_FA_MSA", "VA_NAI", "VA_PREVIOUS_FA", "VA_PREVIOUS_FA_ADDRESS",
    "VA_PSK", "VA_QOS_DSCP", "VA_QOS_RATE_KBPS", "VA_SEAMLESS_HANDOVER",
    "VA_SERVICE_UPDATE", "VA_SESSION_SECRET",
    "VA_SMOOTH_HANDOFF", "VA_TRAFFIC_SELECTOR", "VA_TUNNEL", "VA_TUNNEL_END_A",
    "VA_TUNNEL_END_B", "VA_TUNNEL_ID", "VA_VPN_INFO", "VENDOR_AVPS", "VENDOR_ID", "decode",
    "encode", "encode_error_answer", "encode_fast", "parse_avps", "parse_header", "vpn_info_avp",
    "vpn_info_payload", "walk_avp_codes",
]

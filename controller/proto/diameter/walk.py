"""Walking a Diameter message's AVP tree, for tests and audits (``walk_avp_codes``):
the decoder itself reads only what each message kind holds (``decoding``)."""

from __future__ import annotations

from diameter.message.constants import (AVP_EXPERIMENTAL_RESULT, AVP_FAILED_AVP,
                                        AVP_MIP_FA_TO_HA_MSA, AVP_MIP_FA_TO_MN_MSA,
                                        AVP_MIP_HA_TO_FA_MSA, AVP_MIP_HA_TO_MN_MSA,
                                        AVP_MIP_HOME_AGENT_HOST, AVP_MIP_MN_AAA_AUTH,
                                        AVP_MIP_MN_TO_FA_MSA, AVP_MIP_MN_TO_HA_MSA,
                                        AVP_MIP_ORIGINATING_FOREIGN_AAA, AVP_PROXY_INFO,
                                        AVP_VENDOR_SPECIFIC_APPLICATION_ID)

from controller.proto.diameter.framing import parse_avps
from controller.proto.diameter.vendor import (VA_HANDOFF_TUNNEL, VA_MN_TO_FA_MSA, VA_TUNNEL,
                                              VA_TUNNEL_END_A, VA_TUNNEL_END_B, VA_VPN_INFO,
                                              VENDOR_ID)

#: Grouped AVPs (IETF: vendor 0; ours: VENDOR_ID) that ``walk_avp_codes`` descends into.
GROUPED_AVPS = frozenset({
    (AVP_VENDOR_SPECIFIC_APPLICATION_ID, 0), (AVP_FAILED_AVP, 0), (AVP_PROXY_INFO, 0),
    (AVP_EXPERIMENTAL_RESULT, 0), (AVP_MIP_MN_AAA_AUTH, 0), (AVP_MIP_MN_TO_FA_MSA, 0),
    (AVP_MIP_FA_TO_MN_MSA, 0), (AVP_MIP_FA_TO_HA_MSA, 0), (AVP_MIP_HA_TO_FA_MSA, 0),
    (AVP_MIP_MN_TO_HA_MSA, 0), (AVP_MIP_HA_TO_MN_MSA, 0),
    (AVP_MIP_ORIGINATING_FOREIGN_AAA, 0), (AVP_MIP_HOME_AGENT_HOST, 0),
    (VA_VPN_INFO, VENDOR_ID), (VA_TUNNEL, VENDOR_ID), (VA_HANDOFF_TUNNEL, VENDOR_ID),
    (VA_MN_TO_FA_MSA, VENDOR_ID), (VA_TUNNEL_END_A, VENDOR_ID), (VA_TUNNEL_END_B, VENDOR_ID),
})


def walk_avp_codes(data: bytes) -> list[tuple[int, int, int]]:
    """Every (code, flags, vendor) in a message's AVP tree, descending into the
    ``GROUPED_AVPS``.  For tests and audits (e.g. ``FORBIDDEN_AVP_CODES``)."""
    out: list[tuple[int, int, int]] = []

    def walk(buf: bytes, start: int) -> None:
        for a in parse_avps(buf, start):
            out.append((a.code, a.flags, a.vendor))
            if (a.code, a.vendor) in GROUPED_AVPS:
                walk(a.data, 0)

    walk(data, 20)
    return out

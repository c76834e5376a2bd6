"""Route-Record and Proxy-Info (RFC 6733 §6.1.9, §6.7.1, §6.7.3; issue 17): requests
that pass a relay carry them; our codec keeps them, and every answer echoes the
request's Proxy-Info AVPs in order, on the hop-by-hop id the relay chose."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace

import pytest

from controller.adapters.diameter_peer import DiameterNode, PeerConnection
from controller.proto import diameter as d
from controller.proto.diameter import AmAnswer, AmRequest, Answer, Request

from tests.unit.proto.test_diameter_codec import AMA, AMR, HAA, HAR
from tests.unit.proto.test_diameter_errors import (HOST, M, RawPeer, avp, result_code, run,
                                                  with_extra)

PROXY_HOST, PROXY_STATE = 280, 33


def proxy_info(host: bytes, state: bytes) -> bytes:
    """A Proxy-Info AVP's content: { Proxy-Host } { Proxy-State }."""
    return avp(PROXY_HOST, host) + avp(PROXY_STATE, state, flags=M)


PI_1 = proxy_info(b"relay1.example", b"\x00\x01state-one")
PI_2 = proxy_info(b"relay2.example", b"two")


def test_amr_route_record_and_proxy_info_round_trip() -> None:
    amr = replace(AMR, route_record=("fa1.foreign.example", "aaaf.foreign.example"),
                  proxy_info=(PI_1, PI_2))
    assert d.decode(d.encode(amr)) == amr


def test_har_and_answers_round_trip_with_proxy_info() -> None:
    for msg in (replace(HAR, route_record=("x.example",), proxy_info=(PI_2,)),
                replace(AMA, proxy_info=(PI_1, PI_2)), replace(HAA, proxy_info=(PI_2, PI_1))):
        assert d.decode(d.encode(msg)) == msg


def test_decoded_from_wire_in_order() -> None:
    """AVPs a relay adds at the end of a request we encoded are read back in order."""
    wire = with_extra(d.encode(AMR), avp(d.AVP_ROUTE_RECORD, b"aaaf.foreign.example"),
                      avp(d.AVP_PROXY_INFO, PI_2), avp(d.AVP_ROUTE_RECORD, b"relay.example"),
                      avp(d.AVP_PROXY_INFO, PI_1))
    got = d.decode(wire)
    assert isinstance(got, AmRequest)
    assert got.route_record == ("aaaf.foreign.example", "relay.example")
    assert got.proxy_info == (PI_2, PI_1)


def test_proxy_info_without_proxy_host_is_5005() -> None:
    broken = avp(d.AVP_PROXY_INFO, avp(PROXY_STATE, b"s"))
    with pytest.raises(d.DiameterDecodeError) as e:
        d.decode(with_extra(d.encode(AMR), broken))
    assert e.value.result_code == d.MISSING_AVP


def test_route_record_not_an_identity_is_5004() -> None:
    with pytest.raises(d.DiameterDecodeError) as e:
        d.decode(with_extra(d.encode(AMR), avp(d.AVP_ROUTE_RECORD, "réseau".encode())))
    assert e.value.result_code == d.INVALID_AVP_VALUE


# ------------------------------------------------------------------ the transport


async def _answer_without_proxy_info(req: Request, conn: PeerConnection) -> Answer:
    assert not isinstance(req, d.HaRequest)
    return AmAnswer(req.session_id, d.SUCCESS, "aaah.home.example", "home.example",
                    user_name=req.user_name)


async def _relay_sends(amr: AmRequest, handler: object = _answer_without_proxy_info
                       ) -> tuple[AmRequest, Answer, list[AmRequest]]:
    seen: list[AmRequest] = []

    async def handle(req: Request, conn: PeerConnection) -> Answer:
        assert isinstance(req, AmRequest)
        seen.append(req)
        return await handler(req, conn)  # type: ignore[operator,no-any-return]

    server = DiameterNode("aaah.home.example", "home.example", handler=handle,
                          watchdog_interval=0)
    relay = DiameterNode("relay.example", "relay.example", watchdog_interval=0)
    port = await server.listen(HOST, 0)
    try:
        conn = await relay.connect(HOST, port)
        sent = replace(amr, hop_by_hop=0)
        answer = await relay.request(sent, peer=conn)
        return sent, answer, seen
    finally:
        await relay.close()
        await server.close()


def test_answer_echoes_proxy_info_in_order_on_the_relays_hop_by_hop() -> None:
    amr = replace(AMR, route_record=("aaaf.foreign.example",), proxy_info=(PI_1, PI_2))
    _, answer, seen = run(_relay_sends(amr))
    assert seen[0].proxy_info == (PI_1, PI_2)
    assert seen[0].route_record == ("aaaf.foreign.example",)
    assert answer.proxy_info == (PI_1, PI_2)
    # the answer travelled on the hop-by-hop id the relay chose (else it would not
    # have been matched to its request) and kept the end-to-end id
    assert answer.hop_by_hop == seen[0].hop_by_hop
    assert answer.end_to_end == seen[0].end_to_end


def test_error_answer_of_a_failing_handler_echoes_proxy_info() -> None:
    async def broken(req: Request, conn: PeerConnection) -> Answer:
        raise RuntimeError("bug")
    amr = replace(AMR, proxy_info=(PI_2,))
    _, answer, _ = run(_relay_sends(amr, broken))
    assert answer.result_code == d.UNABLE_TO_COMPLY
    assert answer.proxy_info == (PI_2,)


def test_proxy_info_sits_in_the_answer_on_the_wire() -> None:
    wire = d.encode(replace(AMA, proxy_info=(PI_1,)))
    infos = [a for a in d.parse_avps(wire, 20) if a.code == d.AVP_PROXY_INFO]
    assert [a.flags & M for a in infos] == [M]
    assert infos[0].data == PI_1
    assert result_code(wire) == AMA.result_code
    assert struct.unpack("!I", wire[12:16])[0] == AMA.hop_by_hop


# ------------------------------------------------------------------ capabilities


def test_cer_of_a_relay_advertising_only_the_relay_application_is_accepted() -> None:
    """A relay agent advertises Auth-Application-Id 0xffffffff (RFC 6733 §2.4, §5.3)
    and nothing else: our listener accepts it, and its requests are answered."""
    async def main() -> None:
        server = DiameterNode("aaah.home.example", "home.example", watchdog_interval=0,
                              handler=_answer_without_proxy_info)
        port = await server.listen(HOST, 0)
        peer = RawPeer(*await asyncio.open_connection(HOST, port))
        try:
            peer.writer.write(d.encode(d.Cer(
                "dra.transit.example", "transit.example", ("127.0.0.1",),
                auth_application_ids=(d.RELAY_APPLICATION_ID,), hop_by_hop=5,
                end_to_end=6)))
            cea = d.decode(await peer.read())
            assert isinstance(cea, d.Cea) and cea.result_code == d.SUCCESS
            ans = d.decode(await peer.exchange(d.encode(replace(AMR, hop_by_hop=77,
                                                                proxy_info=(PI_1,)))))
            assert isinstance(ans, AmAnswer) and ans.result_code == d.SUCCESS
            assert ans.hop_by_hop == 77 and ans.proxy_info == (PI_1,)
            # one advertising neither MIPv4 nor Relay has nothing in common with us
            other = RawPeer(*await asyncio.open_connection(HOST, port))
            other.writer.write(d.encode(d.Cer("x.example", "x.example", ("127.0.0.1",),
                                              auth_application_ids=(4,), hop_by_hop=1,
                                              end_to_end=1)))
            refused = d.decode(await other.read())
            assert isinstance(refused, d.Cea)
            assert refused.result_code == d.NO_COMMON_APPLICATION
            other.close()
        finally:
            peer.close()
            await server.close()
    run(main())


def test_cea_of_a_relay_advertising_only_the_relay_application_is_accepted() -> None:
    """Our AAAF dialling a relay: its CEA names the relay's realm and the Relay
    application; the connection opens and carries the home realm's requests."""
    async def relay_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                         ) -> None:
        peer = RawPeer(reader, writer)
        cer = d.decode(await peer.read())
        assert isinstance(cer, d.Cer)
        writer.write(d.encode(d.Cea(d.SUCCESS, "dra.transit.example", "transit.example",
                                    ("127.0.0.1",),
                                    auth_application_ids=(d.RELAY_APPLICATION_ID,),
                                    hop_by_hop=cer.hop_by_hop,
                                    end_to_end=cer.end_to_end)))
        amr = d.decode(await peer.read())
        assert isinstance(amr, AmRequest)
        writer.write(d.encode(AmAnswer(amr.session_id, d.SUCCESS, "aaah.home.example",
                                       "home.example", hop_by_hop=amr.hop_by_hop,
                                       end_to_end=amr.end_to_end)))
        await asyncio.sleep(0.5)
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(relay_side, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        aaaf = DiameterNode("aaaf.foreign.example", "foreign.example", watchdog_interval=0)
        try:
            conn = await aaaf.connect(HOST, port)
            assert conn.open and conn.remote_realm == "transit.example"
            aaaf.add_route("home.example", conn)
            ans = await aaaf.request(replace(AMR, hop_by_hop=0))
            assert ans.result_code == d.SUCCESS
        finally:
            await aaaf.close()
            server.close()
            await server.wait_closed()
    run(main())

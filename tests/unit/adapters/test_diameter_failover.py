"""RFC 6733 §5.5.4 failover: a request pending on a connection that drops is resent,
with the 'T' flag, the same End-to-End id and a new Hop-by-Hop id, on the next
available connection for its destination (the same link redialled, or another peer of
the realm), within its one overall deadline; a receiver answers such a retransmission
of a request it has seen again from its answer instead of processing it twice."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from controller.adapters.diameter_peer import (DiameterConnectionError, DiameterError,
                                               DiameterNode, PeerConnection)
from controller.proto import diameter as d
from controller.proto.diameter import AmAnswer, AmRequest, Answer, Request
from tests.unit.proto.test_diameter_codec import AMR, VPN
from tests.unit.proto.test_diameter_errors import HOST, run


class Home:
    """A home server; ``drop``: how many of the first requests it receives make it
    close the connection they came on (the answer then never leaves)."""

    def __init__(self, host: str = "aaah.home.example", drop: int = 1) -> None:
        self.drop = drop
        self.seen: list[tuple[int, int, bool]] = []    # (hop-by-hop, end-to-end, T)
        self.calls = 0
        self.node = DiameterNode(host, "home.example", handler=self.handle)

    async def handle(self, req: Request, conn: PeerConnection) -> Answer:
        self.calls += 1
        self.seen.append((req.hop_by_hop, req.end_to_end, conn.retransmitted(req)))
        if self.drop > 0:
            self.drop -= 1
            conn.close()              # the transport fails with this request pending
        return AmAnswer(req.session_id, d.SUCCESS, self.node.origin_host, "home.example",
                        user_name=req.user_name, reg_reply=b"\x03" * 20, vpn_info=VPN)


def test_pending_request_resent_on_the_redialled_link_with_t_flag() -> None:
    async def main() -> None:
        home = Home()
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=3.0)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(0.05, 0.2))
        t0 = time.monotonic()
        answer = await fa.request(AMR, peer=conn)
        assert answer.result_code == d.SUCCESS
        assert time.monotonic() - t0 < 1.0            # redialled at once, not backed off
        assert fa.counters["resent"] == 1
        # the resend came with the T flag; the home server had answered the first
        # (the answer lost with the connection): answered again, not processed twice
        assert home.node.counters["retransmitted_received"] == 1
        assert home.node.counters["duplicate_answered"] == 1 and home.calls == 1
        assert not fa._open_waiters
        await fa.close()
        await home.node.close()
    run(main())


def test_pending_request_resent_to_another_peer_of_the_realm() -> None:
    async def main() -> None:
        a, b = Home("aaah1.home.example"), Home("aaah2.home.example", drop=0)
        port_a, port_b = await a.node.listen(HOST, 0), await b.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=3.0)
        conn_a = await fa.connect(HOST, port_a)               # the realm's route
        await fa.connect(HOST, port_b)                        # an alternate peer
        assert fa.routes["home.example"] is conn_a
        amr = dataclasses.replace(AMR, destination_host="")     # any server of the realm
        answer = await fa.request(amr)
        assert answer.origin_host == "aaah2.home.example"
        assert [t for _, _, t in b.seen] == [True]      # the resend has the T flag
        assert a.seen[0][1] == b.seen[0][1]             # same End-to-End id
        assert a.seen[0][0] != b.seen[0][0]             # new Hop-by-Hop id
        assert fa.counters["resent"] == 1
        # a new request while the route's peer is down takes the alternate too
        assert (await fa.request(amr)).origin_host == "aaah2.home.example"
        await fa.close()
        await a.node.close()
        await b.node.close()
    run(main())


def test_pending_request_without_a_next_connection_fails_at_its_deadline() -> None:
    async def main() -> None:
        home = Home()
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=0.4)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(0.05, 0.1))
        for server in home.node._servers:         # nobody to redial
            server.close()
        t0 = time.monotonic()
        try:
            await fa.request(AMR, peer=conn)
        except DiameterError as e:
            assert isinstance(e, DiameterConnectionError), e
        else:
            raise AssertionError("answered without a peer")
        waited = time.monotonic() - t0
        assert 0.3 <= waited < 0.8, waited            # its one deadline, not stacked
        assert not fa._open_waiters and not conn._pending
        await fa.close()
        await home.node.close()
    run(main())


def test_node_close_ends_a_request_waiting_for_its_next_connection() -> None:
    async def main() -> None:
        home = Home()
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=30.0)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(5.0, 5.0))
        for server in home.node._servers:
            server.close()
        task = asyncio.ensure_future(fa.request(AMR, peer=conn))
        for _ in range(300):
            if fa._open_waiters:
                break
            await asyncio.sleep(0.01)
        assert fa._open_waiters, "the request did not wait for its next connection"
        await fa.close()
        try:
            await asyncio.wait_for(task, 1.0)
        except DiameterConnectionError:
            pass
        else:
            raise AssertionError("answered without a peer")
        await home.node.close()
    run(main())


def test_retransmission_of_an_answered_request_answered_again_not_reprocessed() -> None:
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        conn = await fa.connect(HOST, port)
        first = await fa.request(AMR, peer=conn)
        e2e = home.seen[0][1]
        again = await conn.request(AMR, 2.0, ids=(fa.next_hop_by_hop(), e2e),
                                   retransmit=True)
        assert home.calls == 1                       # the role did not see it twice
        assert isinstance(again, AmAnswer) and again.result_code == first.result_code
        assert again.end_to_end == e2e
        assert home.node.counters["duplicate_answered"] == 1
        # without the T flag, or from another End-to-End id: processed as new
        await conn.request(AMR, 2.0, ids=(fa.next_hop_by_hop(), e2e))
        await conn.request(AMR, 2.0, ids=(fa.next_hop_by_hop(), e2e + 1), retransmit=True)
        assert home.calls == 3
        await fa.close()
        await home.node.close()
    run(main())


def test_retransmission_while_the_original_is_in_progress_joins_it() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        calls = 0

        async def slow(req: Request, conn: PeerConnection) -> Answer:
            nonlocal calls
            calls += 1
            await gate.wait()
            return AmAnswer(req.session_id, d.SUCCESS, "aaah.home.example", "home.example",
                            user_name=req.user_name, reg_reply=b"\x03" * 20)

        home = DiameterNode("aaah.home.example", "home.example", handler=slow)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        conn = await fa.connect(HOST, port)
        e2e = fa.next_end_to_end()
        first = asyncio.ensure_future(conn.request(AMR, 2.0, ids=(fa.next_hop_by_hop(), e2e)))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(conn.request(AMR, 2.0, ids=(fa.next_hop_by_hop(), e2e),
                                                    retransmit=True))
        await asyncio.sleep(0.05)
        gate.set()
        answers: list[Any] = list(await asyncio.gather(first, second))
        assert calls == 1 and all(a.result_code == d.SUCCESS for a in answers)
        await fa.close()
        await home.close()
    run(main())


def test_request_header_t_flag_helpers() -> None:
    data = d.encode(AMR, ids=(7, 9), retransmit=True)
    hdr = d.parse_header(data[:20])
    assert hdr.is_retransmit and hdr.hop_by_hop == 7 and hdr.end_to_end == 9
    assert hdr.flags & d.FLAG_REQUEST
    assert not d.parse_header(d.encode(AMR)[:20]).is_retransmit
    assert isinstance(d.decode(data), AmRequest)


async def _drop_from_the_server_side(home: DiameterNode, conn: PeerConnection) -> None:
    for c in list(home.connections):
        c.close()
    while conn.open:
        await asyncio.sleep(0)


def test_new_request_while_a_dropped_link_is_redialled_at_once_waits_for_it() -> None:
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=3.0)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(0.05, 0.2))
        await asyncio.sleep(0.1)                  # up longer than the backoff's start
        await _drop_from_the_server_side(home.node, conn)
        assert conn.redialling
        assert (await fa.request(AMR, peer=conn)).result_code == d.SUCCESS
        assert fa.counters["peer_unavailable"] == 0 and fa.counters["reconnected"] == 1
        assert not conn.redialling and not fa._open_waiters
        await fa.close()
        await home.node.close()
    run(main())


def test_new_request_fails_at_once_when_the_immediate_redial_fails() -> None:
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=5.0)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(0.05, 5.0))
        await asyncio.sleep(0.1)
        for server in home.node._servers:         # nobody answers the redial
            server.close()
        await _drop_from_the_server_side(home.node, conn)
        t0 = time.monotonic()
        try:
            await fa.request(AMR, peer=conn)
        except DiameterConnectionError as e:
            assert "reconnecting" in str(e)
        else:
            raise AssertionError("answered without a peer")
        assert time.monotonic() - t0 < 0.5
        assert fa.counters["peer_unavailable"] == 1 and not fa._open_waiters
        await fa.close()
        await home.node.close()
    run(main())


def test_retransmission_from_another_peer_is_not_answered_from_the_cache() -> None:
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa1 = DiameterNode("fa1.foreign.example", "foreign.example")
        other = DiameterNode("fa9.foreign.example", "foreign.example")
        await fa1.connect(HOST, port)
        conn9 = await other.connect(HOST, port)
        await fa1.request(AMR)
        e2e = home.seen[0][1]
        # the same Origin-Host AVP and End-to-End id, from another peer: processed
        # anew (an answer, which carries keys, goes only to the peer that asked)
        await conn9.request(AMR, 2.0, ids=(other.next_hop_by_hop(), e2e), retransmit=True)
        assert home.calls == 2 and home.node.counters["duplicate_answered"] == 0
        for node in (fa1, other, home.node):
            await node.close()
    run(main())


def test_retransmission_of_another_session_is_not_answered_from_the_cache() -> None:
    async def main() -> None:
        home = Home(drop=0)
        port = await home.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        conn = await fa.connect(HOST, port)
        await fa.request(AMR, peer=conn)
        e2e = home.seen[0][1]
        # the same peer and End-to-End id (a restarted process reusing it, or one of
        # two replicas sharing the identity) but another session: its own answer,
        # never the first session's (which carries that session's keys)
        other = dataclasses.replace(AMR, session_id=AMR.session_id + ";other",
                                    user_name="mallory@home.example")
        again = await conn.request(other, 2.0, ids=(fa.next_hop_by_hop(), e2e),
                                   retransmit=True)
        assert home.calls == 2 and home.node.counters["duplicate_answered"] == 0
        assert again.session_id == other.session_id
        await fa.close()
        await home.node.close()
    run(main())


def test_request_to_a_named_peer_is_not_failed_over_to_another_host() -> None:
    async def main() -> None:
        a, b = Home("aaah1.home.example"), Home("aaah2.home.example", drop=0)
        port_a, port_b = await a.node.listen(HOST, 0), await b.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=1.0)
        conn_a = await fa.connect(HOST, port_a)
        await fa.connect(HOST, port_b)
        try:        # the caller chose aaah1: its session and keys go nowhere else
            await fa.request(AMR, peer=conn_a)
        except DiameterConnectionError:
            pass
        else:
            raise AssertionError("answered by another peer than the one named")
        assert b.calls == 0 and fa.counters["resent"] == 0
        for node in (fa, a.node, b.node):
            await node.close()
    run(main())


def test_request_with_a_destination_host_is_not_failed_over_to_another_host() -> None:
    async def main() -> None:
        a, b = Home("aaah1.home.example"), Home("aaah2.home.example", drop=0)
        port_a, port_b = await a.node.listen(HOST, 0), await b.node.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example", request_timeout=1.0)
        await fa.connect(HOST, port_a)                        # the realm's route
        await fa.connect(HOST, port_b)
        amr = dataclasses.replace(AMR, destination_host="aaah1.home.example")
        try:        # RFC 6733 §6.1: Destination-Host names the one server
            await fa.request(amr)
        except DiameterError:      # the link lost, or no route to that host
            pass
        else:
            raise AssertionError("answered by a host the request did not name")
        assert b.calls == 0
        # the route down, a new request for aaah1 does not go to aaah2 either
        try:
            await fa.request(amr)
        except DiameterError:      # the link lost, or no route to that host
            pass
        else:
            raise AssertionError("answered by a host the request did not name")
        assert b.calls == 0
        for node in (fa, a.node, b.node):
            await node.close()
    run(main())

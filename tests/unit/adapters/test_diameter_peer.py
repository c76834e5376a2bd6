"""DiameterNode over loopback TCP: CER/CEA, relay by realm, DWR/DWA, bad input, timeouts."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from typing import Any

import pytest

from controller.adapters.diameter_peer import (DiameterNoRoute, DiameterNode,
                                               DiameterTimeout, PeerConnection)
from controller.proto import diameter as d
from controller.proto.diameter import AmAnswer, AmRequest, Answer, Request

from tests.unit.proto.test_diameter_codec import AMR, VPN

HOST = "127.0.0.1"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 10))


async def home_handler(req: Request, conn: PeerConnection) -> Answer:
    assert isinstance(req, AmRequest)
    return AmAnswer(req.session_id, d.SUCCESS, "aaah.home.example", "home.example",
                    user_name=req.user_name, reg_reply=b"\x03" * 20,
                    home_address=req.home_address, vpn_info=VPN)


def test_cer_cea_and_routes() -> None:
    async def main() -> None:
        home = DiameterNode("aaah.home.example", "home.example", handler=home_handler)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        conn = await fa.connect(HOST, port)
        assert conn.open and conn.remote_host == "aaah.home.example"
        assert fa.routes["home.example"] is conn
        await asyncio.sleep(0.05)
        srv = home.peer_for_host("fa1.foreign.example")
        assert srv is not None and srv.remote_realm == "foreign.example"
        await fa.close()
        await home.close()
    run(main())


def test_amr_ama_through_relay() -> None:
    async def main() -> None:
        home = DiameterNode("aaah.home.example", "home.example", handler=home_handler)
        home_port = await home.listen(HOST, 0)
        seen: list[AmRequest] = []

        async def relay_handler(req: Request, conn: PeerConnection) -> Answer:
            assert isinstance(req, AmRequest)
            seen.append(req)
            fwd = replace(req, originating_foreign_aaa=("foreign.example",
                                                        "aaaf.foreign.example"))
            return await relay.request(fwd)       # routed by Destination-Realm

        relay = DiameterNode("aaaf.foreign.example", "foreign.example",
                             handler=relay_handler)
        relay_port = await relay.listen(HOST, 0)
        await relay.connect(HOST, home_port)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        to_relay = await fa.connect(HOST, relay_port)

        answer = await fa.request(replace(AMR, hop_by_hop=0, end_to_end=0),
                                  peer=to_relay)
        assert isinstance(answer, AmAnswer)
        assert answer.result_code == d.SUCCESS and answer.vpn_info == VPN
        assert answer.session_id == AMR.session_id
        # the relay kept the end-to-end id and used its own hop-by-hop id
        assert seen[0].end_to_end == answer.end_to_end != 0
        assert fa.latencies and fa.latencies[-1] < 1.0
        # several concurrent requests, answers correlated by hop-by-hop id
        reqs = [replace(AMR, session_id=f"s;{i}", hop_by_hop=0, end_to_end=0)
                for i in range(20)]
        answers = await asyncio.gather(*(fa.request(r, peer=to_relay) for r in reqs))
        assert [a.session_id for a in answers] == [r.session_id for r in reqs]
        for node in (fa, relay, home):
            await node.close()
    run(main())


def test_no_route() -> None:
    async def main() -> None:
        fa = DiameterNode("fa1", "foreign.example")
        with pytest.raises(DiameterNoRoute):
            await fa.request(AMR)
    run(main())


def test_watchdog() -> None:
    async def main() -> None:
        home = DiameterNode("aaah", "home.example", watchdog_interval=0.05)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example", watchdog_interval=0.05)
        conn = await fa.connect(HOST, port)
        await asyncio.sleep(0.3)
        assert fa.counters["dwa_received"] >= 3
        assert home.counters["dwa_received"] >= 3
        assert conn.open and fa.counters["watchdog_timeout"] == 0
        await fa.close()
        await home.close()
    run(main())


async def _raw_exchange(port: int, data: bytes) -> bytes:
    """Send CER then ``data`` on a raw socket; return the bytes of the second answer
    (b"" if the connection closed first)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(d.encode(d.Cer("raw", "raw.example", ("127.0.0.1",), hop_by_hop=1,
                                end_to_end=1)))
    head = await reader.readexactly(20)
    await reader.readexactly(d.parse_header(head).length - 20)
    writer.write(data)
    try:
        head = await asyncio.wait_for(reader.readexactly(20), 2)
        body = await reader.readexactly(d.parse_header(head).length - 20)
        return head + body
    except asyncio.IncompleteReadError:
        return b""
    finally:
        writer.close()


def test_malformed_input() -> None:
    async def main() -> None:
        home = DiameterNode("aaah.home.example", "home.example", handler=home_handler)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example")
        good = await fa.connect(HOST, port)

        # 1. unknown M-bit AVP: 5001 with Failed-AVP, connection stays usable
        amr = d.encode(AMR)
        bad = amr + struct.pack("!III", 99999, (0x40 << 24) | 12, 0)
        bad = bad[:1] + struct.pack("!I", len(bad))[1:] + bad[4:]
        ans = d.decode(await _raw_exchange(port, bad))
        assert isinstance(ans, AmAnswer) and ans.result_code == d.AVP_UNSUPPORTED
        assert ans.hop_by_hop == AMR.hop_by_hop

        # 2. missing Origin-Host: 5005
        avps = [a.raw for a in d.parse_avps(amr, 20) if a.code != 264]
        body = b"".join(a + b"\0" * (-len(a) % 4) for a in avps)
        msg = struct.pack("!I", (1 << 24) | (20 + len(body))) + amr[4:20] + body
        ans = d.decode(await _raw_exchange(port, msg))
        assert isinstance(ans, AmAnswer) and ans.result_code == d.MISSING_AVP

        # 3. wrong application id: E-bit 3007
        wrong = amr[:8] + struct.pack("!I", 4) + amr[12:]
        raw = await _raw_exchange(port, wrong)
        assert raw[4] & 0x20 and d.decode(raw).result_code == 3007  # type: ignore[union-attr]

        # 4. framing error (version 2): connection closed (after a 5011 answer)
        raw = await _raw_exchange(port, b"\x02" + amr[1:])
        assert raw == b"" or d.decode(raw).result_code == 5011  # type: ignore[union-attr]

        # 5. garbage length: closed
        assert await _raw_exchange(port, b"\x01\x00\x00\x05" + b"\0" * 16) == b""

        assert home.counters["malformed"] >= 4
        assert home.counters["framing_error"] >= 1
        # the other peer still works
        answer = await fa.request(replace(AMR, hop_by_hop=0, end_to_end=0), peer=good)
        assert answer.result_code == d.SUCCESS
        await fa.close()
        await home.close()
    run(main())


def test_handler_exception_gives_5012() -> None:
    async def broken(req: Request, conn: PeerConnection) -> Answer:
        raise RuntimeError("boom")

    async def main() -> None:
        home = DiameterNode("aaah", "home.example", handler=broken)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example")
        await fa.connect(HOST, port)
        answer = await fa.request(AMR)
        assert answer.result_code == d.UNABLE_TO_COMPLY
        assert home.counters["handler_error"] == 1
        await fa.close()
        await home.close()
    run(main())


def test_request_timeout_and_slow_handler_does_not_block() -> None:
    release = asyncio.Event()

    async def slow(req: Request, conn: PeerConnection) -> Answer:
        if req.user_name == "slow":
            await release.wait()
        return await home_handler(req, conn)

    async def main() -> None:
        home = DiameterNode("aaah", "home.example", handler=slow)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example", request_timeout=0.2)
        await fa.connect(HOST, port)
        slow_task = asyncio.create_task(fa.request(replace(AMR, user_name="slow")))
        fast = await fa.request(AMR)          # answered while the slow one waits
        assert fast.result_code == d.SUCCESS
        with pytest.raises(DiameterTimeout):
            await slow_task
        assert fa.counters["timeouts"] == 1
        release.set()
        await asyncio.sleep(0.05)             # late answer is counted, not an error
        assert fa.counters["unexpected_answer"] == 1
        await fa.close()
        await home.close()
    run(main())


def test_late_answer_goes_to_the_caller_that_asked_for_it() -> None:
    """``request(late=cb)``: an answer after the timeout is handed to ``cb`` (counted
    ``late_answer``), not dropped as unexpected."""
    release = asyncio.Event()

    async def slow(req: Request, conn: PeerConnection) -> Answer:
        await release.wait()
        return await home_handler(req, conn)

    async def main() -> None:
        home = DiameterNode("aaah", "home.example", handler=slow)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example", request_timeout=0.2)
        await fa.connect(HOST, port)
        got: list[Any] = []
        with pytest.raises(DiameterTimeout):
            await fa.request(AMR, late=got.append)
        release.set()
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert len(got) == 1 and got[0].result_code == d.SUCCESS
        assert got[0].session_id == AMR.session_id
        assert fa.counters["late_answer"] == 1 and fa.counters["unexpected_answer"] == 0
        await fa.close()
        await home.close()
    run(main())


def test_requests_in_one_segment_are_read_at_once_and_all_answered() -> None:
    """Issue 15: the reader takes what the socket holds and dispatches every whole
    message in it (one read, not two per message); a message cut across reads is
    kept until its rest arrives."""
    from controller.adapters import diameter_conn

    reads: list[int] = []
    real_read = asyncio.StreamReader.read

    async def counting_read(self: asyncio.StreamReader, n: int = -1) -> bytes:
        data = await real_read(self, n)
        reads.append(len(data))
        return data

    async def main() -> None:
        home = DiameterNode("aaah.home.example", "home.example", handler=home_handler)
        port = await home.listen(HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, port)
        cer = d.encode(d.Cer("fa1.foreign.example", "foreign.example", ("127.0.0.1",),
                             hop_by_hop=1, end_to_end=1))
        writer.write(cer)
        head = await reader.readexactly(20)
        await reader.readexactly(d.parse_header(head).length - 20)
        amrs = b"".join(d.encode(replace(AMR, hop_by_hop=10 + i, end_to_end=10 + i))
                        for i in range(3))
        reads.clear()
        writer.write(amrs + amrs[:30])            # three whole AMRs and a piece
        await asyncio.sleep(0.1)
        writer.write(amrs[30:len(amrs) // 3])     # the rest of the fourth
        got = set()
        for _ in range(4):
            head = await reader.readexactly(20)
            hdr = d.parse_header(head)
            answer = d.decode(head + await reader.readexactly(hdr.length - 20))
            assert isinstance(answer, AmAnswer) and answer.result_code == d.SUCCESS
            got.add(hdr.hop_by_hop)
        assert got == {10, 11, 12}     # the fourth repeats hop-by-hop 10
        assert 1 <= len(reads) <= 3, reads
        writer.close()
        await home.close()

    orig = asyncio.StreamReader.read
    asyncio.StreamReader.read = counting_read  # type: ignore[method-assign]
    try:
        run(main())
    finally:
        asyncio.StreamReader.read = orig  # type: ignore[method-assign]
    assert diameter_conn.READ_SIZE >= 1 << 12


def test_encode_with_ids_is_encode_of_the_copy_with_them() -> None:
    """Issue 15: the transport writes its hop-by-hop and end-to-end ids into the bytes
    (``encode(msg, ids=...)``) instead of copying the message with them."""
    dwr = d.Dwr("a.example", "example", 1, 2)
    for msg in (AMR, dwr):
        assert d.encode(msg, ids=(7, 8)) == d.encode(replace(msg, hop_by_hop=7,
                                                             end_to_end=8))
    with pytest.raises(d.DiameterEncodeError):
        d.encode(dwr, ids=(1 << 32, 0))

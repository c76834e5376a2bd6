"""RFC 6733 error handling of DiameterNode over loopback, watchdog and reconnection.

Each bad request is sent on a raw socket (after a real CER) to a real node; the answer's
Result-Code and Failed-AVP are checked.  No exception may escape a connection's tasks:
the loop's exception handler must stay silent and a second peer keeps being served.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from dataclasses import replace
from typing import Any, Callable

import pytest

from controller.adapters.diameter_peer import (DiameterConnectionError, DiameterError,
                                               DiameterNode, PeerConnection)
from controller.proto import diameter as d
from controller.proto.diameter import AmAnswer, AmRequest, Answer, Request

from tests.unit.proto.test_diameter_codec import AMR, HAR, VPN

HOST = "127.0.0.1"
M = d.AVP_FLAG_MANDATORY


def run(coro: Any, timeout: float = 20) -> Any:
    """Run ``coro``; fail if anything reached the loop's exception handler."""
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        result = await asyncio.wait_for(coro, timeout)
        await asyncio.sleep(0.01)
        assert not errors, errors
        return result
    return asyncio.run(main())


async def answer_all(req: Request, conn: PeerConnection) -> Answer:
    cls = AmAnswer if isinstance(req, AmRequest) else d.HaAnswer
    return cls(req.session_id, d.SUCCESS, "aaah.home.example", "home.example",
               user_name=req.user_name, reg_reply=b"\x03" * 20, vpn_info=VPN)


# ----------------------------------------------------------------- raw messages


def avp(code: int, data: bytes, flags: int = M, vendor: int = 0) -> bytes:
    if vendor:
        flags |= d.AVP_FLAG_VENDOR
        head = struct.pack("!III", code, (flags << 24) | (12 + len(data)), vendor)
    else:
        head = struct.pack("!II", code, (flags << 24) | (8 + len(data)))
    raw = head + data
    return raw + b"\0" * (-len(raw) % 4)


def rebuild(msg: bytes, avps: list[bytes], app_id: int | None = None) -> bytes:
    body = b"".join(a + b"\0" * (-len(a) % 4) for a in avps)
    head = struct.pack("!I", (1 << 24) | (20 + len(body))) + msg[4:8]
    head += struct.pack("!I", app_id) if app_id is not None else msg[8:12]
    return head + msg[12:20] + body


def raw_avps(msg: bytes) -> list[bytes]:
    return [a.raw for a in d.parse_avps(msg, 20)]


def without(msg: bytes, code: int) -> bytes:
    return rebuild(msg, [a.raw for a in d.parse_avps(msg, 20) if a.code != code])


def with_extra(msg: bytes, *extra: bytes) -> bytes:
    return rebuild(msg, raw_avps(msg) + list(extra))


def replaced(msg: bytes, code: int, new: bytes) -> bytes:
    return rebuild(msg, [new if a.code == code else a.raw for a in d.parse_avps(msg, 20)])


def failed_avp(answer: bytes) -> list[d.RawAvp]:
    """The AVPs inside the answer's Failed-AVP."""
    for a in d.parse_avps(answer, 20):
        if a.code == d.AVP_FAILED_AVP:
            return d.parse_avps(a.data)
    return []


def result_code(answer: bytes) -> int:
    for a in d.parse_avps(answer, 20):
        if a.code == d.AVP_RESULT_CODE:
            return int(struct.unpack("!I", a.data)[0])
    raise AssertionError("no Result-Code")


class RawPeer:
    """A hand-driven peer: real CER, then whatever bytes the test sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, cer: bool = True) -> RawPeer:
        peer = cls(*await asyncio.open_connection(HOST, port))
        if cer:
            peer.writer.write(d.encode(d.Cer("raw.test", "raw.example", ("127.0.0.1",),
                                             hop_by_hop=1, end_to_end=1)))
            cea = d.decode(await peer.read())
            assert isinstance(cea, d.Cea) and cea.result_code == d.SUCCESS
        return peer

    async def read(self, timeout: float = 2.0) -> bytes:
        head = await asyncio.wait_for(self.reader.readexactly(20), timeout)
        return head + await self.reader.readexactly(d.parse_header(head).length - 20)

    async def exchange(self, data: bytes) -> bytes:
        self.writer.write(data)
        return await self.read()

    def close(self) -> None:
        self.writer.close()


async def _home(**kw: Any) -> tuple[DiameterNode, int]:
    home = DiameterNode("aaah.home.example", "home.example", handler=answer_all, **kw)
    return home, await home.listen(HOST, 0)


AMR_RAW = d.encode(AMR)
HAR_RAW = d.encode(HAR)


# ----------------------------------------------------------------- result codes


def _expect(cases: list[tuple[bytes, int, Callable[[bytes], None] | None]]) -> None:
    async def main() -> None:
        home, port = await _home()
        peer = await RawPeer.open(port)
        for data, code, check in cases:
            ans = await peer.exchange(data)
            assert result_code(ans) == code, (code, d.decode(ans))
            hdr = d.parse_header(ans)
            assert not hdr.is_request and hdr.hop_by_hop == d.parse_header(data).hop_by_hop
            assert bool(hdr.flags & d.FLAG_ERROR) == (3000 <= code < 4000)
            if check is not None:
                check(ans)
        # the same connection still answers a good request
        ans = await peer.exchange(AMR_RAW)
        assert result_code(ans) == d.SUCCESS
        assert home.counters["task_error"] == 0
        peer.close()
        await home.close()
    run(main())


def test_unknown_mandatory_avps_get_5001_with_failed_avp() -> None:
    unknown = avp(99999, b"boom")
    unknown_vendor = avp(7, b"x", vendor=99999)
    auth = next(a for a in d.parse_avps(AMR_RAW, 20) if a.code == d.AVP_MIP_MN_AAA_AUTH)
    inner = auth.data + avp(65001, b"\0\0\0\1")
    inner_unknown = avp(d.AVP_MIP_MN_AAA_AUTH, inner)

    def names(code: int, vendor: int = 0) -> Callable[[bytes], None]:
        def check(ans: bytes) -> None:
            got = failed_avp(ans)
            assert [(a.code, a.vendor) for a in got] == [(code, vendor)]
        return check

    _expect([
        (with_extra(AMR_RAW, unknown), d.AVP_UNSUPPORTED, names(99999)),
        (with_extra(AMR_RAW, unknown_vendor), d.AVP_UNSUPPORTED, names(7, 99999)),
        (replaced(AMR_RAW, d.AVP_MIP_MN_AAA_AUTH, inner_unknown), d.AVP_UNSUPPORTED,
         names(65001)),
        (with_extra(HAR_RAW, unknown), d.AVP_UNSUPPORTED, names(99999)),
        # unknown AVPs without the M bit are ignored (RFC 6733 §4.1)
        (with_extra(AMR_RAW, avp(99999, b"fine", flags=0)), d.SUCCESS, None),
    ])


def test_wrong_application_gets_3007() -> None:
    _expect([
        (rebuild(AMR_RAW, raw_avps(AMR_RAW), app_id=4), d.APPLICATION_UNSUPPORTED, None),
        (rebuild(HAR_RAW, raw_avps(HAR_RAW), app_id=0), d.APPLICATION_UNSUPPORTED, None),
        (replaced(AMR_RAW, d.AVP_AUTH_APPLICATION_ID,
                  avp(d.AVP_AUTH_APPLICATION_ID, struct.pack("!I", 5))),
         d.APPLICATION_UNSUPPORTED, None),
    ])


AMR_REQUIRED = [d.AVP_SESSION_ID, d.AVP_AUTH_APPLICATION_ID, d.AVP_USER_NAME,
                d.AVP_DESTINATION_REALM, d.AVP_ORIGIN_HOST, d.AVP_ORIGIN_REALM,
                d.AVP_MIP_REG_REQUEST, d.AVP_MIP_MN_AAA_AUTH]
HAR_REQUIRED = [d.AVP_SESSION_ID, d.AVP_AUTH_APPLICATION_ID, d.AVP_AUTHORIZATION_LIFETIME,
                d.AVP_AUTH_SESSION_STATE, d.AVP_MIP_REG_REQUEST, d.AVP_ORIGIN_HOST,
                d.AVP_ORIGIN_REALM, d.AVP_USER_NAME, d.AVP_DESTINATION_REALM,
                d.AVP_MIP_FEATURE_VECTOR]


def test_missing_required_avps_get_5005_naming_the_avp() -> None:
    def names(code: int) -> Callable[[bytes], None]:
        def check(ans: bytes) -> None:
            assert [a.code for a in failed_avp(ans)] == [code]
        return check

    cases: list[tuple[bytes, int, Callable[[bytes], None] | None]] = []
    cases += [(without(AMR_RAW, c), d.MISSING_AVP, names(c)) for c in AMR_REQUIRED]
    cases += [(without(HAR_RAW, c), d.MISSING_AVP, names(c)) for c in HAR_REQUIRED]
    auth = next(a for a in d.parse_avps(AMR_RAW, 20) if a.code == d.AVP_MIP_MN_AAA_AUTH)
    for member in (d.AVP_MIP_MN_AAA_SPI, d.AVP_MIP_AUTH_INPUT_DATA_LENGTH,
                   d.AVP_MIP_AUTHENTICATOR_LENGTH, d.AVP_MIP_AUTHENTICATOR_OFFSET):
        inner = b"".join(a.raw + b"\0" * (-len(a.raw) % 4) for a in d.parse_avps(auth.data)
                         if a.code != member)
        cases.append((replaced(AMR_RAW, d.AVP_MIP_MN_AAA_AUTH,
                               avp(d.AVP_MIP_MN_AAA_AUTH, inner)), d.MISSING_AVP,
                      names(member)))
    _expect(cases)


def test_invalid_values_get_5004() -> None:
    def names(code: int) -> Callable[[bytes], None]:
        def check(ans: bytes) -> None:
            assert [a.code for a in failed_avp(ans)] == [code]
        return check
    _expect([
        (replaced(AMR_RAW, d.AVP_USER_NAME, avp(d.AVP_USER_NAME, b"\xff\xfe@x")),
         d.INVALID_AVP_VALUE, names(d.AVP_USER_NAME)),
        # not an RFC 7542 NAI (issue 11): markup, CR LF, an empty realm label
        (replaced(AMR_RAW, d.AVP_USER_NAME, avp(d.AVP_USER_NAME, b"<img src=x>@home.example")),
         d.INVALID_AVP_VALUE, names(d.AVP_USER_NAME)),
        (replaced(AMR_RAW, d.AVP_USER_NAME, avp(d.AVP_USER_NAME, b"a\r\nb@home.example")),
         d.INVALID_AVP_VALUE, names(d.AVP_USER_NAME)),
        (replaced(AMR_RAW, d.AVP_USER_NAME, avp(d.AVP_USER_NAME, b"alice@home..example")),
         d.INVALID_AVP_VALUE, names(d.AVP_USER_NAME)),
        (replaced(AMR_RAW, d.AVP_MIP_MOBILE_NODE_ADDRESS,
                  avp(d.AVP_MIP_MOBILE_NODE_ADDRESS, b"\0\1\1\2\3")),
         d.INVALID_AVP_VALUE, names(d.AVP_MIP_MOBILE_NODE_ADDRESS)),
        (replaced(AMR_RAW, d.AVP_MIP_HOME_AGENT_ADDRESS,
                  avp(d.AVP_MIP_HOME_AGENT_ADDRESS, b"\0\7" + b"\1" * 4)),
         d.INVALID_AVP_VALUE, names(d.AVP_MIP_HOME_AGENT_ADDRESS)),
        (replaced(AMR_RAW, d.AVP_ORIGIN_HOST, avp(d.AVP_ORIGIN_HOST, b"\xc3\x28")),
         d.INVALID_AVP_VALUE, names(d.AVP_ORIGIN_HOST)),
        # a 3-byte Unsigned32: DIAMETER_INVALID_AVP_LENGTH
        (replaced(AMR_RAW, d.AVP_MIP_FEATURE_VECTOR,
                  avp(d.AVP_MIP_FEATURE_VECTOR, b"\0\0\4")),
         d.INVALID_AVP_LENGTH, names(d.AVP_MIP_FEATURE_VECTOR)),
    ])


def test_repeated_single_avps_get_5009_with_the_second_instance() -> None:
    def second(code: int, data: bytes) -> Callable[[bytes], None]:
        def check(ans: bytes) -> None:
            got = failed_avp(ans)
            assert [(a.code, a.data) for a in got] == [(code, data)]
        return check
    cases: list[tuple[bytes, int, Callable[[bytes], None] | None]] = []
    for code, data in [(d.AVP_ORIGIN_HOST, b"second.example"), (d.AVP_USER_NAME, b"eve@x"),
                       (d.AVP_SESSION_ID, b"s;2"), (d.AVP_MIP_REG_REQUEST, b"\1" * 24),
                       (d.AVP_DESTINATION_REALM, b"other.example")]:
        cases.append((with_extra(AMR_RAW, avp(code, data)), d.AVP_OCCURS_TOO_MANY_TIMES,
                      second(code, data)))
    cases.append((with_extra(HAR_RAW, avp(d.AVP_AUTHORIZATION_LIFETIME, b"\0\0\0\1")),
                  d.AVP_OCCURS_TOO_MANY_TIMES,
                  second(d.AVP_AUTHORIZATION_LIFETIME, b"\0\0\0\1")))
    # several MIP-Filter-Rule are allowed (*[MIP-Filter-Rule]): not a 5009
    cases.append((with_extra(AMR_RAW, avp(342, b"permit in ip from any to any", flags=M),
                             avp(342, b"deny in ip from any to any", flags=M)),
                  d.SUCCESS, None))
    _expect(cases)


# ----------------------------------------------------------------- robustness


def _garbage(rng: random.Random) -> list[bytes]:
    """Hostile inputs, each sent on a connection of its own."""
    amr = AMR_RAW
    out = [
        b"\x01\x00\x00\x14" + b"\0" * 16,                 # header only, no AVPs
        b"\x01\xff\xff\xfc" + amr[4:],                      # length beyond MAX_MESSAGE
        b"\x02" + amr[1:],                                  # version 2
        b"\x01\x00\x00\x15" + b"\0" * 17,                 # length not a multiple of 4
        amr[:-4],                                           # truncated (peer then hangs up)
        amr[:20] + b"\xff" * (len(amr) - 20),              # AVP soup
        amr[:4] + b"\x40" + amr[5:],                        # answer with unknown hop-by-hop
        amr[:4] + b"\x8f" + amr[5:],                        # reserved header bits
        rebuild(amr, [avp(d.AVP_SESSION_ID, b"x" * 70000)]),  # big AVP
        rebuild(amr, raw_avps(amr) * 3),                    # everything three times
        d.encode(d.Dwr("raw.test", "raw.example", 77, 77)),
        d.encode(d.Dpr("raw.test", "raw.example", 2, 78, 78)),
        d.encode(d.Cer("again.test", "raw.example", ("127.0.0.1",), hop_by_hop=79,
                       end_to_end=79)),
        struct.pack("!I", (1 << 24) | 28) + struct.pack("!IIII", 0x80000000 | 999, 2, 5, 5)
        + avp(d.AVP_SESSION_ID, b"s"),                      # unknown command
    ]
    for _ in range(40):                                     # mutated AMRs
        b = bytearray(amr)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(20, len(b))] = rng.randrange(256)
        out.append(bytes(b))
    out += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) for _ in range(20)]
    return out


def test_hostile_peers_never_break_the_node() -> None:
    async def main() -> None:
        home, port = await _home(cer_timeout=0.3)
        fa = DiameterNode("fa1.foreign.example", "foreign.example")
        good = await fa.connect(HOST, port)
        rng = random.Random(6733)
        for i, data in enumerate(_garbage(rng)):
            for cer in (True, False):
                peer = await RawPeer.open(port, cer=cer)
                peer.writer.write(data)
                try:
                    await peer.read(timeout=0.2)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError,
                        ConnectionError):
                    pass
                peer.close()
            if i % 10 == 0:      # the other peer is served all along
                ans = await fa.request(replace(AMR, hop_by_hop=0, end_to_end=0), peer=good)
                assert ans.result_code == d.SUCCESS
        # a silent connection (no CER) is closed after cer_timeout
        silent = await RawPeer.open(port, cer=False)
        t0 = time.monotonic()
        assert await silent.reader.read() == b""
        assert time.monotonic() - t0 < 2.0 and home.counters["cer_timeout"] >= 1
        assert home.counters["task_error"] == 0 and home.counters["malformed"] > 50
        ans = await fa.request(replace(AMR, hop_by_hop=0, end_to_end=0), peer=good)
        assert ans.result_code == d.SUCCESS
        await fa.close()
        await home.close()
    run(main(), timeout=60)


def test_handler_returning_garbage_gets_5012() -> None:
    async def bad(req: Request, conn: PeerConnection) -> Any:
        return None if isinstance(req, AmRequest) else "not an answer"

    async def main() -> None:
        home = DiameterNode("aaah", "home.example", handler=bad)
        port = await home.listen(HOST, 0)
        fa = DiameterNode("fa1", "foreign.example")
        await fa.connect(HOST, port)
        assert (await fa.request(AMR)).result_code == d.UNABLE_TO_COMPLY
        har = replace(HAR, destination_realm="home.example")
        assert (await fa.request(har)).result_code == d.UNABLE_TO_COMPLY
        assert home.counters["handler_error"] == 2 and home.counters["task_error"] == 0
        await fa.close()
        await home.close()
    run(main())


# ----------------------------------------------------------------- watchdog, reconnect


async def _zombie_server() -> tuple[asyncio.base_events.Server, int]:
    """Answers CER, then never answers anything again (a hung peer process)."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(20)
        cer = d.decode(head + await reader.readexactly(d.parse_header(head).length - 20))
        writer.write(d.encode(d.Cea(d.SUCCESS, "zombie.home.example", "home.example",
                                    ("127.0.0.1",), hop_by_hop=cer.hop_by_hop,
                                    end_to_end=cer.end_to_end)))
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(serve, HOST, 0)
    return server, int(server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("reconnect", [False, True])
def test_silent_peer_marked_down_requests_fail_fast(reconnect: bool) -> None:
    async def main() -> None:
        server, port = await _zombie_server()
        fa = DiameterNode("fa1", "foreign.example", watchdog_interval=0.1,
                          request_timeout=0.15)
        conn = await fa.connect(HOST, port, reconnect=reconnect, backoff=(5.0, 5.0))
        # a request sent while the peer is silent fails (timeout or connection down)
        with pytest.raises(DiameterError):
            await fa.request(AMR, peer=conn)
        deadline = time.monotonic() + 2
        while conn.open and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not conn.open and fa.counters["watchdog_timeout"] == 1
        assert conn.state == ("down" if reconnect else "closed")
        # now every request fails at once, with a clear error
        t0 = time.monotonic()
        with pytest.raises(DiameterConnectionError, match="down|closed"):
            await fa.request(AMR, peer=conn)
        if reconnect:         # the realm route stays: also fast, also clear
            with pytest.raises(DiameterConnectionError, match="reconnecting"):
                await fa.request(AMR)
        assert time.monotonic() - t0 < 0.05
        await fa.close()
        server.close()
        await server.wait_closed()
    run(main())


def test_reconnects_when_the_peer_returns() -> None:
    async def main() -> None:
        home, port = await _home()
        fa = DiameterNode("fa1.foreign.example", "foreign.example", watchdog_interval=0.1,
                          request_timeout=0.5)
        conn = await fa.connect(HOST, port, reconnect=True, backoff=(0.05, 0.2))
        assert (await fa.request(AMR)).result_code == d.SUCCESS
        await home.close()                       # the home server goes away (DPR)
        deadline = time.monotonic() + 2
        while conn.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert conn.state == "down"
        with pytest.raises(DiameterConnectionError):
            await fa.request(AMR)
        await asyncio.sleep(0.4)                 # a few failed redials (backoff)
        assert fa.counters["reconnect_failed"] >= 1
        home2 = DiameterNode("aaah.home.example", "home.example", handler=answer_all)
        await home2.listen(HOST, port)           # back on the same port
        deadline = time.monotonic() + 3
        while not conn.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert conn.open and fa.counters["reconnected"] == 1
        # the same PeerConnection object, by realm and explicitly
        assert fa.routes["home.example"] is conn
        assert (await fa.request(AMR)).result_code == d.SUCCESS
        assert (await fa.request(AMR, peer=conn)).result_code == d.SUCCESS
        await asyncio.sleep(0.3)                 # watchdog keeps it up
        assert conn.open and fa.counters["dwa_received"] >= 2
        await fa.close()
        assert conn.state == "closed" and "home.example" not in fa.routes
        await home2.close()
    run(main())



def test_one_pass_keeps_5001_before_5009_and_the_first_offender() -> None:
    """Issue 15: the unknown M-bit AVPs and the repeated single AVPs are found in one
    pass over a message's AVPs; the answer stays what two passes gave: an unknown M-bit
    AVP anywhere wins over a repetition before it (5001), the first of each is named,
    a grouped MSA's repeated member is a 5009 and a Session-Id after the offender still
    names the session."""
    unknown, unknown2 = avp(99999, b"\0\0\0\1"), avp(99998, b"\0\0\0\2")
    dup_host, dup_user = avp(d.AVP_ORIGIN_HOST, b"second.example"), avp(d.AVP_USER_NAME, b"e@x")

    def raw(padded: bytes) -> bytes:
        return d.parse_avps(padded)[0].raw

    def err(raw: bytes) -> d.DiameterDecodeError:
        with pytest.raises(d.DiameterDecodeError) as e:
            d.decode(raw)
        return e.value

    e = err(with_extra(AMR_RAW, dup_host, unknown, unknown2))
    assert (e.result_code, e.failed_avp) == (d.AVP_UNSUPPORTED, raw(unknown))
    e = err(with_extra(AMR_RAW, dup_user, dup_host))
    assert (e.result_code, e.failed_avp) == (d.AVP_OCCURS_TOO_MANY_TIMES, raw(dup_user))
    sid = next(a for a in d.parse_avps(AMR_RAW, 20) if a.code == d.AVP_SESSION_ID)
    rest = [a.raw for a in d.parse_avps(AMR_RAW, 20) if a.code != d.AVP_SESSION_ID]
    e = err(rebuild(AMR_RAW, [unknown] + rest + [sid.raw]))
    assert e.result_code == d.AVP_UNSUPPORTED and e.session_id == sid.data.decode()
    spi = avp(d.AVP_MIP_FA_TO_HA_SPI, b"\0\0\1\0")
    msa = avp(d.AVP_MIP_FA_TO_HA_MSA, spi + avp(d.AVP_MIP_ALGORITHM_TYPE, b"\0\0\0\2")
              + avp(d.AVP_MIP_SESSION_KEY, b"k" * 16) + spi)
    ama = d.encode(AmAnswer("s;1", d.SUCCESS, "h.example", "r.example", hop_by_hop=1,
                            end_to_end=2))
    e = err(with_extra(ama, msa))
    assert (e.result_code, e.failed_avp) == (d.AVP_OCCURS_TOO_MANY_TIMES, raw(spi))


def test_parse_avps_gives_bytes_whatever_buffer_it_reads() -> None:
    """Issue 15: the AVP splitter copies a non-bytes buffer once, then slices bytes (no
    conversion per AVP); each AVP's ``raw`` and ``data`` are bytes (hashable: the VPN
    memo files AVPs under them) from bytes, bytearray and memoryview alike."""
    for buf in (AMR_RAW, bytearray(AMR_RAW), memoryview(AMR_RAW)):
        avps = d.parse_avps(buf, 20)
        assert [a.raw for a in avps] == raw_avps(AMR_RAW)
        assert all(type(a.raw) is bytes and type(a.data) is bytes for a in avps)
    assert d.decode(bytearray(AMR_RAW)) == d.decode(AMR_RAW)

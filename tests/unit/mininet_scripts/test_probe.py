"""mininet_scripts.probe analysis on synthetic data (no sockets)."""

from __future__ import annotations

import json

import pytest

from mininet_scripts.probe import HEADER, MS, ProbeResult, analyse

T0 = 1_000_000_000_000
INTERVAL = 1 * MS  # 1000 packets/s
DELAY = 200_000    # 0.2 ms one-way


def stream(n: int, *, drop: set[int] = frozenset(), stall: dict[int, int] | None = None
           ) -> list[tuple[int, int, int]]:
    """Packets 0..n-1 sent every ms; ``drop``ped ones never arrive; ``stall`` delays
    arrival of a seq by extra ns (e.g. queued during a move)."""
    stall = stall or {}
    return [(s, T0 + s * INTERVAL, T0 + s * INTERVAL + DELAY + stall.get(s, 0))
            for s in range(n) if s not in drop]


def test_no_loss_no_events() -> None:
    a = analyse(stream(1000), 1000, [])
    assert (a.sent, a.received, a.lost, a.duplicates) == (1000, 1000, 0, 0)
    assert a.loss_ratio == 0.0
    assert a.interval_ms == pytest.approx(1.0)
    assert a.latency_p50_ms == pytest.approx(0.2)
    assert a.windows == ()


def test_move_gap_and_loss() -> None:
    # Move at 2.000 s; packets 2000..2049 lost (50 ms outage).
    rx = stream(5000, drop=set(range(2000, 2050)))
    a = analyse(rx, 5000, [("move1", T0 + 2000 * MS)])
    assert a.lost == 50 and a.loss_ratio == pytest.approx(0.01)
    (w,) = a.windows
    assert w.name == "move1"
    assert w.gap_ms == pytest.approx(51.0)        # 1999 -> 2050
    assert w.missing_in_gap == 50
    assert w.lost == 50
    assert w.gap_end_ns - w.gap_start_ns == 51 * MS


def test_two_moves_separate_windows() -> None:
    drop = set(range(1000, 1010)) | set(range(3000, 3100))
    rx = stream(6000, drop=drop)
    a = analyse(rx, 6000, [("b", T0 + 3000 * MS), ("a", T0 + 1000 * MS)])
    assert [w.name for w in a.windows] == ["a", "b"]   # sorted by time
    wa, wb = a.windows
    assert wa.gap_ms == pytest.approx(11.0) and wa.missing_in_gap == 10 and wa.lost == 10
    assert wb.gap_ms == pytest.approx(101.0) and wb.missing_in_gap == 100 and wb.lost == 100
    assert a.lost == 110


def test_gap_without_loss_is_still_a_gap() -> None:
    # Packets 2000..2039 are held back (buffered) and arrive together with 2040:
    # no loss, but a 41 ms data-plane interruption.
    stall = {s: (2040 - s) * INTERVAL for s in range(2000, 2040)}
    rx = stream(4000, stall=stall)
    a = analyse(rx, 4000, [("move", T0 + 2000 * MS)])
    (w,) = a.windows
    assert a.lost == 0 and w.lost == 0 and w.missing_in_gap == 0
    assert w.gap_ms == pytest.approx(41.0)


def test_gap_spanning_window_edge_is_measured() -> None:
    # Outage starts 100 ms before the window opens and lasts 1 s.
    rx = stream(6000, drop=set(range(1400, 2400)))
    a = analyse(rx, 6000, [("move", T0 + 2000 * MS)], before_ms=500, after_ms=3000)
    (w,) = a.windows
    assert w.gap_ms == pytest.approx(1001.0)
    assert w.missing_in_gap == 1000


def test_loss_outside_window_not_counted_in_window() -> None:
    rx = stream(10000, drop={100, 9000})
    a = analyse(rx, 10000, [("move", T0 + 5000 * MS)], before_ms=500, after_ms=1000)
    (w,) = a.windows
    assert w.lost == 0 and a.lost == 2
    assert w.gap_ms == pytest.approx(1.0)


def ends(n: int, extra_ms: int = 100) -> tuple[dict[str, int], dict[str, int]]:
    """Probe results of sender and receiver: the sender sent 0..n-1 from T0, one per
    ms; the receiver ran ``extra_ms`` longer."""
    return ({"start_ns": T0, "end_ns": T0 + n * INTERVAL},
            {"start_ns": T0 - 50 * MS, "end_ns": T0 + (n + extra_ms) * INTERVAL})


def test_stream_that_never_resumes_is_a_gap_and_a_loss() -> None:
    # the uplink dies at the move (2.000 s) and stays dead until the end (5.000 s)
    rx = stream(2000)
    move = [("move", T0 + 2000 * MS)]
    (blind,) = analyse(rx, 5000, move).windows            # without the probe ends
    assert blind.gap_ms < 2 and blind.lost == 0
    sender, receiver = ends(5000)
    a = analyse(rx, 5000, move, sender=sender, receiver=receiver)
    (w,) = a.windows
    assert w.gap_ms == pytest.approx(3000.8, abs=0.1)     # last arrival -> sender's end
    assert w.missing_in_gap == 3000
    # sent inside [1.5 s, 5.0 s - 200 ms tail] and never arrived: 2000..4800
    assert w.lost == pytest.approx(2801, abs=1)
    assert a.lost == 3000


def test_probe_ends_change_nothing_for_a_stream_that_resumes() -> None:
    rx = stream(5000, drop=set(range(2000, 2050)))
    sender, receiver = ends(5000)
    (w,) = analyse(rx, 5000, [("move1", T0 + 2000 * MS)], sender=sender,
                   receiver=receiver).windows
    assert w.gap_ms == pytest.approx(51.0) and w.missing_in_gap == 50 and w.lost == 50
    # loss outside the window stays outside; the receiver stopping first is no gap
    rx = stream(10000, drop={100, 9000})
    sender, receiver = ends(10000, extra_ms=-300)
    a = analyse(rx[:-300], 10000, [("move", T0 + 5000 * MS)], before_ms=500,
                after_ms=1000, sender=sender, receiver=receiver)
    assert a.windows[0].lost == 0 and a.windows[0].gap_ms == pytest.approx(1.0)


def test_duplicates_and_reordering() -> None:
    rx = stream(100)
    rx.append(rx[10])                 # duplicate
    rx[20], rx[21] = (rx[20][0], rx[20][1], rx[21][2] + 1), rx[21]  # 20 arrives after 21
    a = analyse(rx, 100, [("m", T0 + 50 * MS)])
    assert a.duplicates == 1 and a.lost == 0 and a.received == 100


def test_peer_sent_more_than_received_tail_loss() -> None:
    a = analyse(stream(900), 1000, [])
    assert a.lost == 100 and a.loss_ratio == pytest.approx(0.1)


def test_empty() -> None:
    a = analyse([], 0, [("m", T0)])
    assert a.lost == 0 and a.loss_ratio == 0.0 and a.latency_p50_ms is None
    assert a.windows[0].gap_ms == 0.0 and a.windows[0].gap_start_ns is None


def test_result_json_roundtrip() -> None:
    r = ProbeResult(bind="10.0.0.1", peer="10.0.0.2", port=5001, rate=1000.0,
                    start_ns=1, end_ns=2, sent=3)
    for s, t, v in stream(3):
        r.seqs.append(s)
        r.send_ns.append(t)
        r.recv_ns.append(v)
    data = json.loads(json.dumps(r.to_json()))
    assert data["sent"] == 3 and data["received"] == [list(x) for x in stream(3)]
    assert analyse(data["received"], data["sent"], []).lost == 0


def test_wire_header() -> None:
    assert HEADER.size == 12
    assert HEADER.pack(1, 2) == b"\x00\x00\x00\x01" + b"\x00" * 7 + b"\x02"


def test_steady_loss_ignores_packets_sent_before_the_receiver_started() -> None:
    from mininet_scripts.probe import steady_loss
    ms = 1_000_000
    sender = {"rate": 1000, "start_ns": 5 * ms, "end_ns": 3005 * ms, "sent": 3000}
    got = [[i, 0, 0] for i in range(1000, 3000) if i != 1500]
    receiver = {"start_ns": 1005 * ms, "end_ns": 3005 * ms, "received": got}
    expected, lost = steady_loss(receiver, sender)
    # seq 1001 .. 2800 (200 ms tail excluded); one of them (1500) never arrived
    assert (expected, lost) == (1800, 1)


def test_loss_inside_the_events_span_is_told_apart() -> None:
    """Issue 14: of a move's loss, what was sent during the emulated link move (the
    event's span: the MN's frames had no switch) against the rest (the protocol's)."""
    rx = stream(5000, drop=set(range(2005, 2030)) | set(range(2060, 2070)))
    sender, receiver = ends(5000)
    move = [("move1", T0 + 2000 * MS)]
    span = {"move1": (T0 + 2000 * MS, T0 + 2025 * MS)}    # the link move: 2.000-2.025 s
    (w,) = analyse(rx, 5000, move, sender=sender, receiver=receiver, spans=span).windows
    assert w.lost == 35
    assert w.lost_in_span == 21               # 2005..2025 (ends included) of 2005..2029
    # no span for the event, or no probe ends: nothing told apart
    (w,) = analyse(rx, 5000, move, sender=sender, receiver=receiver).windows
    assert w.lost_in_span == 0
    (w,) = analyse(rx, 5000, move, spans=span).windows
    assert w.lost_in_span == 0


def test_the_probe_sleeps_between_packets_instead_of_spinning(monkeypatch) -> None:
    """The send loop waits for its next deadline in the kernel.  It used to poll with
    the time left floored to whole ms: under 1 ms left meant poll(0), a busy loop for
    about half of every 2 ms interval at 500 pkt/s.  Four probes then took one of the
    CI machine's two cores, and the emulation stalled (docs/decisions.md 2026-12-06,
    "the probe's busy wait").  Counted: waits per packet, on loopback, the probe
    sending to itself."""
    import select as real_select
    import types

    from mininet_scripts import probe

    waits = []

    class CountingPoll:
        def __init__(self) -> None:
            self._p = real_select.poll()

        def register(self, *a):
            return self._p.register(*a)

        def poll(self, *a):
            waits.append(a)
            return self._p.poll(*a)

    def counting_select(*a):
        waits.append(a)
        return real_select.select(*a)

    monkeypatch.setattr(probe, "select", types.SimpleNamespace(
        poll=CountingPoll, select=counting_select, POLLIN=real_select.POLLIN))
    res = probe.run_probe("127.0.0.1", "127.0.0.1", 47123, 500, 0.4, linger=0.05)
    assert res.sent >= 150 and len(res.seqs) >= 150     # it ran, and heard itself
    assert len(waits) <= 4 * res.sent, f"{len(waits)} waits for {res.sent} packets"

"""Measurement probe: paced, sequence-numbered UDP both ways on one socket.

Run inside a Mininet host (stdlib only)::

    python -m mininet_scripts.probe --bind 10.10.0.100 --peer 10.30.0.10 \
        --port 5001 --rate 1000 --duration 10 --out mn1.json

Each packet carries ``seq`` (u32) and the sender's ``CLOCK_MONOTONIC`` time in ns (u64),
network byte order, padded to ``--size`` bytes.  ``CLOCK_MONOTONIC`` is not per network
namespace, so both ends of a Mininet run share one clock and ``recv_ns - send_ns`` is the
one-way delay.  Sending is paced against absolute deadlines (``start + i/rate``), so
scheduling delays never accumulate into a lower rate.  The same socket receives the
peer's packets; each is recorded as (seq, send_ns, recv_ns) in ``array`` columns.
The probe stops at ``--duration`` (then keeps receiving for ``--linger`` seconds) or on
SIGTERM/SIGINT, and writes JSON: ``{"sent": N, "received": [[seq, send_ns, recv_ns], ...],
...}``.

The analysis (``analyse``) is pure: given what one end received, how many packets the
peer sent, and the times of the moves, it reports per move the data-plane gap (the
largest inter-arrival gap of received packets around the move, on receive times), the
sequence numbers missing across that gap, the packets lost in the window, and the
overall loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import socket
import struct
import sys
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Analysis", "ProbeResult", "WindowResult", "analyse", "main", "run_probe"]

HEADER = struct.Struct("!IQ")  # seq u32, send time (CLOCK_MONOTONIC ns) u64
MS = 1_000_000  # ns per ms


@dataclass
class ProbeResult:
    bind: str
    peer: str
    port: int
    rate: float
    start_ns: int
    end_ns: int
    sent: int
    seqs: array = field(default_factory=lambda: array("I"))
    send_ns: array = field(default_factory=lambda: array("Q"))
    recv_ns: array = field(default_factory=lambda: array("Q"))

    def received(self) -> list[list[int]]:
        return [[s, t, r] for s, t, r in zip(self.seqs, self.send_ns, self.recv_ns)]

    def to_json(self) -> dict[str, Any]:
        return {
            "bind": self.bind, "peer": self.peer, "port": self.port, "rate": self.rate,
            "start_ns": self.start_ns, "end_ns": self.end_ns, "sent": self.sent,
            "received": self.received(),
        }


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True


def run_probe(bind: str, peer: str, port: int, rate: float, duration: float, *,
              size: int = 64, linger: float = 0.5, stop: _Stop | None = None) -> ProbeResult:
    """Send ``rate`` packets/s to ``peer`` for ``duration`` s while receiving its packets."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    size = max(size, HEADER.size)
    stop = stop or _Stop()
    interval_ns = int(1e9 / rate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((bind, port))
    sock.setblocking(False)
    dest = (peer, port)
    pad = bytes(size - HEADER.size)
    buf = bytearray(2048)
    result = ProbeResult(bind=bind, peer=peer, port=port, rate=rate, start_ns=0,
                         end_ns=0, sent=0)
    seqs, send_col, recv_col = result.seqs, result.send_ns, result.recv_ns
    now = time.monotonic_ns
    start = now()
    result.start_ns = start
    send_end = start + int(duration * 1e9)
    recv_end = send_end + int(linger * 1e9)
    next_send = start
    seq = 0
    try:
        while not stop.requested:
            t = now()
            # Send everything that is due (catch up after a stall, never drift).
            while t >= next_send and next_send < send_end:
                try:
                    sock.sendto(HEADER.pack(seq & 0xFFFFFFFF, t) + pad, dest)
                except (BlockingIOError, OSError):
                    pass  # unreachable/no buffer: the packet counts as sent and lost
                seq += 1
                next_send = start + seq * interval_ns
                t = now()
            if t >= recv_end:
                break
            wake = next_send if next_send < send_end else recv_end
            # select's timeout has microseconds: poll's whole ms, floored, spun the
            # loop for the last ms of every interval (docs/decisions.md 2026-12-06)
            if select.select((sock,), (), (), max(0, wake - t) / 1e9)[0]:
                while True:
                    try:
                        n = sock.recv_into(buf)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # e.g. ICMP port unreachable reported on the socket
                    r = now()
                    if n >= HEADER.size:
                        s, ts = HEADER.unpack_from(buf)
                        seqs.append(s)
                        send_col.append(ts)
                        recv_col.append(r)
    finally:
        sock.close()
    result.sent = seq
    result.end_ns = now()
    return result


# ---------------------------------------------------------------------------
# Analysis (pure)


@dataclass(frozen=True)
class WindowResult:
    name: str
    t_ns: int
    gap_ms: float            # largest inter-arrival gap overlapping the window
    gap_start_ns: int | None  # recv time of the last packet before the gap
    gap_end_ns: int | None    # recv time of the first packet after the gap
    missing_in_gap: int      # sequence numbers never received between those two packets
    lost: int                # packets sent inside the window that never arrived
    received: int            # packets received inside the window
    #: of ``lost``, those sent during the event's own span (``analyse``'s ``spans``:
    #: e.g. the emulated link move, where the MN's frames have no switch to go to)
    lost_in_span: int = 0


@dataclass(frozen=True)
class Analysis:
    sent: int
    received: int            # unique sequence numbers received
    duplicates: int
    lost: int
    loss_ratio: float
    interval_ms: float       # median inter-arrival time (the nominal spacing)
    latency_p50_ms: float | None
    windows: tuple[WindowResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyse(received: Iterable[Sequence[int]], sent_count: int,
            events: Iterable[tuple[str, int]], *,
            before_ms: float = 500.0, after_ms: float = 3000.0,
            sender: Mapping[str, Any] | None = None,
            receiver: Mapping[str, Any] | None = None,
            spans: Mapping[str, tuple[int, int]] | None = None) -> Analysis:
    """Analyse what one end received.

    ``received``: (seq, send_ns, recv_ns) triples; ``sent_count``: how many the peer sent;
    ``events``: (name, t_ns) on the same monotonic clock.  Each event's window is
    ``[t - before_ms, t + after_ms]``, clipped at the midpoints between consecutive
    events so windows never overlap.

    ``sender`` / ``receiver``: the two probe results (``start_ns``, ``end_ns``).  With
    them a stream that stops for good is seen: its last arrival is followed by a gap up
    to the end of the run (the earlier of the two ends), and a window's loss counts
    every sequence number that was sent inside it and never arrived (a lost packet's
    send time interpolated between its received neighbours, or the sender's end).
    Without them a stream that never resumes shows neither gap nor loss.

    ``spans``: event name -> (lo_ns, hi_ns), a span of that event (with ``sender`` and
    ``receiver``): its window's ``lost_in_span`` counts the lost packets sent inside it.
    """
    rows = sorted((int(r[2]), int(r[0]), int(r[1])) for r in received)  # by recv time
    recv_t = [r[0] for r in rows]
    unique = {r[1] for r in rows}
    duplicates = len(rows) - len(unique)
    lost = max(0, sent_count - len(unique))
    gaps = sorted(b - a for a, b in zip(recv_t, recv_t[1:]))
    interval_ms = gaps[len(gaps) // 2] / MS if gaps else 0.0
    latencies = sorted(r[0] - r[2] for r in rows)
    latency_p50 = latencies[len(latencies) // 2] / MS if latencies else None

    evs = sorted((int(t), str(n)) for n, t in events)
    before, after = int(before_ms * MS), int(after_ms * MS)
    gap_rows, send_times, loss_until = rows, None, None
    if sender and receiver and rows and sender.get("end_ns") and receiver.get("end_ns"):
        end = min(int(sender["end_ns"]), int(receiver["end_ns"]))
        if end > rows[-1][0]:   # the run's end, as an arrival: a stream that never resumes
            gap_rows = rows + [(end, sent_count, end)]
        send_times = _send_times(rows, sent_count, int(sender.get("start_ns") or 0), end)
        loss_until = end - int(TAIL_MS * MS)   # what left just before an end: not loss
    windows: list[WindowResult] = []
    for i, (t, name) in enumerate(evs):
        lo = t - before
        hi = t + after
        if i > 0:
            lo = max(lo, (evs[i - 1][0] + t) // 2)
        if i + 1 < len(evs):
            hi = min(hi, (t + evs[i + 1][0]) // 2)
        win = _window(name, t, lo, hi, rows, unique, send_times, gap_rows, loss_until)
        if spans and name in spans and send_times is not None:
            s_lo, s_hi = spans[name]
            win = replace(win, lost_in_span=_lost_sent_between(
                send_times, max(lo, s_lo), min(hi, s_hi, loss_until or hi)))
        windows.append(win)
    return Analysis(sent=sent_count, received=len(unique), duplicates=duplicates, lost=lost,
                    loss_ratio=(lost / sent_count) if sent_count else 0.0,
                    interval_ms=interval_ms, latency_p50_ms=latency_p50,
                    windows=tuple(windows))


def _send_times(rows: list[tuple[int, int, int]], sent_count: int, start_ns: int,
                end_ns: int) -> list[tuple[int, int, int, int]]:
    """Known send times as (seq_a, send_a, seq_b, send_b) spans between consecutive
    received sequence numbers, from (-1, sender start) to (sent_count, run end): a lost
    sequence number in a span was sent in between (linear interpolation)."""
    known = sorted({(r[1], r[2]) for r in rows})
    points = [(-1, min(start_ns, known[0][1]) if known else start_ns), *known]
    if sent_count > points[-1][0]:
        points.append((sent_count, max(end_ns, points[-1][1])))
    return [(a, ta, b, tb) for (a, ta), (b, tb) in zip(points, points[1:]) if b - a > 1]


def _lost_sent_between(spans: list[tuple[int, int, int, int]], lo: int, hi: int) -> int:
    """Sequence numbers never received whose (interpolated) send time is in [lo, hi]."""
    lost = 0
    for a, ta, b, tb in spans:
        if tb < lo or ta > hi:
            continue
        step = (tb - ta) / (b - a)
        if step <= 0:
            lost += (b - a - 1) if lo <= ta <= hi else 0
            continue
        first = max(a + 1, math.ceil(a + (lo - ta) / step))
        last = min(b - 1, math.floor(a + (hi - ta) / step))
        lost += max(0, last - first + 1)
    return lost


def _window(name: str, t: int, lo: int, hi: int, rows: list[tuple[int, int, int]],
            unique: set[int],
            send_times: list[tuple[int, int, int, int]] | None = None,
            gap_rows: list[tuple[int, int, int]] | None = None,
            loss_until: int | None = None) -> WindowResult:
    # Largest gap between consecutive arrivals whose interval overlaps [lo, hi].
    best = -1
    best_pair: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
    arrivals = rows if gap_rows is None else gap_rows
    for a, b in zip(arrivals, arrivals[1:]):
        if b[0] < lo or a[0] > hi:
            continue
        if b[0] - a[0] > best:
            best = b[0] - a[0]
            best_pair = (a, b)
    missing = 0
    if best_pair is not None:
        sa, sb = best_pair[0][1], best_pair[1][1]
        missing = sum(1 for s in range(sa + 1, sb) if s not in unique)
    # Loss in the window: the sequence range sent inside it, minus what arrived.
    in_window = [r for r in rows if lo <= r[2] <= hi]  # by send time
    lost = 0
    if send_times is not None:
        lost = _lost_sent_between(send_times, lo, min(hi, loss_until or hi))
    elif in_window:
        s_lo = min(r[1] for r in in_window)
        s_hi = max(r[1] for r in in_window)
        got = {r[1] for r in in_window}
        lost = (s_hi - s_lo + 1) - len(got)
    return WindowResult(
        name=name, t_ns=t, gap_ms=max(best, 0) / MS,
        gap_start_ns=best_pair[0][0] if best_pair else None,
        gap_end_ns=best_pair[1][0] if best_pair else None,
        missing_in_gap=missing, lost=lost,
        received=sum(1 for r in rows if lo <= r[0] <= hi),
    )


def load_result(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


# ---------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mininet_scripts.probe",
                                 description="paced UDP probe, both directions")
    ap.add_argument("--bind", required=True, help="local address")
    ap.add_argument("--peer", required=True, help="peer address")
    ap.add_argument("--port", type=int, default=5001)
    ap.add_argument("--rate", type=float, default=1000.0, help="packets per second")
    ap.add_argument("--duration", type=float, required=True, help="seconds of sending")
    ap.add_argument("--size", type=int, default=64, help="UDP payload bytes")
    ap.add_argument("--linger", type=float, default=0.5,
                    help="seconds to keep receiving after sending ends")
    ap.add_argument("--out", required=True, help="JSON result file")
    args = ap.parse_args(argv)
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    result = run_probe(args.bind, args.peer, args.port, args.rate, args.duration,
                       size=args.size, linger=args.linger, stop=stop)
    tmp = f"{args.out}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result.to_json(), fh, separators=(",", ":"))
    os.replace(tmp, args.out)
    print(f"probe {args.bind}->{args.peer}: sent {result.sent}, "
          f"received {len(result.seqs)}", file=sys.stderr)
    return 0


TAIL_MS = 200.0   # packets sent this close to either probe's end are not counted lost


def steady_loss(receiver: dict[str, Any], sender: dict[str, Any],
                tail_ms: float = TAIL_MS) -> tuple[int, int]:
    """(expected, lost) of ``sender``'s packets while both ends were running.

    Packets the sender emitted before the receiver's socket existed (or after it
    closed) are not network loss: a probe end starts a few hundred milliseconds after
    the other on a loaded machine.  Sequence ``i`` left the sender at
    ``start_ns + i / rate``; only those inside ``[max(starts), min(ends) - tail]``
    count."""
    rate = float(sender.get("rate") or 0)
    if rate <= 0 or sender.get("start_ns") is None or receiver.get("start_ns") is None:
        return int(sender.get("sent", 0)), max(0, int(sender.get("sent", 0))
                                                 - len({r[0] for r in receiver["received"]}))
    interval = 1e9 / rate
    lo = max(receiver["start_ns"], sender["start_ns"])
    hi = min(receiver["end_ns"], sender["end_ns"]) - int(tail_ms * MS)
    first = max(0, int((lo - sender["start_ns"]) / interval) + 1)
    last = min(int(sender["sent"]) - 1, int((hi - sender["start_ns"]) / interval))
    if last < first:
        return 0, 0
    got = {int(r[0]) for r in receiver["received"] if first <= int(r[0]) <= last}
    expected = last - first + 1
    return expected, expected - len(got)


if __name__ == "__main__":
    sys.exit(main())

"""bench.registration's open loop waits in the kernel between sends.

It floored the time left to whole ms: under 1 ms left meant ``poll(0)``, a busy loop
that took CPU from the server under test on the same 2 cores (docs/decisions.md
2026-12-06, "the probe's busy wait").  No server here: sends and the drain are
stubbed, the waits counted."""

from __future__ import annotations

import select
import socket

from bench.registration_load import LoadGenerator


def test_the_open_loop_does_not_spin_between_sends() -> None:
    lg = LoadGenerator.__new__(LoadGenerator)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    lg.socks, lg.by_fd = [sock], {sock.fileno(): sock}
    lg.poller = select.poll()
    lg.poller.register(sock, select.POLLIN)
    lg.busy = {}
    sent, waits = [], []
    lg._send_one = lambda: sent.append(1) or True          # type: ignore[method-assign]
    real = LoadGenerator._receive

    def receive(timeout_ms, *a):                           # type: ignore[no-untyped-def]
        waits.append(timeout_ms)
        return real(lg, timeout_ms, *a)

    lg._receive = receive                                  # type: ignore[method-assign]
    lg._drain = lambda *a: 0                               # type: ignore[method-assign]
    try:
        res = lg.open_loop(500, 0.4)
    finally:
        sock.close()
    assert res["sent"] >= 150
    assert len(waits) <= 4 * len(sent), f"{len(waits)} waits for {len(sent)} sends"

"""``bench.registration``'s load generator: virtual mobile nodes over UDP (closed and
open loop, with CPU time per registration of the server processes and of itself), and
the clients of the two reference hops.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import REPO, summary
from bench.registration_server import (RRP, SPI, USER_BASE, USER_SPACING, Server,
                                       _amr_fields, build_user_rrq)
from controller.proto import mip


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` used so far (/proc; all threads)."""
    return sum(process_cpu_split(pids))


def process_cpu_split(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds the processes ``pids`` used so far (/proc; all
    threads): the system part is the kernel's (sockets, wake-ups, file writes)."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user += int(fields[11]) / tick      # utime
        system += int(fields[12]) / tick    # stime
    return user, system


def thread_cpu_s(pids: list[int]) -> dict[str, float]:
    """User + system CPU seconds per thread of the processes ``pids`` ("pid/tid")."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:     # the thread ended
                continue
            out[f"{pid}/{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


class LoadGenerator:
    """Virtual MNs over UDP: closed loop (window) or open loop (rate)."""

    def __init__(self, info: dict[str, Any], users: int, sockets: int = 4) -> None:
        self.targets = [(tuple(info["ingress"][k]), info["coa"][k])
                        for k in sorted(info["ingress"])]
        self.ha = info["ha"]
        self.users = users
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.poller = select.poll()
        self.by_fd = {s.fileno(): s for s in self.socks}
        for s in self.socks:
            self.poller.register(s, select.POLLIN)
        self.next_user = 0
        self.busy: dict[bytes, tuple[int, int, float]] = {}  # home addr -> (user, ident, t)
        self.last_sent = [-1e9] * users
        # the server process(es) whose CPU time a closed loop divides by registrations
        self.server_pids: list[int] = list(info.get("pids") or [info["pid"]])
        self._last_ident = 0

    def close(self) -> None:
        for s in self.socks:
            s.close()

    def _send_one(self) -> bool:
        """Send the next user's RRQ; False when no user may register yet (each waits
        ``USER_SPACING`` s after its last registration and for its reply)."""
        now = time.perf_counter()
        for _ in range(min(self.users, 64)):
            i = self.next_user
            if now - self.last_sent[i] < USER_SPACING:
                return False          # round robin: everyone after i is more recent
            self.next_user = (self.next_user + 1) % self.users
            home = (USER_BASE + i).packed
            if home not in self.busy:
                break
        else:
            return False
        self.last_sent[i] = now
        dst, coa = self.targets[i % len(self.targets)]
        ident = max(mip.ntp_identification(time.time()), self._last_ident + 256)
        self._last_ident = ident
        raw = build_user_rrq(i, coa, self.ha, ident)
        t = time.perf_counter()
        self.busy[home] = (i, ident, t)
        self.socks[i % len(self.socks)].sendto(raw, dst)
        return True

    def _receive(self, timeout_ms: float, lat: list[float], codes: dict[int, int],
                 accepted: list[float] | None = None) -> int:
        """Answers waiting within ``timeout_ms``: each one's latency into ``lat``, its
        code counted in ``codes``; an accepted one's (0 or 1) also into ``accepted``."""
        got = 0
        for fd, _ev in self.poller.poll(timeout_ms):
            s = self.by_fd[fd]
            while True:
                try:
                    data = s.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                t = time.perf_counter()
                if len(data) < RRP.size:
                    continue
                _type, code, _life, home, _ha, ident = RRP.unpack_from(data)
                entry = self.busy.get(home)
                if entry is None or entry[1] != ident:
                    continue
                del self.busy[home]
                lat.append(t - entry[2])
                if accepted is not None and code in (0, 1):
                    accepted.append(t - entry[2])
                codes[code] = codes.get(code, 0) + 1
                got += 1
        return got

    def _drain(self, lat: list[float], codes: dict[int, int], wait: float,
               accepted: list[float] | None = None) -> int:
        deadline = time.perf_counter() + wait
        while self.busy and time.perf_counter() < deadline:
            self._receive(20, lat, codes, accepted)
        lost = len(self.busy)
        self.busy.clear()
        return lost

    def closed_loop(self, window: int, duration: float, warmup: float = 0.5
                    ) -> dict[str, Any]:
        lat: list[float] = []
        codes: dict[int, int] = {}
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + duration
        done_at_measure = 0
        cpu0 = (process_cpu_split(self.server_pids), time.process_time())
        threads0 = thread_cpu_s(self.server_pids)
        while len(self.busy) < window and self._send_one():
            pass
        measuring = False
        while True:
            now = time.perf_counter()
            if not measuring and now >= t_measure:
                measuring = True
                lat.clear()
                codes.clear()
                done_at_measure = 0
                cpu0 = (process_cpu_split(self.server_pids), time.process_time())
                threads0 = thread_cpu_s(self.server_pids)
            if now >= t_end:
                break
            got = self._receive(5 if len(self.busy) < window else 50, lat, codes)
            done_at_measure += got
            while len(self.busy) < window and self._send_one():
                pass
        elapsed = time.perf_counter() - t_measure
        completed = len(lat)
        user1, system1 = process_cpu_split(self.server_pids)
        server_system = system1 - cpu0[0][1]
        server_cpu = user1 - cpu0[0][0] + server_system
        client_cpu = time.process_time() - cpu0[1]
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu_s(self.server_pids).items()}
        lost = self._drain([], {}, 5.0)
        ms = [x * 1000 for x in lat]
        per = max(completed, 1)
        return {"window": window, "rate": round(completed / elapsed, 1),
                "completed": completed, "codes": codes, "unanswered": lost,
                "latency_ms": summary(ms),
                # CPU time per registration: the figure that is stable on a noisy machine
                "server_cpu_us_per_reg": round(server_cpu / per * 1e6, 1),
                # of which in the kernel (the process's system time)
                "server_system_us_per_reg": round(server_system / per * 1e6, 1),
                "loadgen_cpu_us_per_reg": round(client_cpu / per * 1e6, 1),
                # per server thread ("pid/tid"; bench.registration names them)
                "server_thread_cpu_us_per_reg": {k: round(v / per * 1e6, 1)
                                                 for k, v in threads.items() if v > 0}}

    def open_loop(self, rate: float, duration: float) -> dict[str, Any]:
        """Registrations paced at ``rate``/s for ``duration`` s.  ``completed`` counts
        every answer, refusals too (admission control answers 66 at once); the
        accepted ones have their own rate and latency (``accepted_rate``,
        ``latency_accepted_ms``)."""
        lat: list[float] = []
        acc: list[float] = []
        codes: dict[int, int] = {}
        interval = 1.0 / rate
        start = time.perf_counter()
        end = start + duration
        k = 0
        skipped = 0
        while True:
            now = time.perf_counter()
            while k * interval + start <= now and k * interval + start < end:
                if not self._send_one():
                    skipped += 1
                k += 1
                now = time.perf_counter()
            if now >= end:
                break
            wake = start + k * interval
            # float ms: poll rounds it up; floored to whole ms it spun the last ms
            # of every interval (docs/decisions.md 2026-12-06, "the probe's busy wait")
            self._receive(max(0.0, (wake - time.perf_counter()) * 1000), lat, codes, acc)
        sent = k - skipped
        lost = self._drain(lat, codes, 3.0, acc)
        elapsed = time.perf_counter() - start
        ms = [x * 1000 for x in lat]
        return {"offered": rate, "sent": sent, "completed": len(lat),
                "achieved_rate": round(len(lat) / duration, 1), "codes": codes,
                "accepted": len(acc), "accepted_rate": round(len(acc) / duration, 1),
                "unanswered": lost, "user_busy_skips": skipped,
                "elapsed_s": round(elapsed, 2), "latency_ms": summary(ms),
                "latency_accepted_ms": summary([x * 1000 for x in acc])}


# ----------------------------------------------------------------- reference hops


def ref_ours(duration: float, windows: list[int]) -> dict[str, Any]:
    from controller.adapters.diameter_peer import DiameterNode
    from controller.proto import diameter as dia
    srv = Server("--serve-ref-ours")
    f = _amr_fields()
    out: dict[str, Any] = {"name": "our DiameterNode, one AMR/AMA hop (asyncio)"}

    async def run() -> None:
        node = DiameterNode("fa1.a.example", "a.example")
        conn = await node.connect("127.0.0.1", srv.info["port"])
        seq = iter(range(1 << 30))

        def amr() -> Any:
            return dia.AmRequest(
                session_id=f"fa1.a.example;1;{next(seq)}", origin_host="fa1.a.example",
                origin_realm="a.example", destination_realm="home.example",
                user_name=f["nai"], reg_request=f["rrq"], mn_aaa_spi=SPI,
                auth_input_length=f["input_len"], authenticator_length=f["auth_len"],
                authenticator_offset=f["auth_off"], home_address=str(USER_BASE),
                home_agent_address="10.0.0.1", feature_vector=4, foreign_agent="fa1")

        for w in windows:
            lat: list[float] = []
            stop = time.perf_counter() + duration

            async def worker() -> None:
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    await node.request(amr(), peer=conn)
                    lat.append(time.perf_counter() - t)
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(w)))
            el = time.perf_counter() - t0
            out[f"window_{w}"] = {"rate": round(len(lat) / el, 1),
                                  "latency_ms": summary([x * 1000 for x in lat])}
        await node.close()
    try:
        asyncio.run(run())
    finally:
        srv.close()
    return out


def ref_pydiameter(duration: float, windows: list[int]) -> dict[str, Any]:
    """python-diameter both ends, each in its own process (client: ``--ref-client``)."""
    srv = Server("--serve-ref-pydiameter")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.registration", "--ref-client",
             json.dumps({"port": srv.info["port"], "duration": duration,
                         "windows": windows})],
            capture_output=True, text=True, cwd=str(REPO), timeout=60 + 4 * duration)
    finally:
        srv.close()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"python-diameter client failed: {proc.stderr[-1500:]}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def ref_client_pydiameter(cfg: dict[str, Any]) -> int:
    from diameter.message.avp.grouped import MipMnAaaAuth
    from diameter.message.commands import AaMobileNodeRequest
    from diameter.node import Node
    from diameter.node.application import SimpleThreadingApplication
    duration, windows = float(cfg["duration"]), list(cfg["windows"])
    f = _amr_fields()
    out: dict[str, Any] = {"name": "python-diameter Node, one AMR/AMA hop (threaded)"}
    node = Node("fa1.a.example", "a.example")
    node.idle_timeout = 3600
    peer = node.add_peer(f"aaa://aaah.home.example:{cfg['port']};transport=tcp",
                         "home.example", ip_addresses=["127.0.0.1"], is_persistent=True,
                         is_default=True)
    app = SimpleThreadingApplication(2, is_auth_application=True)
    node.add_application(app, [peer])
    node.start()
    app.wait_for_ready(10)
    counter = iter(range(1 << 30))
    lock = threading.Lock()

    def amr() -> Any:
        with lock:
            n = next(counter)
        m = AaMobileNodeRequest()
        m.session_id = f"fa1.a.example;1;{n}"
        m.auth_application_id = 2
        m.origin_host = b"fa1.a.example"
        m.origin_realm = b"a.example"
        m.destination_realm = b"home.example"
        m.user_name = f["nai"]
        m.mip_reg_request = f["rrq"]
        m.mip_mn_aaa_auth = MipMnAaaAuth(SPI, f["input_len"], f["auth_len"], f["auth_off"])
        m.mip_feature_vector = 4
        return m

    for w in windows:
        lat: list[float] = []
        stop = time.perf_counter() + duration

        def worker() -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                app.send_request(amr(), timeout=5)
                lat.append(time.perf_counter() - t)
        threads = [threading.Thread(target=worker) for _ in range(w)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        el = time.perf_counter() - t0
        out[f"window_{w}"] = {"rate": round(len(lat) / el, 1),
                              "latency_ms": summary([x * 1000 for x in lat])}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    os._exit(0)   # Node.stop joins its threads for ~10 s



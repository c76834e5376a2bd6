"""A minimal OVSDB JSON-RPC client (RFC 7047) for the private Open vSwitch.

``ovs-vsctl`` costs a process spawn, a fresh connection, a full read of the tables it
needs and, by default, a wait for ``ovs-vswitchd`` to apply the change.  For the hot
path of the emulation (moving a mobile node's link, ``MipvpnNet.move_host``) this client
keeps one connection to ``$OVS_RUNDIR/db.sock`` and sends exactly the operations
``ovs-vsctl del-port A X -- add-port B X -- set Interface X ofport_request=N`` sends,
plus the ``next_cfg`` increment; it then waits, like ``ovs-vsctl``, until ``ovs-vswitchd``
reports that configuration applied (``cur_cfg``), watched through a monitor on the
same connection instead of a new process.

Only the standard library is used (the ``ovs`` package's IDL would mirror whole tables).
"""

from __future__ import annotations

import codecs
import json
import os
import select
import socket
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

__all__ = ["OvsdbClient", "OvsdbError", "UnixctlClient"]

DB = "Open_vSwitch"


class OvsdbError(RuntimeError):
    """The OVSDB server refused a transaction, or could not be reached.

    ``committed`` is True when the change was made but ovs-vswitchd did not apply it
    as asked (or not in time)."""

    def __init__(self, message: str, *, committed: bool = False) -> None:
        super().__init__(message)
        self.committed = committed


class OvsdbClient:
    """One persistent JSON-RPC connection to an ``ovsdb-server`` unix socket.

    Not for concurrent use from several threads without the caller's lock: every
    public method takes ``self.lock``.
    """

    def __init__(self, sock_path: str | Path | None = None, *, timeout: float = 5.0) -> None:
        if sock_path is None:
            rundir = os.environ.get("OVS_RUNDIR")
            if not rundir:
                raise OvsdbError("OVS_RUNDIR is not set (no private Open vSwitch)")
            sock_path = Path(rundir) / "db.sock"
        self.sock_path = str(sock_path)
        self.timeout = timeout
        self.lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._buf = ""
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._next_id = 0
        self.cur_cfg: int | None = None  # ovs-vswitchd's last applied configuration
        self.ifaces: dict[str, dict[str, Any]] = {}  # Interface rows by uuid (monitored)
        self._port_uuids: dict[str, str] = {}  # port name -> Port row UUID we inserted

    # -- connection -----------------------------------------------------------

    def connect(self) -> None:
        if self._sock is not None:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.sock_path)
        except OSError as exc:
            s.close()
            raise OvsdbError(f"cannot connect to {self.sock_path}: {exc}") from None
        self._sock, self._buf = s, ""
        self._utf8.reset()
        self.cur_cfg, self.ifaces = None, {}
        # Watch cur_cfg (ovs-vswitchd's progress) and the interfaces' ofport/error, as
        # ovs-vsctl does when it waits.
        initial = self._call("monitor", [DB, "mipvpn", {
            "Open_vSwitch": {"columns": ["cur_cfg"]},
            "Interface": {"columns": ["name", "ofport", "error"]},
        }])
        self._apply_update(initial)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> OvsdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _alive(self) -> bool:
        """False when the server closed our connection (it then reads as EOF)."""
        if self._sock is None:
            return False
        try:
            self._pump(0.0)
        except OvsdbError:
            self.close()
            return False
        return True

    # -- JSON-RPC -------------------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(json.dumps(msg, separators=(",", ":")).encode())
        except OSError as exc:
            self.close()
            raise OvsdbError(f"OVSDB send failed: {exc}") from None

    def _pump(self, wait: float) -> list[dict[str, Any]]:
        """Read what is available within ``wait`` seconds; return replies, handle
        notifications (monitor updates, echo) on the way."""
        assert self._sock is not None
        replies: list[dict[str, Any]] = []
        ready, _, _ = select.select([self._sock], [], [], max(wait, 0.0))
        if ready:
            try:
                data = self._sock.recv(65536)
            except OSError as exc:
                self.close()
                raise OvsdbError(f"OVSDB receive failed: {exc}") from None
            if not data:
                self.close()
                raise OvsdbError("ovsdb-server closed the connection")
            self._buf += self._utf8.decode(data)
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                break
            try:
                msg, end = self._decoder.raw_decode(text)
            except ValueError:
                self._buf = text  # incomplete message
                break
            self._buf = text[end:]
            method = msg.get("method")
            if method == "update":
                self._apply_update(msg["params"][1])
            elif method == "echo":
                self._send({"id": msg["id"], "result": msg["params"], "error": None})
            elif method is None:
                replies.append(msg)
        return replies

    def _call(self, method: str, params: list[Any]) -> Any:
        self._next_id += 1
        rid = self._next_id
        self._send({"id": rid, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout
        while True:
            for reply in self._pump(deadline - time.monotonic()):
                if reply.get("id") == rid:
                    if reply.get("error") is not None:
                        raise OvsdbError(f"OVSDB {method}: {reply['error']}")
                    return reply["result"]
            if time.monotonic() >= deadline:
                self.close()
                raise OvsdbError(f"OVSDB {method}: no reply within {self.timeout:.1f} s")

    def _apply_update(self, update: dict[str, Any]) -> None:
        for row in (update.get("Open_vSwitch") or {}).values():
            new = row.get("new")
            if new and "cur_cfg" in new:
                self.cur_cfg = int(new["cur_cfg"])
        for uuid, row in (update.get("Interface") or {}).items():
            new = row.get("new")
            if new is None:
                self.ifaces.pop(uuid, None)
            else:
                self.ifaces[uuid] = {**self.ifaces.get(uuid, {}), **new}

    # -- operations -----------------------------------------------------------

    def transact(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ``ops`` as one transaction; raise ``OvsdbError`` if any op failed."""
        with self.lock:
            if not self._alive():
                self.connect()
            result = self._call("transact", [DB, *ops])
        for i, res in enumerate(result):
            if res is not None and "error" in res:
                what = ops[i]["op"] if i < len(ops) else "commit"
                raise OvsdbError(f"OVSDB {what}: {res['error']}: {res.get('details', '')}")
        return result

    def wait_cfg(self, cfg: int, *, timeout: float | None = None) -> float:
        """Wait until ovs-vswitchd has applied configuration ``cfg`` (``cur_cfg``).
        Returns the seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + (self.timeout if timeout is None else timeout)
        with self.lock:
            if self._sock is None:
                self.connect()
            while self.cur_cfg is None or self.cur_cfg < cfg:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OvsdbError(f"ovs-vswitchd did not apply configuration {cfg} "
                                     f"(at {self.cur_cfg}) within the timeout")
                self._pump(left)
        return time.monotonic() - t0

    def iface(self, name: str) -> dict[str, Any] | None:
        """The monitored Interface row ``name`` (name, ofport, error), if any."""
        for row in self.ifaces.values():
            if row.get("name") == name:
                return row
        return None

    def port_uuid(self, name: str) -> str | None:
        rows = self.transact({"op": "select", "table": "Port", "where": [["name", "==", name]],
                              "columns": ["_uuid"]})[0]["rows"]
        return rows[0]["_uuid"][1] if rows else None

    def move_port(self, name: str, from_bridge: str, to_bridge: str, ofport: int, *,
                  wait: bool = True, purge: Callable[[], None] | None = None) -> int:
        """``ovs-vsctl del-port FROM NAME -- add-port TO NAME -- set Interface NAME
        ofport_request=OFPORT`` as one transaction, then (``wait``) wait until
        ovs-vswitchd applied it and check the interface got ``ofport``.  Returns the
        configuration number (``next_cfg``) of the move.

        With ``purge`` the move is two transactions: del-port, wait until ovs-vswitchd
        applied it, ``purge()`` (flush the datapath's flows, ``UnixctlClient.purge``),
        then add-port.  The userspace datapath gives the re-added port the datapath
        port number it just freed, so megaflows learnt while the port was on FROM
        (e.g. "punt to FROM's controller") would still match its first frames on TO:
        the mobile node's first Registration Request after a move went to the old
        foreign agent in 2 of 10 moves.  The purge leaves no such flow.

        The Port row's UUID is remembered from the previous move of ``name`` (saves
        one round trip); a stale one is looked up again."""
        uuid = self._port_uuids.pop(name, None)
        ops = self._del_ops if purge is not None else self._move_ops
        for attempt in (0, 1):
            if uuid is None:
                uuid = self.port_uuid(name)
                if uuid is None:
                    raise OvsdbError(f"no port named {name!r}")
            try:
                res = self.transact(*ops(name, uuid, from_bridge, to_bridge, ofport))
                break
            except OvsdbError as exc:
                # "timed out": a precondition (a "wait" op) failed; nothing was changed.
                if "timed out" not in str(exc):
                    raise
                if attempt == 1 or self.port_uuid(name) == uuid:
                    raise OvsdbError(f"port {name!r} is not on bridge {from_bridge!r} "
                                     f"or bridge {to_bridge!r} does not exist") from None
                uuid = None  # stale cached UUID: look it up and try again
        if purge is not None:
            try:
                self.wait_cfg(int(res[-1]["rows"][0]["next_cfg"]))
                purge()
                res = self.transact(*self._add_ops(name, to_bridge, ofport))
            except OvsdbError as exc:
                raise OvsdbError(f"{name} left {from_bridge}, then: {exc}",
                                 committed=True) from None
            self._port_uuids[name] = res[1]["uuid"][1]
        else:
            self._port_uuids[name] = res[4]["uuid"][1]
        cfg = int(res[-1]["rows"][0]["next_cfg"])
        if wait:
            try:
                self.wait_cfg(cfg)
            except OvsdbError as exc:
                raise OvsdbError(str(exc), committed=True) from None
            row = self.iface(name) or {}
            got, error = row.get("ofport"), row.get("error")
            if got != ofport:
                if not isinstance(error, str):  # ["set", []]: no error
                    error = "no error reported"
                raise OvsdbError(f"{name} is on {to_bridge} with ofport {got!r}, not "
                                 f"{ofport} ({error})", committed=True)
        return cfg

    def add_port(self, name: str, bridge: str, ofport: int) -> float:
        """``ovs-vsctl add-port BRIDGE NAME -- set Interface NAME ofport_request=OFPORT``,
        waited for, checked (a cell link made at a move, ``air.py``).  Returns the
        seconds it took."""
        t0 = time.monotonic()
        res = self.transact(*self._add_ops(name, bridge, ofport))
        self.wait_cfg(int(res[-1]["rows"][0]["next_cfg"]))
        got = (self.iface(name) or {}).get("ofport")
        if got != ofport:
            raise OvsdbError(f"{name} is on {bridge} with ofport {got!r}, not {ofport}",
                             committed=True)
        return time.monotonic() - t0

    def del_port(self, name: str, bridge: str) -> None:
        """``ovs-vsctl del-port BRIDGE NAME``, waited for."""
        uuid = self._port_uuids.pop(name, None) or self.port_uuid(name)
        if uuid is None:
            raise OvsdbError(f"no port named {name!r}")
        res = self.transact(*self._del_ops(name, uuid, bridge, bridge, 0))
        self.wait_cfg(int(res[-1]["rows"][0]["next_cfg"]))

    @staticmethod
    def _del_ops(name: str, uuid: str, from_bridge: str, to_bridge: str,
                 ofport: int) -> list[dict[str, Any]]:
        port = ["uuid", uuid]
        return [
            # Preconditions (timeout 0: fail at once, and the whole transaction with
            # them): the port is on FROM_BRIDGE, and TO_BRIDGE exists.
            {"op": "wait", "timeout": 0, "table": "Bridge",
             "where": [["name", "==", from_bridge], ["ports", "includes", port]],
             "columns": ["name"], "until": "==", "rows": [{"name": from_bridge}]},
            {"op": "wait", "timeout": 0, "table": "Bridge",
             "where": [["name", "==", to_bridge]],
             "columns": ["name"], "until": "==", "rows": [{"name": to_bridge}]},
            # del-port: the Port and its Interface are garbage-collected with the
            # last reference (neither table is a root set).
            {"op": "mutate", "table": "Bridge", "where": [["name", "==", from_bridge]],
             "mutations": [["ports", "delete", port]]},
            *_APPLY,
        ]

    @staticmethod
    def _add_ops(name: str, to_bridge: str, ofport: int) -> list[dict[str, Any]]:
        return [
            # add-port + ofport_request
            {"op": "insert", "table": "Interface", "uuid-name": "iface",
             "row": {"name": name, "ofport_request": ofport}},
            {"op": "insert", "table": "Port", "uuid-name": "port",
             "row": {"name": name, "interfaces": ["named-uuid", "iface"]}},
            {"op": "mutate", "table": "Bridge", "where": [["name", "==", to_bridge]],
             "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]},
            *_APPLY,
        ]

    @classmethod
    def _move_ops(cls, name: str, uuid: str, from_bridge: str, to_bridge: str,
                  ofport: int) -> list[dict[str, Any]]:
        return [*cls._del_ops(name, uuid, from_bridge, to_bridge, ofport)[:-2],
                *cls._add_ops(name, to_bridge, ofport)]


#: ask ovs-vswitchd to apply a transaction, and learn the number to wait for
_APPLY: list[dict[str, Any]] = [
    {"op": "mutate", "table": "Open_vSwitch", "where": [],
     "mutations": [["next_cfg", "+=", 1]]},
    {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]},
]


class UnixctlClient:
    """One persistent connection to ``ovs-vswitchd``'s control socket
    (``$OVS_RUNDIR/ovs-vswitchd.PID.ctl``; what ``ovs-appctl`` sends, without the
    process spawn)."""

    def __init__(self, sock_path: str | Path | None = None, *, timeout: float = 5.0) -> None:
        if sock_path is None:
            rundir = os.environ.get("OVS_RUNDIR")
            if not rundir:
                raise OvsdbError("OVS_RUNDIR is not set (no private Open vSwitch)")
            pid = (Path(rundir) / "ovs-vswitchd.pid").read_text().strip()
            sock_path = Path(rundir) / f"ovs-vswitchd.{pid}.ctl"
        self.sock_path = str(sock_path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = ""
        self._decoder = json.JSONDecoder()
        self._next_id = 0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, command: str, *args: str) -> str:
        """Run ``ovs-appctl COMMAND ARGS...``; its output, or ``OvsdbError``."""
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.sock_path)
            except OSError as exc:
                sock.close()
                raise OvsdbError(f"ovs-vswitchd control socket: {exc}") from None
            self._sock, self._buf = sock, ""
        self._next_id += 1
        msg = {"id": self._next_id, "method": command, "params": list(args)}
        try:
            self._sock.sendall(json.dumps(msg).encode())
            while True:
                try:
                    reply, end = self._decoder.raw_decode(self._buf.lstrip())
                    self._buf = self._buf.lstrip()[end:]
                    if reply.get("id") == self._next_id:
                        break
                    continue
                except ValueError:
                    pass
                data = self._sock.recv(65536)
                if not data:
                    raise OSError("ovs-vswitchd closed the control connection")
                self._buf += data.decode()
        except OSError as exc:
            self.close()
            raise OvsdbError(f"ovs-appctl {command}: {exc}") from None
        if reply.get("error") is not None:
            raise OvsdbError(f"ovs-appctl {command}: {reply['error']}")
        return str(reply.get("result") or "")

    def purge(self) -> None:
        """``ovs-appctl revalidator/purge``: every datapath flow deleted (the next
        packet of each is an upcall, translated with today's configuration)."""
        self.call("revalidator/purge")

"""The emulation's port move: del-port, purge of the datapath's flows, add-port, in
that order (the MN's first frame after a move must not meet a flow learnt on the old
switch), and the ovs-vswitchd control-socket client the purge goes through."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from mininet_scripts.ovsdb import OvsdbClient, OvsdbError, UnixctlClient


class _Recorder(OvsdbClient):
    def __init__(self) -> None:
        super().__init__("/nonexistent")
        self.calls: list[tuple[str, Any]] = []
        self.cfg = 10

    def transact(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("transact", [op["op"] + ":" + op["table"] for op in ops]))
        self.cfg += 1
        out: list[dict[str, Any]] = []
        for op in ops:
            if op["op"] == "insert":
                out.append({"uuid": ["uuid", f"u-{op['table']}"]})
            elif op["op"] == "select":
                out.append({"rows": [{"next_cfg": self.cfg}]})
            else:
                out.append({})
        return out

    def wait_cfg(self, cfg: int, *, timeout: float | None = None) -> float:
        self.calls.append(("wait_cfg", cfg))
        self.cur_cfg = cfg
        return 0.0

    def iface(self, name: str) -> dict[str, Any] | None:
        return {"name": name, "ofport": 2}

    def port_uuid(self, name: str) -> str | None:
        return "old-port"


def test_move_with_purge_deletes_purges_then_adds() -> None:
    client = _Recorder()
    client.move_port("mva1-eth2", "mva1", "mva2", 2,
                     purge=lambda: client.calls.append(("purge", None)))
    kinds = [c[0] for c in client.calls]
    assert kinds == ["transact", "wait_cfg", "purge", "transact", "wait_cfg"]
    first, second = client.calls[0][1], client.calls[3][1]
    assert "mutate:Bridge" in first and not any(o.startswith("insert") for o in first)
    assert "insert:Interface" in second and "insert:Port" in second
    assert client._port_uuids["mva1-eth2"] == "u-Port"  # the new row, for the next move


def test_move_without_purge_is_one_transaction() -> None:
    client = _Recorder()
    client.move_port("mva1-eth2", "mva1", "mva2", 2)
    assert [c[0] for c in client.calls] == ["transact", "wait_cfg"]
    assert client._port_uuids["mva1-eth2"] == "u-Port"


def test_failed_purge_says_the_port_left() -> None:
    client = _Recorder()

    def purge() -> None:
        raise OvsdbError("ovs-appctl revalidator/purge: gone")

    with pytest.raises(OvsdbError, match="left mva1") as err:
        client.move_port("mva1-eth2", "mva1", "mva2", 2, purge=purge)
    assert err.value.committed


def test_add_port_for_a_cell_link_waits_and_checks_the_ofport() -> None:
    client = _Recorder()
    client.add_port("mva2-eth7", "mva2", 2)
    assert [c[0] for c in client.calls] == ["transact", "wait_cfg"]
    ops = client.calls[0][1]
    assert ops[:3] == ["insert:Interface", "insert:Port", "mutate:Bridge"]
    with pytest.raises(OvsdbError, match="not 7"):
        client.add_port("mva2-eth7", "mva2", 7)      # OVS gave it 2


def test_del_port_removes_from_its_bridge_and_waits() -> None:
    client = _Recorder()
    client.del_port("mva2-eth7", "mva2")
    assert [c[0] for c in client.calls] == ["transact", "wait_cfg"]
    ops = client.calls[0][1]
    assert "mutate:Bridge" in ops and not any(o.startswith("insert") for o in ops)


def _serve(path: Path, replies: dict[str, Any], seen: list[dict[str, Any]]) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        dec, buf = json.JSONDecoder(), ""
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                buf += data.decode()
                while buf.strip():
                    try:
                        msg, end = dec.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    seen.append(msg)
                    result, error = replies.get(msg["method"], (None, "unknown command"))
                    conn.sendall(json.dumps({"id": msg["id"], "result": result,
                                             "error": error}).encode())
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_unixctl_purge_and_errors(tmp_path: Path) -> None:
    (tmp_path / "ovs-vswitchd.pid").write_text("4242\n")
    seen: list[dict[str, Any]] = []
    t = _serve(tmp_path / "ovs-vswitchd.4242.ctl",
               {"revalidator/purge": ("", None), "version": ("ovs 3.1.0\n", None)}, seen)
    import os
    old = os.environ.get("OVS_RUNDIR")
    os.environ["OVS_RUNDIR"] = str(tmp_path)
    try:
        client = UnixctlClient(timeout=2)
    finally:
        if old is None:
            del os.environ["OVS_RUNDIR"]
        else:
            os.environ["OVS_RUNDIR"] = old
    client.purge()
    assert client.call("version") == "ovs 3.1.0\n"
    with pytest.raises(OvsdbError, match="unknown command"):
        client.call("nope/nope")
    client.close()
    t.join(2)
    assert [m["method"] for m in seen] == ["revalidator/purge", "version", "nope/nope"]
    assert seen[0]["params"] == []

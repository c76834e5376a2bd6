"""controller/adapters/peercred.py: the owner of the other end of a loopback TCP
connection, read from /proc/net/tcp (issue 11: an out-of-process peer on loopback)."""

from __future__ import annotations

import os
import socket

from controller.adapters.peercred import _endpoint, socket_owner


def test_endpoint_parses_the_kernels_format() -> None:
    assert _endpoint("0100007F:1F90") == ("127.0.0.1", 8080)


def test_owner_of_a_loopback_connection_is_this_process_user() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    acc, peer = srv.accept()
    try:
        # the accepting side asks: who owns the socket at ``peer`` talking to me?
        assert socket_owner(peer, acc.getsockname()) == os.geteuid()
        assert socket_owner(("127.0.0.1", 1), acc.getsockname()) is None
    finally:
        for s in (cli, acc, srv):
            s.close()

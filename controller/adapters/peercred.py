"""Who owns the other end of a loopback TCP connection (Linux ``/proc/net/tcp``).

A Diameter peer that runs in *another* process on this machine and connects over
loopback proves nothing by its source address: any local process can connect from
127.0.0.1 and announce any Origin-Host (issue 11).  Loopback TCP has no SO_PEERCRED,
but the kernel lists both ends of every socket of this network namespace, each with the
uid that owns it: the peer's socket is the one whose local end is the connection's
remote end.  The peer table then admits an out-of-process peer on loopback only when
it runs as this controller's user (docs/security.md); anything stronger is TLS.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

_TABLES = {socket.AF_INET: "/proc/net/tcp", socket.AF_INET6: "/proc/net/tcp6"}


def _endpoint(field: str) -> tuple[str, int]:
    """``0100007F:1F90`` (address words in host byte order) -> ("127.0.0.1", 8080)."""
    addr, port = field.split(":")
    raw = bytes.fromhex(addr)
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    packed = b"".join(struct.pack("!I", w) for w in words)
    return str(ipaddress.ip_address(packed)), int(port, 16)


def _norm(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def socket_owner(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The uid owning the TCP socket whose local end is ``local`` and remote end
    ``remote`` (both as seen from that socket), or None when it is not listed (not in
    this network namespace, already gone, not Linux)."""
    want = ((_norm(local[0]), int(local[1])), (_norm(remote[0]), int(remote[1])))
    for table in _TABLES.values():
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)                      # the header line
                for line in f:
                    cols = line.split()
                    if len(cols) < 8:
                        continue
                    try:
                        ends = (_endpoint(cols[1]), _endpoint(cols[2]))
                    except (ValueError, struct.error):
                        continue
                    if ((_norm(ends[0][0]), ends[0][1]), (_norm(ends[1][0]), ends[1][1])
                            ) == want:
                        return int(cols[7])
        except OSError:
            continue
    return None

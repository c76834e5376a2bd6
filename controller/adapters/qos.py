"""QoS on a gateway (claims 8, 9): a rate limit and DSCP marking per tunnel side.

``GatewayQos`` is the gateway-side half of the profile's service quality (the switch
side is OpenFlow meters, ``controller.core.flows.qos_flow_mods``).  For every tunnel side
whose ``qos`` sets a rate or a DSCP it configures, inside the gateway's network
namespace, the traffic *entering* that tunnel at this gateway (source in the local
selectors, destination in the remote selectors):

* rate: an HTB class ``1:<minor>`` (rate = ceil = ``rate_kbps``, pfifo leaf) under one
  root HTB ``1:`` per device; unclassified traffic is not shaped (``default 0``: HTB's
  direct queue).  One u32 filter per (local, remote) selector pair, all at priority
  ``<minor>``, so a tunnel's filters go with one delete.
* DSCP: one nftables table ``mipvpn_q<minor>`` with a postrouting (mangle priority)
  chain rewriting the DS field, ECN bits kept, IPv4 checksum updated.  This kernel has
  no ``act_pedit``/``act_csum``, so tc cannot rewrite DSCP; nftables' payload-write with
  checksum update is in the core of nf_tables.  Built through pyroute2's nfnetlink
  socket (no ``nft`` binary).

Where: with ``kernel-libipsec`` (no kernel ESP, these machines) cleartext enters the
tunnels through the TUN device ``ipsec0``: the HTB sits on ``ipsec0`` and the u32 keys
are the inner selectors, so two tunnels between the same two gateways (two users) get
their own classes.  With kernel ESP there is no such device: the HTB sits on the device
routing to the peer and matches the outer addresses (per gateway pair; documented in
docs/qos.md, not exercised on these machines).

The gateway's network namespace is found the way ``StrongSwanGateway`` finds it: the
file ``netns`` ``CharonProcess`` writes next to the VICI socket.  Every netlink call runs
on one worker thread that entered that namespace (``setns``) when it started: the tc
(rtnetlink) and nftables sockets are created there and never leave it.  A gateway
without a namespace file (fakes, benchmarks) makes ``apply``/``remove`` no-ops.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from controller.core.vpn import QosSpec, TunnelSide
from controller.logtext import log_text

log = logging.getLogger("mipvpn.qos")

T = TypeVar("T")

LIBIPSEC_DEV = "ipsec0"
ROOT_HANDLE = 0x10000          # 1:
TC_H_ROOT = 0xFFFFFFFF
ETH_P_IP = 0x0800
FIRST_MINOR = 0x10
LEAF_LIMIT = 100               # packets queued per shaped tunnel
MIN_BURST_BYTES = 16_000       # HTB bucket: 10 ms of the rate, at least this
CLONE_NEWNET = 0x40000000
NFT_TABLE_PREFIX = "mipvpn_q"
NF_INET_POST_ROUTING = "postrouting"
NF_IP_PRI_MANGLE = -150


class QosError(RuntimeError):
    """QoS could not be set on a gateway."""


# --------------------------------------------------------------------------- pure plan

@dataclass(frozen=True)
class U32Key:
    """One u32 match: ``value``/``mask`` at byte ``offset`` of the IPv4 header."""

    value: int
    mask: int
    offset: int

    def as_pyroute2(self) -> str:
        return f"0x{self.value:08x}/0x{self.mask:08x}+{self.offset}"


def _net(selector: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(selector, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def selector_pairs(local: tuple[str, ...], remote: tuple[str, ...]) -> list[
        tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
    """(source, destination) networks of the traffic entering the tunnel (IPv4 only)."""
    srcs = [n for n in (_net(s) for s in local) if n is not None]
    dsts = [n for n in (_net(s) for s in remote) if n is not None]
    return [(s, d) for s in srcs for d in dsts]


def u32_keys(src: ipaddress.IPv4Network, dst: ipaddress.IPv4Network) -> list[U32Key]:
    """u32 keys for source/destination prefixes (a /0 needs no key)."""
    keys = []
    for net, offset in ((src, 12), (dst, 16)):
        if net.prefixlen:
            keys.append(U32Key(int(net.network_address), int(net.netmask), offset))
    return keys or [U32Key(0, 0, 0)]


def htb_burst_bytes(rate_kbps: int) -> int:
    return max(rate_kbps * 1000 // 8 // 100, MIN_BURST_BYTES)


def dscp_rewrite(dscp: int) -> tuple[bytes, bytes]:
    """(mask, xor) for the first 16 bits of the IPv4 header: keep version/IHL and ECN,
    set the DS field to ``dscp`` (what ``nft ... ip dscp set`` compiles to)."""
    if not 0 <= dscp <= 63:
        raise ValueError(f"DSCP {dscp} out of range 0..63")
    return b"\xff\x03", bytes([0, dscp << 2])


# --------------------------------------------------------------------------- nftables

def _expr(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"attrs": [("NFTA_EXPR_NAME", name),
                      ("NFTA_EXPR_DATA", {"attrs": [(f"NFTA_{name.upper()}_{k.upper()}", v)
                                                    for k, v in data.items()]})]}


def _value(data: bytes) -> dict[str, Any]:
    return {"attrs": [("NFTA_DATA_VALUE", data)]}


def nft_dscp_rule(src: ipaddress.IPv4Network, dst: ipaddress.IPv4Network,
                  dscp: int) -> list[dict[str, Any]]:
    """nf_tables expressions: ``ip saddr SRC ip daddr DST ip dscp set DSCP``."""
    exprs: list[dict[str, Any]] = []
    for net, offset in ((src, 12), (dst, 16)):
        if not net.prefixlen:
            continue
        exprs.append(_expr("payload", {"dreg": 1, "base": 1, "offset": offset, "len": 4}))
        exprs.append(_expr("bitwise", {"sreg": 1, "dreg": 1, "len": 4,
                                       "mask": _value(net.netmask.packed),
                                       "xor": _value(b"\0\0\0\0")}))
        exprs.append(_expr("cmp", {"sreg": 1, "op": 0,
                                   "data": _value(net.network_address.packed)}))
    mask, xor = dscp_rewrite(dscp)
    exprs.append(_expr("payload", {"dreg": 1, "base": 1, "offset": 0, "len": 2}))
    exprs.append(_expr("bitwise", {"sreg": 1, "dreg": 1, "len": 2, "mask": _value(mask),
                                   "xor": _value(xor)}))
    exprs.append(_expr("payload", {"sreg": 1, "base": 1, "offset": 0, "len": 2,
                                   "csum_type": 1, "csum_offset": 10}))
    return exprs


# --------------------------------------------------------------------------- netns

def _enter_netns(path: str) -> None:
    """Worker-thread initializer: move this thread into the gateway's namespace."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNET)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)
    threading.current_thread().name = f"qos-netns{path}"


@dataclass
class _Applied:
    minor: int
    device: int          # ifindex the class and filters are on (0: none)
    shaped: bool
    marked: bool
    qos: QosSpec


class GatewayQos:
    """tc + nftables for one gateway's tunnel sides, inside its network namespace."""

    def __init__(self, name: str, vici_socket_path: str | os.PathLike[str] | None = None,
                 netns: str | None = None) -> None:
        """``netns``: the gateway's network namespace path; when omitted, the ``netns``
        file next to ``vici_socket_path`` (written by ``CharonProcess``), read at the
        first tunnel with QoS.  Without either, nothing is configured."""
        self.name = name
        self._hint = Path(vici_socket_path).parent / "netns" if vici_socket_path else None
        self._netns = netns
        self._lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None
        self._ipr: Any = None
        self._nft: Any = None
        self._applied: dict[str, _Applied] = {}

    # -- worker

    def _namespace(self) -> str | None:
        path = self._netns
        if path is None and self._hint is not None and self._hint.exists():
            path = self._hint.read_text().strip()
        return path if path and os.path.exists(path) else None

    def _run(self, fn: Callable[[], T]) -> T | None:
        """``fn()`` on the worker in the gateway's namespace; None without a namespace."""
        if self._worker is None:
            path = self._namespace()
            if path is None:
                log.warning("%s: no network namespace known: QoS not set", self.name)
                return None
            self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"qos-{self.name}",
                                              initializer=_enter_netns, initargs=(path,))
        return self._worker.submit(fn).result()

    def _rtnl(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute
            self._ipr = IPRoute()
        return self._ipr

    def _nftables(self) -> Any:
        if self._nft is None:
            from pyroute2.nftables.main import NFTables
            self._nft = NFTables(nfgen_family=socket.AF_INET)
        return self._nft

    # -- API

    def apply(self, side: TunnelSide) -> None:
        """Set (or replace) the QoS of ``side``; a side without QoS clears any it had."""
        with self._lock:
            old = self._applied.get(side.tunnel_id)
            if side.qos == QosSpec():
                if old is not None:
                    self._run(lambda: self._clear(side.tunnel_id))
                return
            self._run(lambda: self._set(side))

    def remove(self, tunnel_id: str) -> None:
        """Drop the tunnel's class, filters and marking (idempotent)."""
        with self._lock:
            if tunnel_id in self._applied:
                self._run(lambda: self._clear(tunnel_id))

    def applied(self) -> dict[str, QosSpec]:
        """Tunnel id -> the QoS set on this gateway."""
        with self._lock:
            return {tid: a.qos for tid, a in self._applied.items()}

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
            if worker is None:
                return

            def close_sockets() -> None:
                for sock in (self._ipr, self._nft):
                    if sock is not None:
                        try:
                            sock.close()
                        except Exception:  # noqa: BLE001 - closing is best effort
                            pass
                self._ipr = self._nft = None

            worker.submit(close_sockets).result()
            worker.shutdown(wait=True)

    # -- worker-side implementation

    def _free_minor(self) -> int:
        used = {a.minor for a in self._applied.values()}
        minor = FIRST_MINOR
        while minor in used:
            minor += 1
        if minor > 0xFFFF:
            raise QosError(f"{self.name}: no free HTB class")
        return minor

    def _device(self, side: TunnelSide) -> tuple[int, bool]:
        """(ifindex, inner): ``ipsec0`` with inner selectors, else the device routing to
        the peer with outer addresses (kernel ESP)."""
        ipr = self._rtnl()
        found = ipr.link_lookup(ifname=LIBIPSEC_DEV)
        if found:
            return int(found[0]), True
        routes = ipr.route("get", dst=side.remote.address)
        oif = routes[0].get_attr("RTA_OIF") if routes else None
        if not oif:
            raise QosError(f"{self.name}: no route to {side.remote.address}")
        return int(oif), False

    def _ensure_root(self, index: int) -> None:
        ipr = self._rtnl()
        for q in ipr.get_qdiscs(index=index):
            if (q["parent"] == TC_H_ROOT and q["handle"] == ROOT_HANDLE
                    and q.get_attr("TCA_KIND") == "htb"):
                return
        ipr.tc("replace", "htb", index=index, handle=ROOT_HANDLE, default=0)

    def _set(self, side: TunnelSide) -> None:
        tid, qos = side.tunnel_id, side.qos
        if tid in self._applied:
            self._clear(tid)
        minor = self._free_minor()
        index, inner = self._device(side)
        if inner:
            pairs = selector_pairs(side.local.selectors, side.remote.selectors)
        else:
            pairs = selector_pairs((f"{side.local.address}/32",),
                                   (f"{side.remote.address}/32",))
        if not pairs:
            raise QosError(f"{self.name}: tunnel {tid} has no IPv4 selectors")
        applied = _Applied(minor, index, shaped=False, marked=False, qos=qos)
        self._applied[tid] = applied
        try:
            if qos.rate_kbps > 0:
                self._shape(index, minor, qos.rate_kbps, pairs)
                applied.shaped = True
            if qos.dscp:
                self._mark(minor, qos.dscp,
                           selector_pairs(side.local.selectors, side.remote.selectors))
                applied.marked = True
        except Exception:
            self._clear(tid)
            raise
        log.info("%s: QoS for %s: %s kbit/s, DSCP %d (HTB 1:%x on ifindex %d, %s)",
                 self.name, log_text(tid), qos.rate_kbps or "no limit", qos.dscp, minor, index,
                 "inner selectors" if inner else "outer addresses")

    def _shape(self, index: int, minor: int, rate_kbps: int,
               pairs: list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]) -> None:
        ipr = self._rtnl()
        self._ensure_root(index)
        classid = ROOT_HANDLE | minor
        rate = f"{rate_kbps}kbit"
        burst = htb_burst_bytes(rate_kbps)
        ipr.tc("add-class", "htb", index=index, handle=classid, parent=ROOT_HANDLE,
               rate=rate, ceil=rate, burst=burst, cburst=burst)
        ipr.tc("add", "pfifo", index=index, handle=minor << 16, parent=classid,
               limit=LEAF_LIMIT)
        for src, dst in pairs:
            ipr.tc("add-filter", "u32", index=index, parent=ROOT_HANDLE, prio=minor,
                   protocol=ETH_P_IP, target=classid,
                   keys=[k.as_pyroute2() for k in u32_keys(src, dst)])

    def _mark(self, minor: int, dscp: int,
              pairs: list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]) -> None:
        nft = self._nftables()
        table = f"{NFT_TABLE_PREFIX}{minor}"
        nft.begin()
        nft.table("add", name=table)
        nft.chain("add", table=table, name="post", hook=NF_INET_POST_ROUTING,
                  type="filter", priority=NF_IP_PRI_MANGLE)
        for src, dst in pairs:
            nft.rule("add", table=table, chain="post",
                     expressions=(nft_dscp_rule(src, dst, dscp),))
        nft.commit()

    def _clear(self, tunnel_id: str) -> None:
        applied = self._applied.pop(tunnel_id, None)
        if applied is None:
            return
        if applied.shaped:
            ipr = self._rtnl()
            classid = ROOT_HANDLE | applied.minor
            # tcm_info = priority << 16 | protocol (network order): the tunnel's filters
            info = (applied.minor << 16) | socket.htons(ETH_P_IP)
            for call in (lambda: ipr.tc("del-filter", index=applied.device,
                                        parent=ROOT_HANDLE, info=info),
                         lambda: ipr.tc("del-class", index=applied.device, handle=classid,
                                        parent=ROOT_HANDLE)):
                try:
                    call()
                except Exception as exc:  # noqa: BLE001 - device gone (charon stopped)
                    log.debug("%s: clearing %s: %s", self.name, log_text(tunnel_id), log_text(exc))
        if applied.marked:
            try:
                nft = self._nftables()
                nft.begin()
                nft.table("del", name=f"{NFT_TABLE_PREFIX}{applied.minor}")
                nft.commit()
            except Exception as exc:  # noqa: BLE001 - already gone
                log.debug("%s: clearing DSCP of %s: %s", self.name, log_text(tunnel_id),
                          log_text(exc))
        log.info("%s: QoS for %s removed", self.name, log_text(tunnel_id))

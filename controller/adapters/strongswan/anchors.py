"""Selector anchors: a local address inside every local traffic selector of a gateway,
which kernel-libipsec needs to install a CHILD_SA's route."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Iterable

try:  # pyroute2 is only needed for selector anchors (gateways we can reach by netns)
    from pyroute2 import NetNS
except ImportError:  # pragma: no cover
    NetNS = None

log = logging.getLogger("mipvpn.strongswan")

ANCHOR_DEV = "ipsecanc0"


class SelectorAnchors:
    """Give libipsec a local address inside every local traffic selector of a gateway.

    kernel-libipsec installs the route for a CHILD_SA's remote selector with
    ``src = <a local address inside the local selector>`` and *fails the CHILD_SA* when
    the gateway has none ("error installing route with policy ...").  Our gateways route
    for other hosts: the FA's local selector is the MN's home address (/32), the HA's
    local selector towards an FA is the CN's network.  So, inside the gateway's netns:

    * a selector the gateway already has an address in needs nothing;
    * otherwise the selector's network address (for a /32: the host itself) is added as
      a /32 to ``ipsecanc0``, one end of a veth pair that stays down;
    * for a host anchor (/31, /32 — a real host, e.g. the MN) the kernel's ``local``
      route for it is deleted once charon has installed its route (``settle``), so the
      gateway forwards that host's packets instead of delivering them to itself; it is
      put back before the next CHILD_SA install (the kernel checks a route's ``src``
      against the local table when the route is added).  Network-address anchors keep
      their local route: nobody sends to a network address.

    Reference-counted per anchor; thread-safe.
    """

    def __init__(self, netns_path: str) -> None:
        if NetNS is None:
            raise RuntimeError("pyroute2 is required for selector anchors")
        self._ns = NetNS(netns_path)
        self._lock = threading.Lock()
        self._refs: dict[str, int] = {}
        self._hosts: set[str] = set()     # host anchors (their local route comes and goes)
        self._index = self._ensure_dev()

    def _ensure_dev(self) -> int:
        found = self._ns.link_lookup(ifname=ANCHOR_DEV)
        if not found:
            self._ns.link("add", ifname=ANCHOR_DEV, kind="veth", peer=ANCHOR_DEV + "p")
            found = self._ns.link_lookup(ifname=ANCHOR_DEV)
        return int(found[0])

    def _own_addresses(self) -> list[ipaddress.IPv4Address]:
        return [ipaddress.IPv4Address(a.get_attr("IFA_ADDRESS"))
                for a in self._ns.get_addr(family=socket.AF_INET)
                if a["index"] != self._index]

    @staticmethod
    def _anchor_of(selector: str) -> tuple[str, bool] | None:
        """(anchor address, is_host) for an IPv4 selector; None for others."""
        try:
            net = ipaddress.ip_network(selector, strict=False)
        except ValueError:
            return None
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen == 0:
            return None     # 0.0.0.0/0 includes 127.0.0.1: charon needs no address
        return str(net.network_address), net.prefixlen >= 31

    def acquire(self, selectors: Iterable[str], restore_local: bool = True) -> list[str]:
        """Make sure each selector holds a local address; returns the anchors taken.
        ``restore_local=False``: a host anchor already held keeps its local route away
        (the caller knows charon will add no new route: its policies equal installed
        ones, whose routes are refcounted) - the gateway goes on forwarding that
        host's packets meanwhile instead of swallowing them."""
        taken = []
        with self._lock:
            own: list[ipaddress.IPv4Address] | None = None   # read once, when needed
            for sel in selectors:
                anchor = self._anchor_of(sel)
                if anchor is None:
                    continue
                addr, is_host = anchor
                net = ipaddress.ip_network(sel, strict=False)
                if addr not in self._refs:
                    if own is None:   # (a netlink dump through the namespace's helper)
                        own = self._own_addresses()
                    if any(a in net for a in own):
                        continue
                if addr not in self._refs:
                    self._ns.addr("replace", index=self._index, address=addr, prefixlen=32)
                    self._refs[addr] = 0
                    if is_host:
                        self._hosts.add(addr)
                elif is_host and restore_local:
                    self._set_local_route(addr, present=True)
                self._refs[addr] += 1
                taken.append(addr)
        return taken

    def settle(self, anchors: Iterable[str]) -> None:
        """Drop the local route of host anchors (charon's routes are in place)."""
        with self._lock:
            for addr in anchors:
                if addr in self._hosts:
                    self._set_local_route(addr, present=False)

    def release(self, anchors: Iterable[str]) -> None:
        with self._lock:
            for addr in anchors:
                if addr not in self._refs:
                    continue
                self._refs[addr] -= 1
                if self._refs[addr] <= 0:
                    del self._refs[addr]
                    self._hosts.discard(addr)
                    try:
                        self._ns.addr("del", index=self._index, address=addr, prefixlen=32)
                    except Exception:  # noqa: BLE001 - already gone
                        pass

    def _set_local_route(self, addr: str, present: bool) -> None:
        try:
            self._ns.route("replace" if present else "del", table=255, type="local",
                           dst=f"{addr}/32", oif=self._index, proto="kernel",
                           scope="host", prefsrc=addr)
        except Exception as exc:  # noqa: BLE001 - netlink error: absent / present already
            log.debug("anchor %s local route %s: %s", addr, present, exc)

    def close(self) -> None:
        with self._lock:
            self._ns.close()

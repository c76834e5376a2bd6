"""The emulated radio of the ``carrier`` link model: a move flips carriers, no OVS port
is added or removed (issue 14, docs/decisions.md "2026-12-06: issue 14, an emulated link
move that reconfigures no OVS port").

Per mobile node an *air segment* in the root namespace (like Mininet's switch-side
veths): a Linux bridge ``<prefix>m<i>`` that the MN's own veth joins (``<bridge>-mn`` <->
``<mn>-eth0`` in the MN's namespace), and one veth pair per *cell* the MN may visit:
``<access bridge>-eth<port>`` is a port of that access switch (OpenFlow port ``port``,
as a replugged link would have), its peer ``<bridge>-c<k>`` is a port of the air
bridge.  Only the current cell's air end is up; the others are down, so OVS's end has
no carrier (a cell that has not got the station).  A move sets the old cell's air end
down and the new one's up: ovs-vswitchd sees carrier loss / carrier (port-status
MODIFY with / without OFPPS_LINK_DOWN), and its main thread applies no port removal
or addition (that was the 40-60 ms stall of every packet in the emulation:
bench/results/issue14-link-move-flush/).

The flips are two ``SIOCSIFFLAGS`` ioctls each on one socket kept open (no ``ip``
spawned).  Planning which cells exist is pure (``plan_cells``).
"""

from __future__ import annotations

import fcntl
import re
import socket
import struct
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LINK_MODELS", "MAX_EAGER_CELLS", "AirError", "AirSegments", "Cell",
           "CarrierSwitch", "air_bridge", "mn_side", "ovs_end", "netns_links", "plan_cells"]

#: ``carrier`` (default): cells attached ahead, a move flips carriers;
#: ``replug``: the MN's one link is del-port'ed / add-port'ed (``OvsdbClient.move_port``)
LINK_MODELS = ("carrier", "replug")

#: every MN gets a cell on every access switch (at its attach port) only while
#: MNs x access switches stays at most this (grid-2x2 experiments: 10 x 4); beyond
#: (topology/grid-4x4: 100 x 16) an MN gets its attach cell and the cells its caller
#: names, the rest at its first visit
MAX_EAGER_CELLS = 64

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH14x"


def air_bridge(prefix: str, index: int) -> str:
    """The air bridge of the ``index``-th mobile node (1-based, topology order)."""
    return f"{prefix}m{index}"


def mn_side(bridge: str) -> str:
    """The air bridge's end of the MN's own veth."""
    return f"{bridge}-mn"


def ovs_end(ovs_bridge: str, port: int) -> str:
    """A cell link's end on the access switch (Mininet's ``<switch>-eth<port>``)."""
    return f"{ovs_bridge}-eth{port}"


@dataclass
class Cell:
    """One veth pair between an access switch's port and an MN's air bridge."""
    mn: str
    switch: str        # logical name
    port: int          # OpenFlow port on the access switch
    ovs_end: str
    air_end: str


def plan_cells(topo: Any, extra: Mapping[str, Iterable[tuple[str, int]]] | None = None,
               *, max_eager: int = MAX_EAGER_CELLS) -> dict[str, list[tuple[str, int]]]:
    """The cells each mobile node gets at build time: its attach cell first, then the
    cells ``extra`` names for it (the moves a caller will make), then, if MNs x access
    switches <= ``max_eager``, every other access switch at its attach port.  A
    (switch, port) that a gateway, host or inter-switch link uses, or that an earlier
    MN got, is left out (a move there gets it at the move, if free by then)."""
    used: set[tuple[str, int]] = set()
    for gw in topo.gateways.values():
        used.add((gw.core.switch, gw.core.port))
        used.add((gw.inside.switch, gw.inside.port))
    for h in topo.hosts.values():
        used.add((h.switch, h.port))
    for link in topo.links:
        used.add((link.a_switch, link.a_port))
        used.add((link.b_switch, link.b_port))
    plan: dict[str, list[tuple[str, int]]] = {}
    taken: set[tuple[str, int]] = set()
    for name, mn in topo.mobile_nodes.items():
        cell = (mn.attach_switch, mn.attach_port)
        plan[name] = [cell]
        taken.add(cell)
    access = [s for s, conf in topo.switches.items() if conf.role == "access"]
    every = len(access) * len(topo.mobile_nodes) <= max_eager
    for name, mn in topo.mobile_nodes.items():
        wanted = list((extra or {}).get(name, ()))
        if every:
            wanted += [(s, mn.attach_port) for s in access]
        for cell in wanted:
            if cell[0] not in topo.switches or cell in used or cell in taken:
                continue
            plan[name].append(cell)
            taken.add(cell)
    return plan


class CarrierSwitch:
    """Sets interfaces of the root namespace administratively up / down with
    ``SIOCSIFFLAGS`` on one socket kept open (a veth's peer then gains / loses
    carrier)."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def _fd(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return self._sock

    def set_up(self, name: str, up: bool) -> None:
        sock = self._fd()
        req = struct.pack(_IFREQ, name.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, req))[1]
        flags = (flags | _IFF_UP) if up else (flags & ~_IFF_UP)
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags))

    def is_up(self, name: str) -> bool:
        req = struct.pack(_IFREQ, name.encode(), 0)
        return bool(struct.unpack(_IFREQ, fcntl.ioctl(self._fd(), _SIOCGIFFLAGS, req))[1]
                    & _IFF_UP)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class AirError(RuntimeError):
    """An air segment could not be built or changed."""


def _ip_batch(lines: list[str]) -> None:
    if not lines:
        return
    proc = subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AirError(f"ip -batch: {proc.stderr.strip()} (commands: {lines})")


def _no_ipv6(names: Iterable[str]) -> None:
    """No IPv6 on our root-namespace ends: no router solicitations or MLD reports from
    the root namespace into the switches or to the MN."""
    for name in names:
        path = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
        if path.exists():
            path.write_text("1\n")


class AirSegments:
    """The air segments of one network (``carrier`` link model): their bridges, every
    cell link, which cell each MN is on, and the carrier flips of a move."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.bridges: dict[str, str] = {}                 # MN -> air bridge
        self.cells: dict[tuple[str, int], Cell] = {}      # (switch, port) -> its link
        self.current: dict[str, tuple[str, int]] = {}     # MN -> the cell it is on
        self._count: dict[str, int] = {}
        self.carrier = CarrierSwitch()

    def name_re(self) -> re.Pattern[str]:
        """Every root-namespace name an air segment of this prefix uses."""
        return re.compile(rf"^{re.escape(self.prefix)}m\d+(-.*)?$")

    def add_mn(self, mn: str, index: int, mn_intf: str, mac: str) -> str:
        """The MN's air bridge and its own veth (``mn_intf`` still in the root
        namespace: the caller moves it into the MN's).  Returns the bridge."""
        br = air_bridge(self.prefix, index)
        side = mn_side(br)
        _ip_batch([f"link add {br} type bridge stp_state 0 forward_delay 0 "
                   "mcast_snooping 0",
                   f"link add {side} type veth peer name {mn_intf} address {mac}",
                   f"link set {side} master {br}"])
        _no_ipv6([br, side])
        _ip_batch([f"link set {br} up", f"link set {side} up"])
        self.bridges[mn] = br
        self._count[mn] = 0
        return br

    def add_cells(self, mn: str, cells: list[tuple[str, int]], ovs_names: Mapping[str, str],
                  up: tuple[str, int] | None) -> list[Cell]:
        """One veth pair per cell (switch, port); only ``up``'s air end is set up."""
        br = self.bridges[mn]
        made: list[Cell] = []
        create: list[str] = []
        for switch, port in cells:
            if (switch, port) in self.cells:
                raise AirError(f"cell {switch}:{port} exists already")
            self._count[mn] += 1
            cell = Cell(mn, switch, port, ovs_end(ovs_names[switch], port),
                        f"{br}-c{self._count[mn]}")
            create += [f"link add {cell.ovs_end} type veth peer name {cell.air_end}",
                       f"link set {cell.air_end} master {br}"]
            made.append(cell)
        _ip_batch(create)
        _no_ipv6(n for c in made for n in (c.ovs_end, c.air_end))
        _ip_batch([f"link set {c.ovs_end} up" for c in made]
                  + [f"link set {c.air_end} up" for c in made if (c.switch, c.port) == up])
        for cell in made:
            self.cells[(cell.switch, cell.port)] = cell
        if up is not None and up in self.cells and self.cells[up].mn == mn:
            self.current[mn] = up
        return made

    def remove_cell(self, cell: Cell) -> None:
        """Delete a cell link (both ends; the caller removed the OVS port first)."""
        self.cells.pop((cell.switch, cell.port), None)
        subprocess.run(["ip", "link", "del", cell.ovs_end], capture_output=True,
                       check=False)

    def flip(self, mn: str, to: tuple[str, int]) -> None:
        """The move itself: the old cell's air end down (its switch port loses
        carrier), then the new one's up (that port gains it)."""
        new = self.cells[to]
        if new.mn != mn:
            raise AirError(f"cell {to[0]}:{to[1]} is {new.mn}'s")
        old = self.cells.get(self.current.get(mn, to))
        if old is not None and old is not new:
            self.carrier.set_up(old.air_end, False)
        self.carrier.set_up(new.air_end, True)
        self.current[mn] = to

    def close(self) -> None:
        """Delete the bridges (the veths went with their switches and hosts) and
        anything of ours left over, in this network namespace."""
        self.carrier.close()
        pattern = self.name_re()
        # the veths first (deleting one end deletes its peer), the bridges last
        names = sorted((n for n in netns_links() if pattern.match(n)),
                       key=lambda n: "-" not in n)
        _ip_batch_quiet([f"link del {n}" for n in names])
        self.cells.clear()
        self.current.clear()


def netns_links() -> list[str]:
    """The interface names of this process's network namespace (asked over netlink:
    /sys/class/net shows the namespace sysfs was mounted in, not necessarily ours)."""
    proc = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=False)
    names = []
    for line in proc.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def _ip_batch_quiet(lines: list[str]) -> None:
    """``ip -force -batch``: every command tried, failures ignored (a name already gone)."""
    if lines:
        subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, check=False)

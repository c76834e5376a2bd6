"""YAML ``Topology`` -> Mininet network on a private userspace Open vSwitch.

``build_network`` creates, from a validated :class:`controller.config.Topology`:

* one ``OVSSwitch`` per switch: userspace datapath, OpenFlow 1.3, explicit dpid,
  ``failMode='secure'``, connected to a ``RemoteController`` at 127.0.0.1:port.
  OVS names are short and prefixed (``mvc1``, ``mvs2``, ``mva1``: prefix + role letter +
  index) so ``<name>-eth<port>`` fits Linux's 15 characters and two runs can't collide;
* every port number exactly as the YAML says;
* gateway hosts (HA, FAs, CN-GW) as routers: interfaces ``<gw>-core`` / ``<gw>-in`` with
  the configured IPs and MACs, a private ``/run`` (charon needs it), ip_forward=1,
  rp_filter=0, permanent ARP entries for every other gateway's core address (only IPsec
  crosses the core, no ARP there), and on each foreign agent an on-link route for every
  home prefix so it can deliver to visiting mobile nodes;
* plain hosts (correspondent hosts) with address, MAC and default route;
* each mobile node with its home address as a /32 and its MAC, on its initial access port:
  with ``link_model="carrier"`` (the default) through its air segment (``air.py``: a Linux
  bridge, and one veth pair to each access switch it may visit, only the current one
  with carrier); with ``"replug"`` its veth goes straight into the access switch and a
  move re-plugs it into another.

The private OVS must already run (``mininet_scripts.ovs.PrivateOvs``): building refuses
when ``OVS_RUNDIR`` is not set, so the system's OVS is never touched.  Nothing here runs
``mn -c`` or kills by name; ``stop()`` removes only what this network created.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mininet.net import Mininet
from mininet.link import Intf
from mininet.node import Host, OVSSwitch, RemoteController

from controller.config import GatewayConf, Topology
from mininet_scripts.air import (LINK_MODELS, AirError, AirSegments, Cell, netns_links,
                                 plan_cells)
from mininet_scripts.ovsdb import OvsdbClient, OvsdbError, UnixctlClient

__all__ = ["MipvpnNet", "NetworkError", "build_network"]

log = logging.getLogger(__name__)

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,3}$")
_ROLE_LETTER = {"core": "c", "site": "s", "access": "a"}
_TABLE_MISS_RE = re.compile(r"\bpriority=0[\s,]")


class QuietRemoteController(RemoteController):  # type: ignore[misc]
    """Mininet's RemoteController checks the port with `telnet` in a shell and decodes
    whatever comes back as UTF-8: an OpenFlow HELLO then crashes the read.  Check with a
    plain socket instead."""

    def checkListening(self) -> None:  # noqa: N802 (Mininet's name)
        import socket
        try:
            socket.create_connection((self.ip, self.port), 1.0).close()
        except OSError:
            from mininet.log import warn
            warn(f"Unable to contact the remote controller at {self.ip}:{self.port}\n")


class NetworkError(RuntimeError):
    """The Mininet network could not be built or changed."""


def switch_names(topo: Topology, prefix: str) -> dict[str, str]:
    """Logical switch name -> OVS bridge name (prefix + role letter + index)."""
    if not _PREFIX_RE.match(prefix):
        raise NetworkError(f"prefix {prefix!r} must be 1-4 lowercase letters/digits")
    counters: dict[str, int] = {}
    names: dict[str, str] = {}
    for name, sw in topo.switches.items():
        counters[sw.role] = counters.get(sw.role, 0) + 1
        names[name] = f"{prefix}{_ROLE_LETTER[sw.role]}{counters[sw.role]}"
    return names


class MipvpnNet:
    """A built Mininet network plus the mapping between YAML names and OVS names."""

    def __init__(self, topo: Topology, net: Mininet, ovs_names: dict[str, str],
                 run_dir: Path, fail_mode: str, air: AirSegments | None = None) -> None:
        self.topo = topo
        self.air = air    # the carrier link model's air segments; None: replug
        self.link_model = "replug" if air is None else "carrier"
        self.net = net
        self.run_dir = run_dir
        self.fail_mode = fail_mode
        self._ovs_names = dict(ovs_names)
        self._logical = {v: k for k, v in ovs_names.items()}
        # mobile node -> (logical switch, port) it is attached to now
        self.mn_location: dict[str, tuple[str, int]] = {
            name: (mn.attach_switch, mn.attach_port) for name, mn in topo.mobile_nodes.items()
        }
        self.started = False
        self.stopped = False
        self._ovsdb: OvsdbClient | None = None  # opened by the first move_host
        self._unixctl: UnixctlClient | None = None  # ovs-vswitchd's, likewise

    # -- names ----------------------------------------------------------------

    def ovs_name(self, switch: str) -> str:
        """OVS bridge name of logical switch ``switch``."""
        return self._ovs_names[switch]

    def logical_name(self, ovs_name: str) -> str:
        return self._logical[ovs_name]

    @property
    def ovs_names(self) -> dict[str, str]:
        return dict(self._ovs_names)

    def host(self, name: str) -> Host:
        """Mininet host of a gateway, plain host or mobile node (YAML name)."""
        return self.net.nameToNode[name]

    def switch(self, name: str) -> OVSSwitch:
        return self.net.nameToNode[self._ovs_names[name]]

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Create the bridges (one ovs-vsctl transaction) and connect to the controller."""
        if self.started:
            return
        self.net.start()
        self.started = True

    def stop(self) -> None:
        """Delete our bridges, links and host namespaces (never ``mn -c``)."""
        if self.stopped:
            return
        self.stopped = True
        if self._ovsdb is not None:
            self._ovsdb.close()
            self._ovsdb = None
        if self._unixctl is not None:
            self._unixctl.close()
            self._unixctl = None
        self.net.stop()
        if self.air is not None:
            self.air.close()
        # Safety net: remove any of our switch-side veths/taps that survived.
        leftovers = [n for n in netns_links() if n.split("-")[0] in self._logical]
        for name in leftovers:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)

    def __enter__(self) -> MipvpnNet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- readiness ------------------------------------------------------------

    def wait_switches_connected(self, timeout: float = 10.0, interval: float = 0.02) -> float:
        """Wait until every bridge holds a table-miss entry (priority=0) — i.e. the
        controller connected and configured it.  Returns seconds waited; raises
        ``TimeoutError`` naming the switches still missing it."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        pending = set(self._ovs_names.values())
        while True:
            for br in sorted(pending):
                if _has_table_miss(br):
                    pending.discard(br)
            if not pending:
                return time.monotonic() - t0
            if time.monotonic() >= deadline:
                names = ", ".join(f"{self._logical[b]} ({b})" for b in sorted(pending))
                raise TimeoutError(f"no table-miss entry after {timeout:.1f} s on: {names}")
            time.sleep(interval)

    # -- mobility -------------------------------------------------------------

    def move_host(self, mn_name: str, to_switch: str, to_port: int) -> float:
        """Move mobile node ``mn_name`` to ``to_switch``:``to_port``; returns the
        seconds until the move applied.  ``carrier`` model: ``_move_carrier``;
        ``replug``: ``_move_replug``."""
        if mn_name not in self.mn_location:
            raise NetworkError(f"{mn_name!r} is not a mobile node")
        if to_switch not in self._ovs_names:
            raise NetworkError(f"switch {to_switch!r} is not defined")
        if self.air is not None:
            return self._move_carrier(mn_name, to_switch, to_port)
        return self._move_replug(mn_name, to_switch, to_port)

    def _move_carrier(self, mn_name: str, to_switch: str, to_port: int) -> float:
        """The old cell's link loses carrier, the new one's gains it (``air.py``):
        two interface flag changes in the kernel, no OVS port added or removed, so
        ovs-vswitchd's main thread (which forwards every packet of the emulation)
        only reports two port-status changes.  Returns when the kernel flipped both
        carriers; OVS learns of them asynchronously, as a switch from its PHY.

        A cell not made at build time (``plan_cells``) is made here first (one
        add-port, counted in the returned time); one that another MN holds but is
        not on is taken from it (del-port)."""
        air = self.air
        assert air is not None
        key = (to_switch, to_port)
        if air.current.get(mn_name) == key:
            raise NetworkError(f"port {to_switch}:{to_port} is in use ({mn_name} is on it)")
        t0 = time.monotonic()
        cell = air.cells.get(key)
        if cell is not None and cell.mn != mn_name:
            if air.current.get(cell.mn) == key:
                raise NetworkError(f"port {to_switch}:{to_port} is in use "
                                   f"({cell.ovs_end}, {cell.mn}'s)")
            self._drop_cell(cell)
            cell = None
        if cell is None:
            self._add_cell(mn_name, to_switch, to_port)
        try:
            air.flip(mn_name, key)
        except (AirError, OSError) as exc:
            raise NetworkError(f"moving {mn_name} to {to_switch}:{to_port}: {exc}") from None
        elapsed = time.monotonic() - t0
        self.mn_location[mn_name] = key
        log.info("moved %s to %s:%d in %.2f ms (carrier)", mn_name, to_switch, to_port,
                 elapsed * 1e3)
        return elapsed

    def _ovsdb_client(self) -> OvsdbClient:
        if self._ovsdb is None:
            self._ovsdb = OvsdbClient()
        return self._ovsdb

    def _add_cell(self, mn_name: str, switch: str, port: int) -> None:
        """A cell link made at a move: veth pair, add-port (ofport ``port``)."""
        assert self.air is not None
        sw = self.switch(switch)
        if port in sw.intfs:
            raise NetworkError(f"port {switch}:{port} is in use ({sw.intfs[port].name})")
        try:
            (cell,) = self.air.add_cells(mn_name, [(switch, port)], self._ovs_names, None)
        except AirError as exc:
            raise NetworkError(str(exc)) from None
        try:
            took = self._ovsdb_client().add_port(cell.ovs_end, sw.name, port)
        except OvsdbError as exc:
            self.air.remove_cell(cell)
            raise NetworkError(f"adding {cell.ovs_end} to {sw.name}: {exc}") from None
        Intf(cell.ovs_end, node=sw, port=port)
        log.info("made %s's cell link %s at %s:%d (add-port %.1f ms)", mn_name,
                 cell.ovs_end, switch, port, took * 1e3)

    def _drop_cell(self, cell: Cell) -> None:
        """Take a cell link away from an MN that is not on it (del-port, veths gone)."""
        assert self.air is not None
        sw = self.switch(cell.switch)
        try:
            self._ovsdb_client().del_port(cell.ovs_end, sw.name)
        except OvsdbError as exc:
            raise NetworkError(f"removing {cell.ovs_end} from {sw.name}: {exc}") from None
        intf = sw.intfs.get(cell.port)
        if intf is not None:
            sw.delIntf(intf)
        self.air.remove_cell(cell)

    def _move_replug(self, mn_name: str, to_switch: str, to_port: int) -> float:
        """Move mobile node ``mn_name``'s link to ``to_switch``:``to_port``: the
        switch-side end of its veth leaves its access switch and is added to the other
        (del-port + add-port + ofport_request, as Mininet's examples/mobility.py does
        with ``ovs-vsctl``).  Returns the seconds until ovs-vswitchd has applied the
        move (the port forwards on the new switch then).

        Del-port and add-port are two transactions with ``revalidator/purge`` between
        (``OvsdbClient.move_port``): without it the datapath's flows learnt on the old
        switch still took the MN's first frames on the new one (its first RRQ went to
        the old FA, which refused it with 77; the MN retried after 1 s).

        The transaction goes over one persistent OVSDB connection (``ovsdb.py``)
        instead of a spawned ``ovs-vsctl``: about 10-15 ms instead of 25-40 ms, most
        of the rest being ovs-vswitchd closing the old AF_PACKET socket (a kernel RCU
        grace period).  The switch-side interface keeps its name (e.g. ``mva1-eth2``
        now on ``mva2``): renaming would need the link down.  The controller sees
        port-delete/port-add; the MN must send something afterwards."""
        new_sw = self.switch(to_switch)
        if to_port in new_sw.intfs:
            raise NetworkError(f"port {to_switch}:{to_port} is in use "
                               f"({new_sw.intfs[to_port].name})")
        host = self.host(mn_name)
        hintf = host.defaultIntf()
        link = hintf.link
        sintf = link.intf2 if link.intf1 is hintf else link.intf1
        old_sw = sintf.node
        t0 = time.monotonic()
        error: OvsdbError | None = None
        try:
            ovsdb = self._ovsdb_client()
            if self._unixctl is None:
                self._unixctl = UnixctlClient()
            ovsdb.move_port(sintf.name, old_sw.name, new_sw.name, to_port,
                                  purge=self._unixctl.purge)
        except OvsdbError as exc:
            if not exc.committed:
                raise NetworkError(f"moving {sintf.name} {old_sw.name} -> {new_sw.name}:"
                                   f"{to_port}: {exc}") from None
            error = exc  # the port did move: keep the bookkeeping true, then raise
        elapsed = time.monotonic() - t0
        # Keep Mininet's bookkeeping consistent (as examples/mobility.py does).
        old_sw.delIntf(sintf)
        new_sw.addIntf(sintf, port=to_port)
        sintf.node = new_sw
        self.mn_location[mn_name] = (to_switch, to_port)
        if error is not None:
            raise NetworkError(f"moved {sintf.name} to {new_sw.name}, but: {error}")
        log.info("moved %s to %s:%d in %.1f ms", mn_name, to_switch, to_port, elapsed * 1e3)
        return elapsed

    def ofport(self, switch: str, intf_name: str) -> int:
        """OpenFlow port number OVS gave ``intf_name`` (asserts it is on ``switch``)."""
        br = _vsctl("iface-to-br", intf_name).strip()
        if br != self.ovs_name(switch):
            raise NetworkError(f"{intf_name} is on {br}, not on {self.ovs_name(switch)}")
        return int(_vsctl("get", "Interface", intf_name, "ofport").strip())


# ---------------------------------------------------------------------------
# Building


def build_network(
    topo: Topology,
    *,
    controller_port: int | None,
    prefix: str = "mv",
    run_dir: Path,
    fail_mode: str | None = None,
    link_model: str = "carrier",
    cells: dict[str, list[tuple[str, int]]] | None = None,
) -> MipvpnNet:
    """Build (not start) the Mininet network for ``topo``.

    ``link_model``: how a mobile node's link moves (``air.LINK_MODELS``): ``carrier``
    (its cell links exist from the start, a move flips carriers) or ``replug`` (its
    one link is del-port'ed and add-port'ed).  ``cells``: (switch, port) each MN will
    move to, made at build time with the carrier model (``air.plan_cells``).

    ``controller_port=None`` builds without a controller (bridges in ``standalone`` mode,
    for tests of the data plane alone).  ``fail_mode`` overrides the default
    (``secure`` with a controller, ``standalone`` without).  Call ``.start()`` next.
    """
    if "OVS_RUNDIR" not in os.environ:
        raise NetworkError("OVS_RUNDIR is not set: start mininet_scripts.ovs.PrivateOvs "
                           "first (refusing to use the system's Open vSwitch)")
    if link_model not in LINK_MODELS:
        raise NetworkError(f"link model {link_model!r}: one of {', '.join(LINK_MODELS)}")
    fail_mode = fail_mode or ("secure" if controller_port is not None else "standalone")
    names = switch_names(topo, prefix)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    air = AirSegments(prefix) if link_model == "carrier" else None
    _check_names_free(names.values(), air)

    net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                  autoStaticArp=False, waitConnected=False, inNamespace=False)
    try:
        if controller_port is not None:
            net.addController("c0", controller=QuietRemoteController, ip="127.0.0.1",
                              port=controller_port)
        for name, sw in topo.switches.items():
            net.addSwitch(names[name], cls=OVSSwitch, dpid=f"{sw.dpid:016x}",
                          datapath="user", protocols="OpenFlow13", failMode=fail_mode,
                          batch=True)
        for gw in topo.gateways.values():
            host = net.addHost(gw.name, ip=None, privateDirs=["/run"])
            for side, suffix in (("core", "core"), ("inside", "in")):
                iface = getattr(gw, side)
                net.addLink(host, net.get(names[iface.switch]), port2=iface.port,
                            intfName1=f"{gw.name}-{suffix}", addr1=iface.mac,
                            params1={"ip": iface.cidr})
        for h in topo.hosts.values():
            host = net.addHost(h.name, ip=h.cidr, mac=h.mac, defaultRoute=f"via {h.gateway}")
            net.addLink(host, net.get(names[h.switch]), port2=h.port,
                        intfName1=f"{h.name}-eth0", addr1=h.mac)
        if air is not None:
            _add_air_segments(net, topo, names, air, cells)
        for mn in topo.mobile_nodes.values():
            if air is not None:
                continue
            host = net.addHost(mn.name, ip=None)
            net.addLink(host, net.get(names[mn.attach_switch]), port2=mn.attach_port,
                        intfName1=f"{mn.name}-eth0", addr1=mn.mac)
        for link in topo.links:
            net.addLink(net.get(names[link.a_switch]), net.get(names[link.b_switch]),
                        port1=link.a_port, port2=link.b_port)
        net.build()
        for gw in topo.gateways.values():
            _configure_gateway(net.get(gw.name), gw, topo)
        for mn in topo.mobile_nodes.values():
            _run(net.get(mn.name), f"ip addr add {mn.home_address}/32 dev {mn.name}-eth0")
        for node in net.hosts:
            _no_segmentation_offload(node)
    except BaseException:
        net.stop()
        if air is not None:
            air.close()
        raise
    mnet = MipvpnNet(topo, net, names, run_dir, fail_mode, air)
    (run_dir / "names.json").write_text(json.dumps(
        {"switches": names, "controller_port": controller_port, "fail_mode": fail_mode,
         "link_model": link_model}, indent=2) + "\n")
    return mnet


def _add_air_segments(net: Mininet, topo: Topology, names: dict[str, str],
                      air: AirSegments, cells: dict[str, list[tuple[str, int]]] | None
                      ) -> None:
    """The carrier model's mobile nodes: each MN's air bridge and own veth, and its
    cell links registered as ports of their access switches (Mininet adds them with
    ``ofport_request`` at start; only the attach cell has carrier)."""
    plan = plan_cells(topo, cells)
    for index, mn in enumerate(topo.mobile_nodes.values(), 1):
        host = net.addHost(mn.name, ip=None)
        intf = f"{mn.name}-eth0"
        try:
            air.add_mn(mn.name, index, intf, mn.mac)
            made = air.add_cells(mn.name, plan[mn.name], names,
                                 (mn.attach_switch, mn.attach_port))
        except AirError as exc:
            raise NetworkError(str(exc)) from None
        Intf(intf, node=host).mac = mn.mac      # moved into the MN's namespace
        _run(host, f"ip link set {intf} up")
        for cell in made:
            Intf(cell.ovs_end, node=net.get(names[cell.switch]), port=cell.port)


def _configure_gateway(host: Host, gw: GatewayConf, topo: Topology) -> None:
    core, inside = f"{gw.name}-core", f"{gw.name}-in"
    cmds = ["sysctl -qw net.ipv4.ip_forward=1"]
    for dev in ("all", "default", core, inside):
        cmds.append(f"sysctl -qw net.ipv4.conf.{dev}.rp_filter=0")
    for other in topo.gateways.values():
        if other.name != gw.name:
            cmds.append(f"ip neigh replace {other.core.ip} lladdr {other.core.mac} "
                        f"dev {core} nud permanent")
    if gw.kind == "foreign_agent":
        for domain in topo.domains.values():
            for prefix in domain.home_prefixes:
                cmds.append(f"ip route replace {prefix} dev {inside}")
    if gw.kind == "cn_gateway" and gw.gateway_type == "dynamic":
        # towards the home network through the core until a tunnel exists (claims 2, 5:
        # the core shows these packets to the controller and never forwards them)
        has = [g for g in topo.gateways.values() if g.kind == "home_agent"]
        for domain in topo.domains.values():
            for prefix in domain.home_prefixes:
                if has:
                    cmds.append(f"ip route replace {prefix} via {has[0].core.ip} dev {core}")
    _run(host, " && ".join(cmds))


def _no_segmentation_offload(node: Host) -> None:
    """Segmentation/aggregation offloads off on every interface of ``node``.

    With OVS's userspace TSO, end hosts hand gateways multi-segment TCP frames that
    cannot be forwarded into the tunnel device (MTU ~1400 with ESP-in-UDP): TCP through
    the tunnels then crawls at ~0.1 Mbit/s (measured) while UDP is fine.  With the
    offloads off, TCP runs at tens of Mbit/s through libipsec."""
    if shutil.which("ethtool") is None:
        return
    cmds = [f"ethtool -K {intf.name} tso off gso off gro off >/dev/null 2>&1"
            for intf in node.intfList() if intf.name != "lo"]
    if cmds:
        node.cmd("; ".join(cmds))


def _run(node: Host, cmd: str) -> None:
    out = node.cmd(f"{cmd}; echo rc=$?")
    if not out.rstrip().endswith("rc=0"):
        raise NetworkError(f"{node.name}: {cmd!r} failed: {out.strip()}")


def _vsctl(*args: str) -> str:
    proc = subprocess.run(["ovs-vsctl", "--timeout=5", *args], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise NetworkError(f"ovs-vsctl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _has_table_miss(bridge: str) -> bool:
    proc = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and _TABLE_MISS_RE.search(proc.stdout) is not None


def _root_links() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def _check_names_free(bridges: Iterable[str], air: AirSegments | None = None) -> None:
    """Refuse to start when one of our names is taken (another run with our prefix)."""
    taken = set(_root_links())
    clash = sorted(b for b in bridges if b in taken)
    if air is not None:
        clash += sorted(n for n in netns_links() if air.name_re().match(n))
    existing = set(_vsctl("list-br").split())
    clash += sorted(b for b in bridges if b in existing and b not in clash)
    if clash:
        raise NetworkError(f"names already in use: {', '.join(clash)} "
                           "(another run with the same prefix?)")


def describe(mnet: MipvpnNet) -> dict[str, Any]:
    """Summary for logs: OVS names, hosts and where each mobile node is attached."""
    return {
        "switches": mnet.ovs_names,
        "hosts": sorted(h.name for h in mnet.net.hosts),
        "mobile_nodes": {k: list(v) for k, v in mnet.mn_location.items()},
        "link_model": mnet.link_model,
    }


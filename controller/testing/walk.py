"""A synchronous fake network ("walk") over the real roles of the default topology.

``Walk`` builds the roles exactly as ``Runtime`` does (``controller.core.roles``) and
executes their actions with ``Runtime.execute``'s semantics, synchronously, through the
same ``Dispatch`` (``controller.core.dispatch``: actions between roles, the outcomes of
requests, "registered elsewhere"); only the I/O is fake:

- every Diameter request and answer goes through ``dia.encode`` -> ``dia.decode``
  (each message is wire-valid, and the receiver only sees what the wire carried);
- every Mobile IPv4 message (MN -> FA, FA -> HA relay, HA -> FA reply, FA -> MN reply,
  binding messages between HA, CN-GW and FAs: ``SendMip`` to ``on_mip`` / ``ReplyMip``
  back to ``on_mip_reply``) travels as bytes and is decoded where the real receiver
  would decode it;
- time is ``walk.now`` (set by the test), never the wall clock;
- AddTunnel / RemoveTunnel / SendFlows / SendToMobileNode / Mark and the messages are
  appended to ``walk.log`` as ``(role, item)`` in execution order;
- a ``VisitorMoved`` (which the runtime performs in a task of its own, after the walk
  that completed the registration) is performed once the walk's outermost
  ``execute`` is done: the other FAs still listing the MN drop it;
- tunnels land in ``FakeGateways``, flow-mods in one ``FakeOFTable`` per switch
  (static flows installed at start, as ``Runtime._switch_up`` does).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.adapters.store import VpnStore
from controller.config import Topology, load_topology, parse_topology
from controller.core import flows
from controller.core.actions import (AddTunnel, AnnounceMobileNode, AnswerDiameter,
                                     DeliverHeld, HoldTraffic, HoldUplink,
                                     Mark, NotifyVisitorLeft, PrepareTunnel, RelayToHomeAgent,
                                     ReleaseHold, ReleaseUplink, RemoveTunnel, ReplyMip,
                                     SendDiameter,
                                     SendFlows, SendMip, SendToMobileNode, VisitorMoved)
from controller.core.dispatch import Dispatch
from controller.core.foreign_agent import ForeignAgent
from controller.core.role import AAAF, CNGW, FA, RoleKey, kind_of, name_of
from controller.core.roles import build_roles
from controller.core.vpn import TunnelSide
from controller.proto import diameter as dia
from controller.proto import mip
from controller.proto import mip_keys
from controller.proto import mip_rrq
from controller.testing.fakeoftable import FakeOFTable

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOPOLOGY = ROOT / "topology" / "default.yaml"
TWO_DOMAINS = ROOT / "topology" / "two-domains.yaml"
T0 = 1_700_000_000.0  # wall-clock seconds: HA checks NTP identifications against it

MN = "mn"


# ---------------------------------------------------------------- log items


@dataclass(frozen=True)
class DiameterSent:
    """A Diameter message as decoded from its wire bytes."""

    src: str
    dst: str
    msg: Any
    wire: bytes = field(repr=False)

    @property
    def name(self) -> str:
        kind = {dia.AmRequest: "AMR", dia.AmAnswer: "AMA", dia.HaRequest: "HAR",
                dia.HaAnswer: "HAA"}
        return kind[type(self.msg)]


@dataclass(frozen=True)
class MipSent:
    """A Mobile IPv4 message as bytes, with its decoding (None if malformed)."""

    src: str
    dst: str
    raw: bytes
    msg: Any

    @property
    def name(self) -> str:
        if isinstance(self.msg, mip.RegistrationRequest):
            return "RRQ"
        if isinstance(self.msg, mip.RegistrationReply):
            return f"RRP {self.msg.code}"
        if isinstance(self.msg, mip.BindingUpdate):
            return "BU delete" if self.msg.is_delete else "BU"
        if isinstance(self.msg, mip.BindingAck):
            return f"BAck {self.msg.status}"
        if isinstance(self.msg, mip.BindingRequest):
            return "BReq"
        return "MIP?"


# ---------------------------------------------------------------- fakes


class FakeGateways:
    """Which tunnels each gateway's charon would hold."""

    def __init__(self, names: list[str]) -> None:
        self.tunnels: dict[str, dict[str, TunnelSide]] = {n: {} for n in names}
        self.history: list[tuple[str, str, str]] = []   # (op, gateway, tunnel id)
        self.errors: list[str] = []

    def add(self, gateway: str, side: TunnelSide) -> None:
        assert side.local.gateway == gateway, (gateway, side)
        self.tunnels[gateway][side.tunnel_id] = side
        self.history.append(("add", gateway, side.tunnel_id))

    def remove(self, gateway: str, tunnel_id: str) -> None:
        if self.tunnels[gateway].pop(tunnel_id, None) is None:
            self.errors.append(f"{gateway}: no tunnel {tunnel_id}")
        self.history.append(("remove", gateway, tunnel_id))

    def ids(self, gateway: str) -> set[str]:
        return set(self.tunnels[gateway])


# ---------------------------------------------------------------- the walk


class Walk:
    def __init__(self, topo: Topology | None = None, now: float = T0) -> None:
        self.topo = topo or load_topology(DEFAULT_TOPOLOGY)
        self.now = now
        self.store = VpnStore(":memory:")
        self.store.seed(self.topo)
        built = build_roles(self.topo, self.store)
        self.built = built
        self.roles: dict[str, Any] = built.roles
        self.dispatch = Dispatch(self.roles)
        self._depth = 0                          # nesting of ``execute``
        self._after: list[VisitorMoved] = []     # the runtime's spawned cleanups
        self.fabric = flows.Fabric.from_topology(self.topo)
        self.log: list[tuple[str, Any]] = []
        self.lost: set[str] = set()     # roles whose binding messages are lost
        self.counters = {"malformed": 0, "dropped_rrq": 0}
        # as ``Runtime.execute``: an initiator's AddTunnel that comes up tells every
        # role (``on_tunnel_up``); off unless a test asks, and never for a tunnel id in
        # ``tunnel_fails`` (its add failed: the runtime logs it, the roles hear nothing)
        self.tunnels_come_up = False
        self.tunnel_fails: set[str] = set()
        self.gateways = FakeGateways(list(self.topo.gateways))
        self.tables = {sw.dpid: FakeOFTable(sw.dpid) for sw in self.topo.switches.values()}
        # meters (QoS, claims 8, 9) per switch: meter id -> its MeterMod
        self.meters: dict[int, dict[int, flows.MeterMod]] = {d: {} for d in self.tables}
        self.routes = self._routes()
        for name, sw in self.topo.switches.items():     # Runtime._switch_up
            mods = [flows.FlowMod("delete", flows.FlowSpec(0, (), (), 0), cookie_mask=0)]
            mods += flows.static_flows(self.fabric, name)
            self.tables[sw.dpid].apply(mods)
        for spec in self.roles["aaah"].static_tunnels():   # the runtime: gateway reconcile
            for gw in sorted(spec.ends(), key=lambda g: g == spec.initiator):
                self.gateways.add(gw, spec.side_for(gw))
        self.gateways.history.clear()

    # ------------------------------------------------------------ wiring

    def _routes(self) -> dict[str, dict[str, str]]:
        """role -> {Diameter destination (realm or host) -> receiving role}, as in
        ``Runtime._start_async``."""
        dom = self.built.home_domain
        assert dom is not None and dom.home_agent is not None
        routes: dict[str, dict[str, str]] = {"aaah": {dom.home_agent.host: "ha"}}
        for key in self.roles:
            if kind_of(key) != AAAF:
                continue
            fdom = self.topo.domains[name_of(key)]
            routes[key] = {realm: "aaah" for realm in self.built.home_realms}
            for fa in self.foreign_agents():
                if fa.conf.realm == fdom.realm:
                    routes[RoleKey(FA, fa.conf.name)] = {fdom.realm: key}
        return routes

    def fa(self, name: str) -> ForeignAgent:
        return self.roles[RoleKey(FA, name)]  # type: ignore[no-any-return]

    def foreign_agents(self) -> list[ForeignAgent]:
        return self.dispatch.foreign_agents()

    def table(self, switch: str) -> FakeOFTable:
        return self.tables[self.topo.switches[switch].dpid]

    @property
    def ha(self) -> Any:
        return self.roles["ha"]

    def cngw(self, name: str = "cngw2") -> Any:
        return self.roles[RoleKey(CNGW, name)]

    @property
    def aaah(self) -> Any:
        return self.roles["aaah"]

    def aaaf(self, domain: str = "domain-a") -> Any:
        return self.roles[RoleKey(AAAF, domain)]

    # ------------------------------------------------------------ events in

    def mn_sends_rrq(self, fa_name: str, raw: bytes, mn_mac: str, port: int,
                     src_port: int = mip.MIP_PORT, src_ip: str = "") -> None:
        """The MN's RRQ enters the FA's access switch at ``port``: delivered to the FA
        only if the switch punts it (as ``Runtime.packet_in`` / ``_rrq_in``), with its
        UDP source port and IP source address."""
        fa = self.fa(fa_name)
        table = self.tables[fa.conf.access_dpid]
        out = table.lookup(port, mn_mac, flows.BROADCAST_MAC, flows.ETH_IPV4,
                           flows.IPPROTO_UDP, mip.MIP_PORT)
        if flows.OFPP_CONTROLLER not in out or port == fa.conf.fa_port:
            self.counters["dropped_rrq"] += 1
            return
        key = RoleKey(FA, fa_name)
        self.log.append((key, MipSent(MN, key, bytes(raw), _mip_or_none(raw))))
        self.execute(key, fa.on_registration_request(self.now, bytes(raw), mn_mac, port,
                                                     src_port=src_port, src_ip=src_ip))

    def tick(self) -> None:
        for key, role in list(self.roles.items()):
            actions = role.on_tick(self.now)
            if actions:
                self.execute(key, actions)

    # ------------------------------------------------------------ executor

    def execute(self, key: str, actions: list[Any]) -> Any:
        """``Runtime.execute``, synchronously; returns the role's answer, if any."""
        self._depth += 1
        try:
            result = self._execute(key, actions)
        finally:
            self._depth -= 1
        while self._depth == 0 and self._after:   # as the runtime's spawned task
            moved = self._after.pop(0)
            for other, follow in self.dispatch.left_elsewhere(self.now, moved):
                self.execute(other, follow)
        return result

    def _execute(self, key: str, actions: list[Any]) -> Any:
        dispatch = self.dispatch
        result = None
        for action in actions:
            if isinstance(action, Mark):
                self.log.append((key, action))
            elif isinstance(action, AddTunnel):
                self.log.append((key, action))
                self.gateways.add(action.gateway, action.side)
                if (self.tunnels_come_up and action.side.initiator
                        and action.side.tunnel_id not in self.tunnel_fails):
                    self._tunnel_up(action.side.tunnel_id)
            elif isinstance(action, RemoveTunnel):
                self.log.append((key, action))
                self.gateways.remove(action.gateway, action.tunnel_id)
            elif isinstance(action, SendFlows):
                self.log.append((key, action))
                self._apply(action.dpid, action.mods)
            elif isinstance(action, SendDiameter):
                answer = self._diameter(key, action)
                follow = dispatch.diameter_outcome(self.now, key,
                                                   action.request.session_id, answer)
                answer = self.execute(key, follow)
                if answer is not None:
                    result = answer
            elif isinstance(action, (AnswerDiameter, ReplyMip)):
                result = action.answer if isinstance(action, AnswerDiameter) else action.raw
            elif isinstance(action, RelayToHomeAgent):
                self.log.append((key, action))
                reply = self._relay_to_ha(key, action)
                self.execute(key, dispatch.home_agent_outcome(self.now, key, action, reply))
            elif isinstance(action, SendToMobileNode):
                self.log.append((key, action))
                self.log.append((key, MipSent(key, MN, bytes(action.raw),
                                              _mip_or_none(action.raw))))
            elif isinstance(action, (HoldTraffic, PrepareTunnel)):
                self.log.append((key, action))   # PrepareTunnel: the runtime's, later
            elif isinstance(action, (HoldUplink, AnnounceMobileNode, DeliverHeld)):
                self.log.append((key, action))
            elif isinstance(action, (ReleaseHold, ReleaseUplink)):
                # the runtime's end state: punt gone (or replaced by the redirect)
                self.log.append((key, action))
                self._apply(action.dpid, action.mods)
            elif isinstance(action, NotifyVisitorLeft):
                self.log.append((key, action))
                for other, follow in dispatch.visitor_left(self.now, action):
                    self.execute(other, follow)
            elif isinstance(action, VisitorMoved):
                self._after.append(action)
            elif isinstance(action, SendMip):
                reply = self._mip(key, action)
                if action.expect_reply:
                    follow = dispatch.mip_outcome(self.now, key, action, reply)
                    answer = self.execute(key, follow)
                    if answer is not None:
                        result = answer
            else:
                raise TypeError(f"unknown action {action!r}")
        return result

    def _tunnel_up(self, tunnel_id: str) -> None:
        """``Runtime._tunnel_up``: every role that asks hears that ``tunnel_id`` is up."""
        for key, role in list(self.roles.items()):
            up = getattr(role, "on_tunnel_up", None)
            follow = up(self.now, tunnel_id) if up is not None else None
            if follow:
                self.execute(key, follow)

    def _apply(self, dpid: int, mods: Any) -> None:
        """Flow and group mods go to the switch's fake table, meters to ``meters``."""
        meters = self.meters[dpid]
        for m in mods:
            if isinstance(m, flows.MeterMod):
                if m.op == "delete":
                    meters.pop(m.meter_id, None)
                else:
                    meters[m.meter_id] = m
        self.tables[dpid].apply([m for m in mods if not isinstance(m, flows.MeterMod)])

    def _mip(self, key: str, action: SendMip) -> bytes | None:
        """``Runtime._send_mip`` + the receiver's ``_mip_handler``: the bytes go to
        ``on_mip(now, raw, sender)``; its ``ReplyMip`` comes back (if awaited).
        Messages to a role in ``self.lost`` vanish (a timeout: None)."""
        raw = bytes(action.raw)
        self.log.append((key, MipSent(key, action.to, raw, _mip_or_none(raw))))
        if action.to in self.lost or action.to not in self.roles:
            return None
        reply = self.execute(action.to, self.roles[action.to].on_mip(self.now, raw, key))
        if reply is None:
            return None
        reply = bytes(reply)
        self.log.append((action.to, MipSent(action.to, key, reply, _mip_or_none(reply))))
        return reply if action.expect_reply else None

    def _diameter(self, key: str, action: SendDiameter) -> Any:
        dst = self.routes[key][action.to]
        wire = dia.encode(action.request)
        request = dia.decode(wire)
        self.log.append((key, DiameterSent(key, dst, request, wire)))
        receiver = self.roles[dst]
        if isinstance(request, dia.AmRequest):
            actions = receiver.on_amr(self.now, request)
        elif isinstance(request, dia.HaRequest):
            actions = receiver.on_har(self.now, request)
        else:
            raise ValueError(f"{dst} does not handle {type(request).__name__}")
        answer = self.execute(dst, actions)
        if answer is None:
            return None
        wire = dia.encode(answer)
        decoded = dia.decode(wire)
        self.log.append((dst, DiameterSent(dst, key, decoded, wire)))
        return decoded

    def _relay_to_ha(self, key: str, action: RelayToHomeAgent) -> bytes | None:
        if action.home_agent_address not in self.built.ha_by_address:
            return None
        raw = bytes(action.raw)
        self.log.append((key, MipSent(key, "ha", raw, _mip_or_none(raw))))
        reply = self.execute("ha", self.ha.on_registration_request(self.now, raw))
        if reply is None:
            return None
        reply = bytes(reply)
        self.log.append(("ha", MipSent("ha", key, reply, _mip_or_none(reply))))
        return reply

    # ------------------------------------------------------------ reading the log

    def mark(self) -> int:
        """Position in the log, for ``since``."""
        return len(self.log)

    def since(self, pos: int) -> list[tuple[str, Any]]:
        return self.log[pos:]

    def trace(self, pos: int = 0, marks: bool = False) -> list[str]:
        """The log as short lines, e.g. ``"fa:fa1 -> aaaf:domain-a AMR"``,
        ``"ha AddTunnel ha alice_home.example/ha-fa1"``."""
        out = []
        for role, item in self.log[pos:]:
            if isinstance(item, (DiameterSent, MipSent)):
                out.append(f"{item.src} -> {item.dst} {item.name}")
            elif isinstance(item, AddTunnel):
                init = " initiator" if item.side.initiator else ""
                out.append(f"{role} AddTunnel {item.gateway} {item.side.tunnel_id}{init}")
            elif isinstance(item, RemoveTunnel):
                out.append(f"{role} RemoveTunnel {item.gateway} {item.tunnel_id}"
                           + (" off-path" if item.off_path else ""))
            elif isinstance(item, PrepareTunnel):
                verb = "Unprepare" if item.remove else "PrepareTunnel"
                out.append(f"{role} {verb} {item.spec.tunnel_id}")
            elif isinstance(item, SendFlows):
                out.append(f"{role} SendFlows {self.fabric.switch_of_dpid(item.dpid)}")
            elif isinstance(item, RelayToHomeAgent):
                out.append(f"{role} RelayToHomeAgent")
            elif isinstance(item, NotifyVisitorLeft):
                out.append(f"{role} NotifyVisitorLeft {item.foreign_agent}")
            elif isinstance(item, HoldTraffic):
                out.append(f"{role} HoldTraffic {self.fabric.switch_of_dpid(item.dpid)}")
            elif isinstance(item, ReleaseHold):
                how = ("forward" + (f" {item.tunnel_id}" if item.tunnel_id else "")
                       if item.forward else "drop")
                out.append(f"{role} ReleaseHold {how}")
            elif isinstance(item, AnnounceMobileNode):
                out.append(f"{role} AnnounceMobileNode")
            elif isinstance(item, ReleaseUplink):
                out.append(f"{role} ReleaseUplink {self.fabric.switch_of_dpid(item.dpid)}")
            elif isinstance(item, DeliverHeld):
                out.append(f"{role} DeliverHeld {self.fabric.switch_of_dpid(item.dpid)}")
            elif isinstance(item, SendMip):
                continue   # its MipSent follows
            elif isinstance(item, SendToMobileNode):
                continue   # its MipSent follows
            elif isinstance(item, Mark):
                if marks:
                    out.append(f"{role} Mark {item.phase}")
            else:
                out.append(f"{role} {item!r}")
        return out

    def of_type(self, cls: type, pos: int = 0) -> list[tuple[str, Any]]:
        return [(r, i) for r, i in self.log[pos:] if isinstance(i, cls)]

    def diameter(self, pos: int = 0) -> list[DiameterSent]:
        return [i for _r, i in self.log[pos:] if isinstance(i, DiameterSent)]

    def replies_to_mn(self, pos: int = 0) -> list[mip.RegistrationReply]:
        return [i.msg for _r, i in self.log[pos:] if isinstance(i, MipSent) and i.dst == MN]


def _mip_or_none(raw: bytes) -> Any:
    try:
        return mip.decode(bytes(raw))
    except mip.MipDecodeError:
        return None


# ---------------------------------------------------------------- the mobile node


def topology(path: Path = TWO_DOMAINS, *, dynamic: tuple[str, ...] = (),
             destinations: dict[str, list[tuple[str, str]]] | None = None,
             smooth_handoff: bool = False, distribution: str = "registration",
             mn_ha: bool = True, seamless_handover: bool = False) -> Topology:
    """A topology YAML with changes for a test: ``dynamic`` gateways made dynamic,
    every profile given ``destinations`` (NAI -> [(prefix, gateway)]) and the options,
    and (``mn_ha``) an MN-HA association for every mobile node that lacks one."""
    import yaml
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name in dynamic:
        data["gateways"][name]["gateway_type"] = "dynamic"
    for i, mn in enumerate(data.get("mobile_nodes", {}).values()):
        if mn_ha and "mn_ha_spi" not in mn:
            mn["mn_ha_spi"] = 400 + i
            mn["mn_ha_key"] = f"{0xA0 + i:02x}" * 16
        elif not mn_ha:
            mn.pop("mn_ha_spi", None)
            mn.pop("mn_ha_key", None)
    for nai, prof in data.get("vpn_profiles", {}).items():
        if destinations and nai in destinations:
            prof["destinations"] = [{"prefix": p, "gateway": g} for p, g in destinations[nai]]
        prof["smooth_handoff"] = smooth_handoff
        if seamless_handover:
            prof["seamless_handover"] = True
        prof["distribution"] = distribution
    return parse_topology(data, str(path))


@dataclass(frozen=True)
class MnSettings:
    """A mobile node's identity and keys, as the MN client holds them (its MnConfig)."""

    nai: str
    home_address: str
    home_agent: str
    spi: int
    key: bytes = field(repr=False)
    lifetime: int = 300
    ha_spi: int | None = None
    ha_key: bytes | None = field(default=None, repr=False)


class MobileNode:
    """Builds the MN's RRQs exactly as ``mininet_scripts/mn_state.py`` does (NAI,
    optional previous-FA CVSE vendor 32473 type 1, optional service-update CVSE type 2,
    MN-HA auth when the MN has an MN-HA key, MN-AAA auth, MN-FA auth when an accepted
    reply gave it a key generation nonce), from the topology's ``mobile_nodes`` entry.
    Like the client, it derives its MN-FA key from the nonce in each accepted reply."""

    def __init__(self, walk: Walk, name: str = "mn1") -> None:
        self.walk = walk
        conf = walk.topo.mobile_nodes[name]
        self.conf = conf
        self.mac = conf.mac
        self.port = conf.attach_port
        ha_address = walk.topo.gateways[conf.home_agent].core.ip
        self.config = MnSettings(conf.nai, conf.home_address, ha_address, conf.mn_aaa_spi,
                                 conf.mn_aaa_key, conf.lifetime,
                                 conf.mn_ha_spi if conf.mn_ha_key else None,
                                 conf.mn_ha_key or None)
        self._last_ident = 0
        self.mn_fa: tuple[int, bytes] | None = None   # (SPI, MN-FA key), RFC 3957

    def identification(self, now: float | None = None) -> int:
        ident = mip.ntp_identification(self.walk.now if now is None else now)
        ident = max(ident, self._last_ident + 1)
        self._last_ident = ident
        return ident

    def rrq(self, fa_name: str, previous_fa: str | None = None, *,
            identification: int | None = None, key: bytes | None = None,
            nai: str | None = None, lifetime: int | None = None,
            previous_coa: str | None = None, ha_key: bytes | None = None,
            no_mn_ha: bool = False, service_update: bool = False,
            mn_fa: tuple[int, bytes] | None | str = "own", simultaneous: bool = False) -> bytes:
        """An RRQ for registering through ``fa_name`` (previous FA by gateway name, or
        ``previous_coa`` as a raw address).  ``key`` / ``ha_key`` replace the MN-AAA /
        MN-HA key, ``no_mn_ha`` leaves MN-HA authentication out, ``mn_fa`` replaces the
        MN-FA association (None: no MN-FA authentication)."""
        gw = self.walk.topo.gateways[fa_name]
        if previous_fa is not None:
            previous_coa = self.walk.topo.gateways[previous_fa].core.ip
        c = self.config
        ha_spi = None if no_mn_ha else (c.ha_spi if c.ha_spi is not None else
                                        (400 if ha_key is not None else None))
        assoc = self.mn_fa if mn_fa == "own" else mn_fa
        ident = self.identification() if identification is None else identification
        # the one RRQ builder the MN client uses too (byte-identical RRQs)
        return mip_rrq.build_rrq(
            nai=nai or c.nai, home_address=c.home_address, home_agent=c.home_agent,
            care_of_address=gw.core.ip, identification=ident,
            lifetime=c.lifetime if lifetime is None else lifetime, mn_aaa_spi=c.spi,
            mn_aaa_key=key or c.key, previous_coa=previous_coa,
            service_update=service_update, ha_spi=ha_spi,
            ha_key=None if no_mn_ha else (ha_key or c.ha_key),
            fa_spi=assoc[0] if assoc is not None and not isinstance(assoc, str) else None,
            fa_key=assoc[1] if assoc is not None and not isinstance(assoc, str) else None,
            simultaneous=simultaneous)

    def rrq_without_nai(self, fa_name: str) -> bytes:
        gw = self.walk.topo.gateways[fa_name]
        rrq = mip.RegistrationRequest(
            flags=mip.FLAG_T, lifetime=self.config.lifetime,
            home_address=self.config.home_address, home_agent=self.config.home_agent,
            care_of_address=gw.core.ip, identification=self.identification())
        return mip.append_auth(mip.encode(rrq), mip.AuthKind.MN_AAA, self.config.spi,
                               self.config.key)

    def register(self, fa_name: str, previous_fa: str | None = None, port: int | None = None,
                 **kw: Any) -> mip.RegistrationReply | None:
        """Send an RRQ at ``fa_name``'s access switch; the reply the MN got, if any."""
        pos = self.walk.mark()
        raw = self.rrq(fa_name, previous_fa, **kw)
        self.walk.mn_sends_rrq(fa_name, raw, self.mac, self.port if port is None else port)
        replies = self.walk.replies_to_mn(pos)
        assert len(replies) <= 1, replies
        if replies and replies[0] is not None and replies[0].accepted:
            nonce = mip_keys.nonce_reply(replies[0])
            if nonce is not None:
                self.mn_fa = (nonce.spi, mip_keys.mn_fa_key(self.config.key, nonce.nonce,
                                                             self.config.nai))
        return replies[0] if replies else None


def ip_packed(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed

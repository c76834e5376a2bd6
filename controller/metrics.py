"""Every Prometheus metric of the controller, declared in one class (FAUCET's shape).

The registry is injected, so a test builds ``Metrics(CollectorRegistry())`` and reads
values back with ``registry.get_sample_value``; the runtime owns one instance and the
REST app serves it at ``/metrics``.

Two kinds of updates:

* events, as they happen: ``handover_done(record)`` when a registration or a move is
  answered (registrations by result code, handovers by kind, one histogram observation
  per signalling phase, and one INFO log line with the NAI and the timings), and
  ``flow_mods_sent(switch, n)`` when flow-mods go out;
* state, read just before a scrape: ``refresh(runtime)`` sets the gauges (bindings,
  tunnels, switches, Diameter peers) and turns the roles' own counters (malformed
  packets dropped) into Prometheus counters by adding what grew since the last scrape.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               PlatformCollector, ProcessCollector)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from controller.logtext import log_text

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "format_handover", "log_handover"]

HANDOVER_LOG = logging.getLogger("mipvpn.handover")

# Signalling phases run from well under a millisecond (a flow-mod batch) to seconds
# (a Diameter timeout): log-spaced buckets over that range.
PHASE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                 2.5, 5.0)


class Metrics:
    """The controller's metrics, all registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 process: bool = True) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
        self.registrations = Counter(
            "mipvpn_registrations", "Registration Replies sent to mobile nodes, by "
            "Mobile IPv4 result code (0 = accepted) and kind of registration",
            ["code", "kind"], registry=reg)
        self.handovers = Counter(
            "mipvpn_handovers", "Moves of a mobile node to another foreign agent, by kind "
            "(intra-domain, inter-domain) and whether the new registration was accepted",
            ["kind", "result"], registry=reg)
        self.handover_phase_seconds = Histogram(
            "mipvpn_handover_phase_seconds", "Duration of each signalling phase of a "
            "registration or move (see GET /v1/handovers)", ["kind", "phase"],
            buckets=PHASE_BUCKETS, registry=reg)
        self.bindings_active = Gauge(
            "mipvpn_bindings_active", "Mobility bindings in the home agents' caches",
            registry=reg)
        self.tunnels = Gauge(
            "mipvpn_tunnels", "IPsec tunnel ends the controller set, per gateway and state "
            "(setting, up, configured, failed)", ["gateway", "state"], registry=reg)
        self.flow_mods = Counter(
            "mipvpn_flow_mods_sent", "OpenFlow flow-mods sent, per switch", ["switch"],
            registry=reg)
        self.malformed = Counter(
            "mipvpn_malformed_packets_dropped", "Packets or messages dropped as malformed, "
            "per role (fa:NAME, ha, diameter:HOST, ...)", ["role"], registry=reg)
        self.diameter_peer_up = Gauge(
            "mipvpn_diameter_peer_up", "1 when the Diameter connection from node to peer "
            "is open (capabilities exchanged, not closed), else 0", ["node", "peer"],
            registry=reg)
        self.switch_connected = Gauge(
            "mipvpn_switch_connected", "1 when the OpenFlow switch is connected",
            ["switch"], registry=reg)
        self.gateway_up = Gauge(
            "mipvpn_gateway_up", "1 when the gateway's charon answers over VICI, 0 while "
            "it is degraded or not reached yet (issue 5)", ["gateway"], registry=reg)
        self.state_records = Counter(
            "mipvpn_state_records_written", "Records written to the restart state store "
            "since start", registry=reg)
        self.packet_in = Counter(
            "mipvpn_packet_in", "OpenFlow packet-ins received", registry=reg)
        self.diameter_link_failures = Counter(
            "mipvpn_diameter_link_failures", "Failed attempts of a Diameter client link "
            "to connect (refused, unreachable, TLS handshake or certificate failure), "
            "per node", ["node"], registry=reg)
        self.admission_denied = Counter(
            "mipvpn_registrations_admission_denied", "Registration Requests a foreign "
            "agent refused at once (code 66) because max_pending registrations were "
            "already in flight, the oldest had waited max_pending_age, or recent AAA "
            "round trips averaged over it (overload)", ["foreign_agent"], registry=reg)
        self.held_frames = Counter(
            "mipvpn_held_downlink_frames", "Smooth handoff (claims 22-23) and seamless "
            "handover (issue 14): frames towards "
            "a departed mobile node held at its old access switch, by outcome (held, "
            "forwarded into the old FA, delivered to the MN at its new FA (seamless "
            "handover), dropped: overflow, expired, released without a tunnel, late)",
            ["outcome"], registry=reg)
        self.held_uplink_frames = Counter(
            "mipvpn_held_uplink_frames", "Seamless handover (issue 14): a mobile node's "
            "frames to its previous FA held at the new access switch until the new FA's "
            "tunnel is up, by outcome (held, forwarded into the new FA, dropped: overflow, "
            "expired, dropped without a release; refused: punted frames no FA prepared)",
            ["outcome"], registry=reg)
        self.trust_refusals = Counter(
            "mipvpn_trust_refusals", "Messages and connections refused at a trust "
            "boundary (issue 11; docs/security.md), by where (diameter:HOST, a role key) "
            "and reason (unknown_peer, connection_cap, peer_identity_mismatch, "
            "sender_rules, unknown_nai, home_agent, home_address, nai_mismatch, "
            "vpn_info, fa_auth_failed, reply_unmatched)", ["where", "reason"],
            registry=reg)
        self.moves_sent_home = Counter(
            "mipvpn_moves_sent_home", "Moves a foreign AAA did not answer locally and sent "
            "to the home AAA instead, by reason (e.g. no or bad MN-FA authentication, "
            "replayed identification)", ["aaaf", "reason"], registry=reg)
        self._seen: dict[tuple[str, str], int] = {}
        # (metric, label values) -> its child: ``labels()`` checks and hashes its
        # arguments under a lock on every call; a registration needs seven (issue 15)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, **labels: str) -> Any:
        key = (id(metric), *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child

    # ------------------------------------------------------------------ events

    def handover_done(self, record: Any) -> None:
        """A registration or move was answered (its ``rrp_sent`` mark): count it,
        observe its phases, log its line."""
        kind = str(record.kind)
        code = "none" if record.code is None else str(record.code)
        self._child(self.registrations, code=code, kind=kind).inc()
        if record.previous_fa:
            self._child(self.handovers, kind=kind,
                        result="accepted" if record.accepted else "denied").inc()
        phases = record.phases_ms()
        for phase, ms in phases.items():
            self._child(self.handover_phase_seconds, kind=kind,
                        phase=phase).observe(ms / 1000.0)
        log_handover(record, phases)

    def flow_mods_sent(self, switch: str, count: int) -> None:
        self._child(self.flow_mods, switch=switch).inc(count)

    # ------------------------------------------------------------------ state

    def refresh(self, rt: Any) -> None:
        """Read the runtime's state into the gauges and counters (call on the runtime's
        loop thread, just before exposing)."""
        ha_bindings = 0
        for key, role in rt.roles.items():
            if key == "ha" or key.startswith("ha:"):
                ha_bindings += len(getattr(role, "bindings", {}))
        self.bindings_active.set(ha_bindings)

        self.tunnels.clear()
        counts: dict[tuple[str, str], int] = {}
        for entry in list(rt.tunnel_log.values()):
            k = (str(entry.get("gateway", "")), str(entry.get("state", "")))
            counts[k] = counts.get(k, 0) + 1
        for (gateway, state), n in counts.items():
            self.tunnels.labels(gateway=gateway, state=state).set(n)

        connected = set(getattr(rt, "datapaths", {}))
        for name, sw in rt.topo.switches.items():
            self.switch_connected.labels(switch=name).set(1 if sw.dpid in connected else 0)

        for name, h in list(getattr(rt, "gateway_health", {}).items()):
            self.gateway_up.labels(gateway=name).set(1 if h.get("state") == "up" else 0)
        state = getattr(rt, "state", None)
        if state is not None:
            self._add_growth(self.state_records, ("runtime", "state_records"),
                             int(state.rows_written))

        for table in getattr(rt, "routes", {}).values():
            for dest, (node, conn) in table.items():
                peer = conn.remote_host or str(dest)
                up = bool(conn.open) and not conn.closed.is_set()
                self.diameter_peer_up.labels(node=node.origin_host, peer=peer).set(
                    1 if up else 0)

        for key, role in rt.roles.items():
            counters = getattr(role, "counters", None)
            if counters:
                self._add_growth(self.malformed.labels(role=key), (key, "malformed"),
                                 int(counters.get("malformed", 0)))
            if counters and key.startswith("fa:"):   # admission control (issue 5)
                self._add_growth(self.admission_denied.labels(foreign_agent=key[3:]),
                                 (key, "admission_denied"),
                                 int(counters.get("admission_denied", 0)))
        self._refresh_trust(rt)
        for node in getattr(rt, "nodes", {}).values():
            role = f"diameter:{node.origin_host}"
            bad = int(node.counters.get("malformed", 0)) + int(
                node.counters.get("framing_error", 0))
            self._add_growth(self.malformed.labels(role=role), (role, "malformed"), bad)
        runtime_counters = getattr(rt, "counters", {})
        for key, n in dict(getattr(rt, "link_failures", {})).items():
            node = getattr(rt, "nodes", {}).get(key)
            name = node.origin_host if node is not None else key
            self._add_growth(self.diameter_link_failures.labels(node=name),
                             (key, "link_failures"), int(n))
        self._add_growth(self.malformed.labels(role="runtime"), ("runtime", "malformed"),
                         int(runtime_counters.get("malformed", 0)))
        self._add_growth(self.packet_in, ("runtime", "packet_in"),
                         int(runtime_counters.get("packet_in", 0)))
        for outcome, name in (("held", "held_frames"), ("forwarded", "held_forwarded"),
                              ("delivered", "held_delivered"),
                              ("overflow", "held_dropped_overflow"),
                              ("expired", "held_dropped_expired"),
                              ("released", "held_dropped_released"),
                              ("late", "held_dropped_late")):
            self._add_growth(self.held_frames.labels(outcome=outcome), ("held", outcome),
                             int(runtime_counters.get(name, 0)))
        for outcome, name in (("held", "uplink_held"), ("forwarded", "uplink_forwarded"),
                              ("overflow", "uplink_dropped_overflow"),
                              ("expired", "uplink_dropped_expired"),
                              ("dropped", "uplink_dropped_unreleased"),
                              ("refused", "uplink_refused")):
            self._add_growth(self.held_uplink_frames.labels(outcome=outcome),
                             ("held_uplink", outcome), int(runtime_counters.get(name, 0)))

    def _refresh_trust(self, rt: Any) -> None:
        """The trust boundaries' refusal counters (issue 11) as one counter family."""
        def add(where: str, reason: str, value: Any) -> None:
            self._add_growth(self.trust_refusals.labels(where=where, reason=reason),
                             (f"trust:{where}", reason), int(value or 0))
        for node in list(getattr(rt, "nodes", {}).values()):
            for reason in ("unknown_peer", "connection_cap", "peer_identity_mismatch"):
                add(f"diameter:{node.origin_host}", reason, node.counters.get(reason, 0))
        for name, n in dict(getattr(rt, "counters", {})).items():
            if name.startswith("refused_peer:"):
                add(name.split(":", 1)[1], "sender_rules", n)
        for key, role in rt.roles.items():
            counters = getattr(role, "counters", None) or {}
            for name, n in counters.items():
                if name.startswith("refused_"):
                    add(str(key), name[len("refused_"):], n)
                elif name in ("fa_auth_failed", "reply_unmatched"):
                    add(str(key), name, n)
            for reason, n in dict(getattr(role, "home_because", {}) or {}).items():
                self._add_growth(self.moves_sent_home.labels(aaaf=str(key), reason=reason),
                                 (f"home:{key}", reason), int(n))

    def _add_growth(self, counter: Any, key: tuple[str, str], value: int) -> None:
        grown = value - self._seen.get(key, 0)
        if grown > 0:
            counter.inc(grown)
            self._seen[key] = value

    def exposition(self, rt: Any | None = None) -> bytes:
        """The text format Prometheus scrapes (refreshed from ``rt`` first if given)."""
        if rt is not None:
            self.refresh(rt)
        return generate_latest(self.registry)


# ---------------------------------------------------------------------- logs


def format_handover(record: Any, phases: dict[str, float] | None = None) -> str:
    """One line: what happened to which NAI, through which FA, how long each phase took
    (``phases``: ``record.phases_ms()``, when the caller has it already)."""
    if phases is None:
        phases = record.phases_ms()
    total = phases.get("controller_total")
    nai, fa, previous = (log_text(v) for v in (record.nai, record.foreign_agent,
                                                record.previous_fa))
    if record.previous_fa:
        what = f"{record.kind} move of {nai}: {previous} -> {fa}"
    else:
        what = f"registration of {nai} via {fa}"
    result = "accepted" if record.accepted else "denied"
    line = f"{what}: {result} (code {record.code})"
    if total is not None:
        line += f" in {total:.1f} ms"
    parts = [f"{name} {ms:.1f}" for name, ms in phases.items() if name != "controller_total"]
    if parts:
        line += " [" + ", ".join(parts) + " ms]"
    return line


def log_handover(record: Any, phases: dict[str, float] | None = None) -> None:
    """Log one line per registration/move (logger ``mipvpn.handover``): INFO when
    accepted, WARNING when denied; the line is built only when that level is on
    (issue 15: the benchmark's server logs at WARNING)."""
    level = logging.INFO if record.accepted else logging.WARNING
    if HANDOVER_LOG.isEnabledFor(level):
        HANDOVER_LOG.log(level, "%s", format_handover(record, phases))

"""Scripted mobility scenarios: YAML in, measured numbers and verdicts out.

`mipvpn scenario NAME|FILE [--json FILE]` runs one; `mipvpn scenario --list` lists
the ones in `scenarios/`.  Schema (docs/scenarios.md)::

    name: move-inter
    description: text
    topology: topology/two-domains.yaml      # relative to the repository
    overrides:                               # merged into the topology (optional)
      vpn_profiles: {...}
      diameter_relays: {...}                 # may be added: run as freeDiameterd
    processes:                               # extra controller processes (optional)
      - [aaaf:domain-b]
    mobile_nodes: [mn1]                      # MNs that run a client (default: all)
    probes:                                  # MN <-> CN streams (optional)
      - {mn: mn1, cn: cn1, rate: 1000}
    timeline:
      - {sleep: 1.0}
      - {move: mn1, to: acc3, port: 2}       # waits for the re-registration
      - {check: {present: [[ha, alice_home.example/ha-fa3]],
                 absent: [[ha, alice_home.example/ha-fa1]],
                 bindings: {alice@home.example: fa3}}}
      - {start_probes: true}                 # probes marked `deferred: true`
      - {set_profile: {nai: NAI, profile: {...}}}   # PUT /v1/profiles/NAI (claim 24)
      - {service_update: mn2}                # the MN re-registers asking for it
      - {stop_client: mn2}                   # no more renewals (lifetime expiry)
      - {iperf: {name: alice-up, mn: mn1, cn: cn1, direction: up}}   # iperf3, UDP
      - {iperf: {name: carol-up, mn: mn3, cn: cn1, direction: up, seconds: 5,
                 protocol: udp, offer_kbit: 50000}}           # or tcp (docs/scenarios.md)
      - {check: {qos_path: {mn1: 5000},      # meters + HTB at rate on the MN's path
                 qos_gone: {mn1: [fa1]}}}    # no HTB class for mn1's packets there
    expect:
      max_gap_ms: 1000                       # every move, both directions
      max_lost: 2000
      max_probe_lost: 500                    # whole run, per probe and direction
      probe_lost_excess: {mn: mn1, over: mn2, max: 2000}   # whole run, mn1 vs mn2
      moves: [{kind: inter-domain}]          # per move, in order
      rate_within: {alice-up: {kbit: 5000, tolerance: 0.10}}   # iperf step names
      rate_at_least: {carol-up: 15000}
      dscp: {alice-up: 46}                   # DS field of the packets received

The JSON result has the demo's per-move shape plus ``ok`` and ``failed``.  The exit
code is non-zero when an expectation fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from controller.adapters.private_files import private_run_dir
from mininet_scripts import scenario_checks as checks
from mininet_scripts import scenario_relay
from mininet_scripts.scenario_spec import (IPERF_PORT, LOST_DIRECTIONS, ScenarioError,
                                           list_scenarios, load_scenario, resolve,
                                           scenario_topology)
# re-exported: the callers that load a scenario and the ScenarioRun's users
from mininet_scripts.scenario_spec import ROOT as ROOT
from mininet_scripts.scenario_spec import check_names as check_names
from mininet_scripts.demo_results import link_move_spans, move_walk, walk_lines
from mininet_scripts.demo import (Demo, DemoError, _last_before, _registered, _stop_proc,
                                  read_events, rest_get, rest_put, say, wait_for)


def move_cells(spec: dict[str, Any], topo: Any) -> dict[str, list[tuple[str, int]]]:
    """MN -> the (switch, port) its timeline's moves go to (in order, once each): the
    carrier link model makes their cell links at build time."""
    out: dict[str, list[tuple[str, int]]] = {}
    for step in spec.get("timeline") or []:
        mn = step.get("move")
        if mn not in topo.mobile_nodes:
            continue
        cell = (str(step["to"]),
                int(step.get("port", 0)) or topo.mobile_nodes[mn].attach_port)
        if cell not in out.setdefault(mn, []):
            out[mn].append(cell)
    return out


class ScenarioRun:
    def __init__(self, spec: dict[str, Any], run_dir: Path, rest: str, of_port: int,
                 link_model: str = "carrier") -> None:
        self.spec = spec
        self.run_dir = run_dir
        topo, topo_file = scenario_topology(spec, run_dir)
        self.topo = topo
        self.demo = Demo(topo, run_dir, rest, of_port,
                         processes=[list(p) for p in spec.get("processes") or []],
                         topology_file=topo_file, link_model=link_model)
        self.demo.cells = move_cells(spec, topo)
        self.events: dict[str, Path] = {}
        self.clients: dict[str, Any] = {}
        self.location: dict[str, str] = {}
        self.moves: list[dict[str, Any]] = []
        self.failed: list[str] = []
        self.probes: list[dict[str, Any]] = []
        self.rates: dict[str, dict[str, Any]] = {}  # iperf step name -> measurement
        self.tso_off: set[str] = set()
        self.relays = scenario_relay.relays_for(topo, run_dir)   # freeDiameterd each

    def fail(self, msg: str) -> None:
        say(f"EXPECTATION FAILED: {msg}")
        self.failed.append(msg)

    def run(self) -> dict[str, Any]:
        demo, topo = self.demo, self.topo
        scenario_relay.start(self.relays)
        demo.bring_up()
        mns = self.spec.get("mobile_nodes") or list(topo.mobile_nodes)
        t_reg: dict[str, float] = {}
        for mn in mns:
            self.location[mn] = topo.mobile_nodes[mn].attach_switch
            self.clients[mn], self.events[mn] = demo.start_mn_client(mn)
        for mn in mns:
            reg = wait_for(f"{mn}'s first registration", lambda m=mn: _registered(
                self.events[m], 0), 20)
            rrq = next(e for e in read_events(self.events[mn]) if e["event"] == "rrq_sent")
            t_reg[mn] = round((reg["t"] - rrq["t"]) * 1000, 3)
            say(f"{mn} registered in {t_reg[mn]:.1f} ms")
        for i, p in enumerate(self.spec.get("probes") or []):
            if not p.get("deferred"):
                self._start_probe(i, p)
        if self.probes:
            time.sleep(1.0)
        for i, step in enumerate(self.spec["timeline"]):
            self._step(i, step)
        for p in self.probes:
            _stop_proc(p["mn_proc"])
            _stop_proc(p["cn_proc"])
        handovers = rest_get(demo.rest, "/v1/handovers")
        result = self._results(t_reg, handovers)
        self._expect(result)
        if self.relays:
            result["relays"] = scenario_relay.summary(self.relays)
        result["ok"] = not self.failed
        result["failed"] = list(self.failed)
        return result

    def _start_probe(self, i: int, p: dict[str, Any]) -> None:
        mn, cn = p["mn"], p["cn"]
        port = 5001 + i
        mn_ip = self.topo.mobile_nodes[mn].home_address
        cn_ip = self.topo.hosts[cn].ip
        rate = int(p.get("rate", 1000))
        mn_out = self.run_dir / f"probe-{mn}-{port}.json"
        cn_out = self.run_dir / f"probe-{cn}-{port}.json"
        cn_proc = self.demo.start_probe(cn, cn_ip, mn_ip, cn_out, port, rate)
        mn_proc = self.demo.start_probe(mn, mn_ip, cn_ip, mn_out, port, rate)
        self.probes.append({"mn": mn, "cn": cn, "port": port, "rate": rate,
                            "mn_out": mn_out, "cn_out": cn_out,
                            "mn_proc": mn_proc, "cn_proc": cn_proc})

    def _step(self, i: int, step: dict[str, Any]) -> None:
        if "sleep" in step:
            time.sleep(float(step["sleep"]))
        elif "move" in step:
            self._move(step["move"], step["to"], int(step.get("port", 0)) or None,
                       float(step.get("timeout", 15)))
        elif "wait_registered" in step:
            mn = step["wait_registered"]
            n = sum(1 for e in read_events(self.events[mn]) if e["event"] == "registered")
            wait_for(f"{mn} registered", lambda: _registered(self.events[mn], n - 1), 15)
        elif "check" in step:
            self._check(i, step["check"])
        elif "start_probes" in step:
            for k, p in enumerate(self.spec.get("probes") or []):
                if p.get("deferred"):
                    self._start_probe(k, p)
        elif "set_profile" in step:
            body = step["set_profile"]
            rest_put(self.demo.rest, f"/v1/profiles/{body['nai']}", body["profile"])
            say(f"profile of {body['nai']} changed through the REST API")
        elif "service_update" in step:
            mn = step["service_update"]
            n = sum(1 for e in read_events(self.events[mn]) if e["event"] == "registered")
            self.clients[mn].send_signal(signal.SIGUSR1)
            reg = wait_for(f"{mn}'s service-update registration",
                           lambda: _registered(self.events[mn], n), 15)
            say(f"{mn} re-registered with a service update ({reg.get('fa')})")
        elif "stop_client" in step:
            _stop_proc(self.clients[step["stop_client"]])
        elif "iperf" in step:
            self._iperf(i, step["iperf"])

    def _iperf(self, i: int, body: dict[str, Any]) -> None:
        """iperf3 server in the CN, client in the MN (``up``), or the other way round
        (``down``): the receiver's rate goes into the result under the step's name."""
        from mininet_scripts.iperf import (IperfError, ds_seen, run_iperf3,
                                           start_ds_sniffer, tso_off)
        mn, cn = body["mn"], body["cn"]
        mn_ip = self.topo.mobile_nodes[mn].home_address
        cn_ip = self.topo.hosts[cn].ip
        protocol = body.get("protocol", "udp")
        seconds = float(body.get("seconds", 5))
        offer = int(body.get("offer_kbit", 20000))
        net = self.demo.mnet
        up = body["direction"] == "up"
        server, client = (net.host(cn), net.host(mn)) if up else (net.host(mn), net.host(cn))
        entry: dict[str, Any] = {"mn": mn, "cn": cn, "direction": body["direction"],
                                 "protocol": protocol, "seconds": seconds,
                                 "fa": self.topo.switches[self.location.get(
                                     mn, self.topo.mobile_nodes[mn].attach_switch)
                                 ].foreign_agent}
        if protocol == "udp":
            entry["offered_kbit"] = offer
        try:
            if protocol == "tcp":
                for host in (mn, cn):
                    if host not in self.tso_off:
                        tso_off(net.host(host))
                        self.tso_off.add(host)
            # the receiver also counts the DS field of what arrives (claim 9's marking)
            sniffer = start_ds_sniffer(server, mn_ip if up else cn_ip)
            try:
                res = run_iperf3(server, client, cn_ip if up else mn_ip,
                                 port=IPERF_PORT + i, seconds=seconds, protocol=protocol,
                                 offer_kbit=offer, length=int(body.get("length", 1200)),
                                 bind=mn_ip if up else cn_ip)
            finally:
                entry["dscp"] = ds_seen(sniffer)
        except (IperfError, OSError, ValueError) as exc:
            entry["error"] = str(exc)
            self.fail(f"timeline[{i}] iperf {body['name']}: {exc}")
        else:
            entry["kbit"] = round(res.kbit, 1)
            entry["sent_kbit"] = round(res.sent_kbit, 1)
            if res.lost_percent is not None:
                entry["lost_percent"] = round(res.lost_percent, 2)
            say(f"iperf3 {body['name']} ({protocol}, {mn} "
                f"{'->' if up else '<-'} {cn} via {entry['fa']}): "
                f"{res.kbit / 1000:.2f} Mbit/s received")
        self.rates[body["name"]] = entry

    def _move(self, mn: str, to_switch: str, port: int | None, timeout: float) -> None:
        topo = self.topo
        conf = topo.mobile_nodes[mn]
        port = port or conf.attach_port
        fa_from = topo.switches[self.location[mn]].foreign_agent
        fa_to = topo.switches[to_switch].foreign_agent
        say(f"moving {mn}: {self.location[mn]} ({fa_from}) -> {to_switch} ({fa_to})")
        n_reg = sum(1 for e in read_events(self.events[mn]) if e["event"] == "registered")
        t_move, t_wall = time.monotonic(), time.time()
        link_s = self.demo.mnet.move_host(mn, to_switch, port)
        try:
            reg = wait_for(f"{mn}'s re-registration via {fa_to}",
                           lambda: _registered(self.events[mn], n_reg), timeout)
        except DemoError as exc:
            self.fail(str(exc))
            reg = None
        self.location[mn] = to_switch
        self.moves.append({"mn": mn, "from": fa_from, "to": fa_to, "t_move": t_move,
                           "t_move_wall": _seconds_of_day(t_wall),
                           "link_move_ms": round(link_s * 1000, 3), "registered": reg})

    def _check(self, i: int, check: dict[str, Any]) -> None:
        deadline = time.monotonic() + float(check.get("within", 3.0))
        while True:
            problems = self._check_once(check)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for p in problems:
            self.fail(f"timeline[{i}] check: {p}")

    def _check_once(self, check: dict[str, Any]) -> list[str]:
        gws = rest_get(self.demo.rest, "/v1/tunnels")["gateways"]
        # a gateway that could not be asked fails present and absent alike
        problems = checks.tunnel_problems(gws, check.get("present", []),
                                          check.get("absent", []))

        def ids(gw: str) -> set[str]:
            states, _ = checks.gateway_states(gws, gw)
            return checks.established_ids(states or [])
        if "counters" in check:  # {role: {counter: at least}}
            have = rest_get(self.demo.rest, "/v1/counters")
            for role, wanted in check["counters"].items():
                for name, least in wanted.items():
                    value = (have.get(role) or {}).get(name, 0)
                    if value < least:
                        problems.append(f"counter {role}.{name} = {value} (< {least})")
        if "ha_carries_no_traffic_of" in check:
            problems += self._ha_traffic(check["ha_carries_no_traffic_of"], gws)
        if "qos_path" in check:  # which gateways hold the MN's tunnels: ask them all
            problems += [f"qos_path: {why}" for gw in sorted(self.topo.gateways)
                         for why in [checks.gateway_states(gws, gw)[1]] if why]
            problems += self._qos_path(check["qos_path"], ids)
        if "qos_gone" in check:  # the MN's shaping left the gateways it left
            from mininet_scripts.iperf import shaping_of
            for mn, gws in check["qos_gone"].items():
                address = self.topo.mobile_nodes[mn].home_address
                for gw in gws:
                    left = shaping_of(self.demo.mnet.host(gw), address)
                    if left:
                        problems.append(f"{gw} still shapes {mn}'s packets ({address}) "
                                        f"in HTB classes {left}")
        if "bindings" in check:
            have = {b["nai"]: b["foreign_agent"]
                    for b in rest_get(self.demo.rest, "/v1/bindings")}
            for nai, fa in check["bindings"].items():
                if have.get(nai) != fa:
                    problems.append(f"binding of {nai} at {have.get(nai)}, expected {fa}")
        return problems

    def _ha_traffic(self, mn: str, before: dict[str, Any], window_s: float = 1.0
                    ) -> list[str]:
        """Route optimisation: the ESP packet counters of the HA's SAs do not move while
        the MN's probe runs, and those of its FA do (scenario_checks.ha_traffic_problems)."""
        ha = next(n for n, g in self.topo.gateways.items() if g.kind == "home_agent")
        fa = self.topo.switches[self.location[mn]].foreign_agent
        rate = next((float(p["rate"]) for p in self.probes
                     if p["mn"] == mn and p["mn_proc"].poll() is None
                     and p["cn_proc"].poll() is None), None)
        time.sleep(window_s)
        after = rest_get(self.demo.rest, "/v1/tunnels")["gateways"]
        return checks.ha_traffic_problems(mn, ha, fa, before, after, rate, window_s)

    def _qos_path(self, wanted: dict[str, float], ids: Any) -> list[str]:
        """Claims 8, 9 on the elements themselves: the MN's two meters (ids 2*port,
        2*port + 1) at its access switch, and on every gateway holding one of its tunnels
        (what charon reports: FA and HA, or FA and CN-GW) the HTB class(es) the u32
        filters send its home address's packets to, at the rate."""
        from mininet_scripts.iperf import htb_rates, meters, shaping_of
        problems = []
        net = self.demo.mnet
        for mn, kbit in wanted.items():
            switch, port = net.mn_location[mn]
            have = meters(net.switch(switch))
            for meter, way in ((2 * port, "uplink"), (2 * port + 1, "downlink")):
                if not _same_rate(have.get(meter, 0), kbit):
                    problems.append(f"{mn}: {way} meter {meter} at {switch} is "
                                    f"{have.get(meter)} kbit/s, expected {kbit}")
            owner = self.topo.mobile_nodes[mn].nai.replace("@", "_") + "/"
            gws = sorted(gw for gw in self.topo.gateways
                         if any(t.startswith(owner) for t in ids(gw)))
            if not gws:
                problems.append(f"{mn}: no gateway holds a tunnel of {mn}")
            address = self.topo.mobile_nodes[mn].home_address
            for gw in gws:
                mine = shaping_of(net.host(gw), address)
                if not mine or not all(_same_rate(r, kbit) for r in mine.values()):
                    problems.append(f"{mn}: {gw} shapes {address} in HTB classes {mine}, "
                                    f"expected {kbit} kbit/s (all classes: "
                                    f"{htb_rates(net.host(gw))})")
        return problems

    def _results(self, t_reg: dict[str, float], handovers: list[dict[str, Any]]
                 ) -> dict[str, Any]:
        from mininet_scripts.probe import analyse, load_result, steady_loss
        analyses: dict[str, tuple[Any, Any]] = {}
        steady: dict[str, dict[str, int]] = {}
        for p in self.probes:
            if not (p["mn_out"].exists() and p["cn_out"].exists()):
                wait_for("probe results", lambda: p["mn_out"].exists() and p["cn_out"].exists(),
                         10)
            mn_probe, cn_probe = load_result(str(p["mn_out"])), load_result(str(p["cn_out"]))
            mine = [m for m in self.moves if m["mn"] == p["mn"]]
            ev = [(f"move{k}", int(m["t_move"] * 1e9)) for k, m in enumerate(mine)]
            spans = link_move_spans(mine)
            analyses[p["mn"]] = (analyse(cn_probe["received"], mn_probe["sent"], ev,
                                         sender=mn_probe, receiver=cn_probe, spans=spans),
                                 analyse(mn_probe["received"], cn_probe["sent"], ev,
                                         sender=cn_probe, receiver=mn_probe, spans=spans))
            exp_cn, lost_cn = steady_loss(cn_probe, mn_probe)   # MN -> CN
            exp_mn, lost_mn = steady_loss(mn_probe, cn_probe)   # CN -> MN
            steady[p["mn"]] = {"mn_to_cn_sent": exp_cn, "mn_to_cn_lost": lost_cn,
                               "cn_to_mn_sent": exp_mn, "cn_to_mn_lost": lost_mn}
        by_nai: dict[str, list[dict[str, Any]]] = {}
        for h in handovers:
            if h.get("previous_fa"):
                by_nai.setdefault(h["nai"], []).append(h)
        seen: dict[str, int] = {}
        out = []
        for move in self.moves:
            mn = move["mn"]
            nai = self.topo.mobile_nodes[mn].nai
            k = seen.get(mn, 0)
            seen[mn] = k + 1
            recs = by_nai.get(nai, [])
            rec = recs[k] if k < len(recs) else {}
            entry: dict[str, Any] = {"mn": mn, "from": move["from"], "to": move["to"],
                                     "t_move_wall": move.get("t_move_wall"),
                                     "kind": rec.get("kind", "?"),
                                     "registered": move["registered"] is not None}
            phases = {"link_move (emulation)": move["link_move_ms"]}
            reg = move["registered"]
            events = read_events(self.events[mn])
            rrq = None
            if reg is not None:
                rrq = _last_before(events, "rrq_sent", reg["t"])
                if rrq is not None:
                    phases["signalling_total"] = round((reg["t"] - rrq["t"]) * 1000, 3)
            phases.update(rec.get("phases_ms", {}))
            entry["phases_ms"] = phases
            if mn in analyses:
                to_cn, to_mn = analyses[mn]
                w_cn, w_mn = to_cn.windows[k], to_mn.windows[k]
                entry["gap_ms"] = {"mn_to_cn": round(w_cn.gap_ms, 3),
                                   "cn_to_mn": round(w_mn.gap_ms, 3)}
                entry["lost"] = {"mn_to_cn": w_cn.lost, "cn_to_mn": w_mn.lost}
                # issue 14: down to the first packet through in each direction
                entry["walk"] = move_walk(move, rec.get("marks", {}), events, reg, w_cn,
                                          w_mn)
            out.append(entry)
        return {"scenario": self.spec["name"], "topology": self.topo.name,
                "registration_ms": t_reg, "moves": out, "rates": self.rates,
                # whole-run loss while both probe ends were running
                "probes": [{"mn": mn, **steady[mn]} for mn in analyses]}

    def _expect(self, result: dict[str, Any]) -> None:
        exp = self.spec.get("expect") or {}
        if "max_probe_lost" in exp:  # whole-run loss per probe and direction
            if not result["probes"]:
                self.fail("max_probe_lost: no probe ran, nothing was measured")
            for p in result["probes"]:
                for d in ("mn_to_cn", "cn_to_mn"):
                    if p[f"{d}_lost"] > exp["max_probe_lost"]:
                        self.fail(f"probe of {p['mn']}: {p[f'{d}_lost']} lost {d} "
                                  f"(> {exp['max_probe_lost']})")
                    if p[f"{d}_sent"] == 0:
                        self.fail(f"probe of {p['mn']}: nothing sent {d}")
        excess = exp.get("probe_lost_excess")
        # probe_lost_excess: {mn: A, over: B, max: N}: A's whole-run loss exceeds B's by at
        # most N in each direction.  Load on the machine hits every probe alike; a stall
        # of A's own traffic (one the move windows do not cover) does not.
        if excess:
            by_mn = {p["mn"]: p for p in result["probes"]}
            a, b = by_mn.get(excess["mn"]), by_mn.get(excess["over"])
            if a is None or b is None:
                self.fail(f"probe_lost_excess: no probe of {excess['mn']} or {excess['over']}")
            else:
                diff = {d: a[f"{d}_lost"] - b[f"{d}_lost"] for d in ("mn_to_cn", "cn_to_mn")}
                result["probe_lost_excess"] = diff
                for d, n in diff.items():
                    if n > excess["max"]:
                        self.fail(f"probe of {excess['mn']} lost {n} more {d} than "
                                  f"{excess['over']}'s (> {excess['max']})")
        less = exp.get("lost_less") or exp.get("report_lost")
        # lost_less: [mnA, mnB] asserts mnA's median move loses at most half of mnB's
        # (both directions, or only the direction named third; scenario_checks);
        # report_lost only records the totals and the per-move losses
        if less:
            dirs = tuple(less[2:]) or LOST_DIRECTIONS
            moves = result["moves"]
            result["lost_compare"] = {
                mn: sum(checks.move_losses(moves, mn, dirs)) for mn in less[:2]}
            result["lost_compare_by_direction"] = {
                mn: {d: sum(checks.move_losses(moves, mn, (d,))) for d in LOST_DIRECTIONS}
                for mn in less[:2]}
            result["lost_per_move"] = {
                mn: checks.move_losses(moves, mn, dirs) for mn in less[:2]}
            if exp.get("lost_less"):
                for problem in checks.lost_less_problems(moves, less[0], less[1], dirs):
                    self.fail(f"lost_less: {problem}")
        for name, bound in (exp.get("rate_within") or {}).items():
            got = self.rates.get(name, {}).get("kbit")
            tol = float(bound.get("tolerance", 0.10))
            if got is None:
                self.fail(f"iperf {name}: no rate measured")
            elif abs(got - bound["kbit"]) > tol * bound["kbit"]:
                self.fail(f"iperf {name}: {got:.0f} kbit/s, not within {tol:.0%} of "
                          f"{bound['kbit']} kbit/s")
        for name, least in (exp.get("rate_at_least") or {}).items():
            got = self.rates.get(name, {}).get("kbit")
            if got is None:
                self.fail(f"iperf {name}: no rate measured")
            elif got < least:
                self.fail(f"iperf {name}: {got:.0f} kbit/s, less than {least} kbit/s")
        for name, dscp in (exp.get("dscp") or {}).items():
            seen = self.rates.get(name, {}).get("dscp") or {}
            if set(seen) != {str(dscp)}:
                self.fail(f"iperf {name}: DS field of the packets received {seen}, "
                          f"expected all {dscp} with valid checksums")
        for i, move in enumerate(result["moves"]):
            if not move["registered"]:
                self.fail(f"move {i} ({move['mn']} {move['from']} -> {move['to']}): "
                          f"no re-registration")
            per = (exp.get("moves") or [])[i] if i < len(exp.get("moves") or []) else {}
            max_gap = per.get("max_gap_ms", exp.get("max_gap_ms"))
            max_lost = per.get("max_lost", exp.get("max_lost"))
            if per.get("kind") and move["kind"] != per["kind"]:
                self.fail(f"move {i}: kind {move['kind']}, expected {per['kind']}")
            for problem in checks.move_bound_problems(i, move, max_gap, max_lost):
                self.fail(problem)
        # issue 14: per move and direction (and MN), naming the walk's segment that grew
        for problem in checks.per_move_problems(result["moves"], exp.get("move_max_gap_ms"),
                                                exp.get("move_max_lost")):
            self.fail(problem)

    def close(self) -> None:
        for proc in self.clients.values():
            _stop_proc(proc)
        self.demo.close()
        scenario_relay.stop(self.relays)


def _same_rate(have: float, want: float) -> bool:
    """A configured rate as the switch/kernel reports it (tc rounds, e.g. 1599b)."""
    return abs(have - want) <= 0.01 * want


def print_result(res: dict[str, Any]) -> None:
    print()
    print(f"scenario {res['scenario']} on {res['topology']}: "
          f"{'OK' if res['ok'] else 'FAILED'}")
    for mn, ms in res["registration_ms"].items():
        print(f"  {mn} registered in {ms:.1f} ms")
    for m in res["moves"]:
        print(f"  move {m['mn']} {m['from']} -> {m['to']} ({m['kind']})")
        if "gap_ms" in m:
            print(f"    gap MN->CN {m['gap_ms']['mn_to_cn']:7.1f} ms  CN->MN "
                  f"{m['gap_ms']['cn_to_mn']:7.1f} ms   lost MN->CN {m['lost']['mn_to_cn']}"
                  f"  CN->MN {m['lost']['cn_to_mn']}")
        for name, ms in m["phases_ms"].items():
            print(f"    {name:28s} {ms:8.2f} ms")
        for line in walk_lines(m["walk"]) if m.get("walk") else ():
            print(line)
    for name, r in (res.get("rates") or {}).items():
        arrow = "->" if r["direction"] == "up" else "<-"
        got = f"{r['kbit'] / 1000:7.2f} Mbit/s" if "kbit" in r else f"error: {r.get('error')}"
        offered = f", offered {r['offered_kbit'] / 1000:g}" if "offered_kbit" in r else ""
        print(f"  iperf3 {name:18s} {r['mn']} {arrow} {r['cn']} via {r['fa']} "
              f"({r['protocol']}{offered}): {got}  DSCP {r.get('dscp')}")
    for f in res["failed"]:
        print(f"  FAILED: {f}")


def run_scenario(spec: dict[str, Any], rest: str = "127.0.0.1:8080", of_port: int = 6653,
                 keep_dir: bool = False) -> dict[str, Any]:
    run_dir = private_run_dir(f"mipvpn-{spec['name']}-")   # 0700: keys, DB, token
    try:
        run = ScenarioRun(spec, run_dir, rest, of_port)
    except BaseException:  # e.g. a name the topology does not have: nothing started yet
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        return run.run()
    except DemoError as exc:
        keep_dir = True
        return {"scenario": spec["name"], "ok": False, "failed": [str(exc)], "moves": [],
                "registration_ms": {}, "run_dir": str(run_dir)}
    finally:
        run.close()
        if not keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            say(f"run directory kept: {run_dir}")


def run_scenario_cli(args: Any) -> int:
    if args.list or not args.name:
        for name, desc in list_scenarios():
            print(f"{name:20s} {desc}")
        return 0 if args.list else 2
    if os.geteuid() != 0:
        print("scenarios need root (Mininet, Open vSwitch, strongSwan)", file=sys.stderr)
        return 2
    try:
        spec = load_scenario(resolve(args.name))
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        res = run_scenario(spec, args.rest, args.of_port, args.keep_dir)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    if "topology" in res:
        print_result(res)
    else:
        print(f"scenario {spec['name']}: FAILED: {res['failed']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))
        say(f"results written to {args.json}")
    return 0 if res["ok"] else 1


def _seconds_of_day(t: float) -> float:
    """Wall-clock ``t`` as seconds since local midnight: the clock of charon's log
    lines (``HH:MM:SS.mmm``), which bench.handover_paired matches moves against."""
    lt = time.localtime(t)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (t % 1.0)

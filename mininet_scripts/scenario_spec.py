"""A scenario's YAML: the schema (docs/scenarios.md, the keys each part may have), its
loading and validation, and the run's topology with the scenario's overrides merged.
The run itself is ``mininet_scripts.scenario``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from controller.adapters.private_files import private_file
from controller.config import ConfigError, parse_topology

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"
STEP_KINDS = {"sleep", "move", "check", "wait_registered", "start_probes", "set_profile",
              "service_update", "stop_client", "iperf"}
TOP_KEYS = {"name", "description", "topology", "overrides", "processes", "mobile_nodes",
            "probes", "timeline", "expect"}
CHECK_KEYS = {"present", "absent", "bindings", "within", "counters",
              "ha_carries_no_traffic_of", "qos_path", "qos_gone"}
LOST_DIRECTIONS = ("mn_to_cn", "cn_to_mn")
EXPECT_KEYS = {"max_gap_ms", "max_lost", "moves", "max_probe_lost", "lost_less",
               "report_lost", "probe_lost_excess", "rate_within", "rate_at_least",
               "dscp", "move_max_gap_ms", "move_max_lost"}
# iperf step: key -> (required, check, what it must be)
IPERF_KEYS: dict[str, tuple[bool, Any, str]] = {
    "name": (True, lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "mn": (True, lambda v: isinstance(v, str), "a mobile node's name"),
    "cn": (True, lambda v: isinstance(v, str), "a host's name"),
    "direction": (True, lambda v: v in ("up", "down"), "up (MN -> CN) or down (CN -> MN)"),
    "seconds": (False, lambda v: _number(v) and 1 <= v <= 60, "a number of seconds, 1-60"),
    "protocol": (False, lambda v: v in ("udp", "tcp"), "udp or tcp"),
    "offer_kbit": (False, lambda v: _number(v) and v > 0 and float(v).is_integer(),
                   "a positive whole number of kbit/s (UDP's offered rate)"),
    "length": (False, lambda v: isinstance(v, int) and 64 <= v <= 1400,
               "a datagram size in bytes, 64-1400"),
}
IPERF_PORT = 5201  # + the step's index


class ScenarioError(ValueError):
    pass


def list_scenarios() -> list[tuple[str, str]]:
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        out.append((path.stem, str(data.get("description", "")).strip().splitlines()[0]
                    if data.get("description") else ""))
    return out


def resolve(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = SCENARIO_DIR / f"{name}.yaml"
    if candidate.exists():
        return candidate
    known = ", ".join(n for n, _ in list_scenarios())
    raise ScenarioError(f"no scenario {name!r} (known: {known})")


def load_scenario(path: Path) -> dict[str, Any]:
    src = str(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{src}: not valid YAML: {exc}") from exc
    _known_mapping(src, spec, TOP_KEYS, "a scenario is a mapping")
    for key in ("name", "topology", "timeline"):
        if key not in spec:
            raise ScenarioError(f"{src}: {key}: missing")
    if not isinstance(spec["timeline"], list):
        raise ScenarioError(f"{src}: timeline: a list of steps expected")
    iperf_names: set[str] = set()
    for i, step in enumerate(spec["timeline"]):
        if not isinstance(step, dict) or len(set(step) & STEP_KINDS) != 1:
            raise ScenarioError(f"{src}: timeline[{i}]: one of {sorted(STEP_KINDS)} expected, "
                                f"got {step!r}")
        if "iperf" in step:
            name = _check_iperf(src, i, step["iperf"])
            if name in iperf_names:
                raise ScenarioError(f"{src}: timeline[{i}].iperf.name: {name!r} used twice")
            iperf_names.add(name)
        if "check" in step:
            _check_check(src, i, step["check"])
    _check_expect(src, spec.get("expect"), iperf_names)
    spec["_source"] = src
    return spec


def _known_mapping(where: str, body: Any, known: set[str],
                   not_mapping: str = "a mapping expected") -> None:
    """``body`` is a mapping of ``known`` keys only, else an error naming ``where``."""
    if not isinstance(body, dict):
        raise ScenarioError(f"{where}: {not_mapping}")
    unknown = set(body) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)} "
                            f"(known: {sorted(known)})")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_iperf(src: str, i: int, body: Any) -> str:
    where = f"{src}: timeline[{i}].iperf"
    _known_mapping(where, body, set(IPERF_KEYS),
                   "a mapping expected (name, mn, cn, direction, ...)")
    for key, (required, ok, what) in IPERF_KEYS.items():
        if key not in body:
            if required:
                raise ScenarioError(f"{where}.{key}: missing")
            continue
        if not ok(body[key]):
            raise ScenarioError(f"{where}.{key}: {body[key]!r} is not {what}")
    if body.get("protocol") == "tcp" and ("offer_kbit" in body or "length" in body):
        raise ScenarioError(f"{where}: offer_kbit/length apply to UDP only")
    return str(body["name"])


def _check_check(src: str, i: int, body: Any) -> None:
    where = f"{src}: timeline[{i}].check"
    _known_mapping(where, body, CHECK_KEYS)
    qos_path = body.get("qos_path", {})
    if not isinstance(qos_path, dict) or not all(
            _number(v) and v > 0 for v in qos_path.values()):
        raise ScenarioError(f"{where}.qos_path: {{mobile node: kbit/s > 0}} expected, "
                            f"got {qos_path!r}")
    qos_gone = body.get("qos_gone", {})
    if not isinstance(qos_gone, dict) or not all(
            isinstance(v, list) and all(isinstance(g, str) for g in v)
            for v in qos_gone.values()):
        raise ScenarioError(f"{where}.qos_gone: {{mobile node: [gateway, ...]}} expected, "
                            f"got {qos_gone!r}")


def _check_expect(src: str, exp: Any, iperf_names: set[str]) -> None:
    if exp is None:
        return
    _known_mapping(f"{src}: expect", exp, EXPECT_KEYS)
    for key in ("move_max_gap_ms", "move_max_lost"):
        if key in exp:
            _check_move_bound(f"{src}: expect.{key}", exp[key])
    for key in ("lost_less", "report_lost"):
        pair = exp.get(key)
        if pair is not None and not (
                isinstance(pair, list) and len(pair) in (2, 3)
                and all(isinstance(x, str) for x in pair)
                and (len(pair) == 2 or pair[2] in LOST_DIRECTIONS)):
            raise ScenarioError(f"{src}: expect.{key}: [mnA, mnB] or [mnA, mnB, DIRECTION] "
                                f"expected, DIRECTION one of {list(LOST_DIRECTIONS)}")
    for key in ("rate_within", "rate_at_least", "dscp"):
        entries = exp.get(key, {})
        if not isinstance(entries, dict):
            raise ScenarioError(f"{src}: expect.{key}: {{iperf step name: ...}} expected")
        for name, bound in entries.items():
            where = f"{src}: expect.{key}.{name}"
            if name not in iperf_names:
                known = ", ".join(sorted(iperf_names)) or "none"
                raise ScenarioError(f"{where}: no iperf step named {name!r} "
                                    f"(iperf steps: {known})")
            if key == "dscp":
                if not (isinstance(bound, int) and not isinstance(bound, bool)
                        and 0 <= bound <= 63):
                    raise ScenarioError(f"{where}: {bound!r} is not a DSCP (0-63)")
                continue
            if key == "rate_at_least":
                if not (_number(bound) and bound > 0):
                    raise ScenarioError(f"{where}: {bound!r} is not a rate in kbit/s > 0")
                continue
            if not isinstance(bound, dict) or set(bound) - {"kbit", "tolerance"} \
                    or "kbit" not in bound:
                raise ScenarioError(f"{where}: {{kbit: K, tolerance: T}} expected, "
                                    f"got {bound!r}")
            if not (_number(bound["kbit"]) and bound["kbit"] > 0):
                raise ScenarioError(f"{where}.kbit: {bound['kbit']!r} is not a rate > 0")
            tol = bound.get("tolerance", 0.10)
            if not (_number(tol) and 0 < tol < 1):
                raise ScenarioError(f"{where}.tolerance: {tol!r} is not a fraction "
                                    f"between 0 and 1")


def _bound_ok(value: Any) -> bool:
    return _number(value) and value >= 0


def _check_move_bound(where: str, body: Any) -> None:
    """A per-move bound (issue 14): N, {direction: N} or {MN: N or {direction: N}}."""
    if _number(body):
        if not _bound_ok(body):
            raise ScenarioError(f"{where}: {body!r} is not a number >= 0")
        return
    if not isinstance(body, dict) or not body:
        raise ScenarioError(f"{where}: a number >= 0, {{direction: N}} or {{mobile node: "
                            f"N or {{direction: N}}}} expected (not empty), got {body!r}")
    per_direction = set(body) <= set(LOST_DIRECTIONS)
    for key, value in body.items():
        if per_direction or _number(value):
            if not _bound_ok(value):
                raise ScenarioError(f"{where}.{key}: {value!r} is not a number >= 0")
            continue
        if not isinstance(value, dict) or not value or not set(value) <= set(LOST_DIRECTIONS):
            raise ScenarioError(f"{where}.{key}: a number >= 0 or {{direction: N}} expected, "
                                f"direction one of {list(LOST_DIRECTIONS)}, got {value!r}")
        for d, n in value.items():
            if not _bound_ok(n):
                raise ScenarioError(f"{where}.{key}.{d}: {n!r} is not a number >= 0")


def scenario_topology(spec: dict[str, Any], run_dir: Path) -> tuple[Any, str]:
    """The scenario's topology with its overrides merged, written into the run dir."""
    topo_path = (ROOT / spec["topology"]) if not Path(spec["topology"]).is_absolute() \
        else Path(spec["topology"])
    data = yaml.safe_load(topo_path.read_text())
    for section, values in (spec.get("overrides") or {}).items():
        if section == "diameter_relays":        # optional: may be added (issue 17)
            data.setdefault(section, {})
        if section not in data or not isinstance(values, dict):
            raise ScenarioError(f"{spec['_source']}: overrides.{section}: not a topology "
                                f"section")
        data[section].update(values)
    merged = private_file(run_dir / "topology.yaml",   # 0600: it holds the MNs' keys
                          yaml.safe_dump(data, sort_keys=False))
    try:
        topo = parse_topology(data, f"{spec['_source']} (topology {spec['topology']})")
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from exc
    check_names(spec, topo)
    return topo, str(merged)


def check_names(spec: dict[str, Any], topo: Any) -> None:
    """The nodes the iperf steps and QoS checks name exist in the topology."""
    src = spec["_source"]
    for key in ("move_max_gap_ms", "move_max_lost"):
        bound = (spec.get("expect") or {}).get(key)
        if isinstance(bound, dict) and not set(bound) <= set(LOST_DIRECTIONS):
            for mn in bound:
                if mn not in topo.mobile_nodes:
                    raise ScenarioError(f"{src}: expect.{key}: no mobile node {mn!r} "
                                        f"(has {sorted(topo.mobile_nodes)})")
    for i, step in enumerate(spec["timeline"]):
        body = step.get("iperf")
        if body is not None:
            if body["mn"] not in topo.mobile_nodes:
                raise ScenarioError(f"{src}: timeline[{i}].iperf.mn: no mobile node "
                                    f"{body['mn']!r} (has {sorted(topo.mobile_nodes)})")
            if body["cn"] not in topo.hosts:
                raise ScenarioError(f"{src}: timeline[{i}].iperf.cn: no host {body['cn']!r} "
                                    f"(has {sorted(topo.hosts)})")
        check = step.get("check") or {}
        for mn in check.get("qos_path", {}):
            if mn not in topo.mobile_nodes:
                raise ScenarioError(f"{src}: timeline[{i}].check.qos_path: no mobile node "
                                    f"{mn!r} (has {sorted(topo.mobile_nodes)})")
        for mn, gws in check.get("qos_gone", {}).items():
            if mn not in topo.mobile_nodes:
                raise ScenarioError(f"{src}: timeline[{i}].check.qos_gone: no mobile node "
                                    f"{mn!r} (has {sorted(topo.mobile_nodes)})")
            for gw in gws:
                if gw not in topo.gateways:
                    raise ScenarioError(f"{src}: timeline[{i}].check.qos_gone.{mn}: no "
                                        f"gateway {gw!r} (has {sorted(topo.gateways)})")

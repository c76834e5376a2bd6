"""Topology generator: a compact ``generate:`` spec expands to a full topology dict.

Pure (no I/O, no clock): the same spec always yields the same topology, byte for byte.
``controller.config.parse_topology`` calls :func:`expand` when a document has a
``generate`` key, so ``mipvpn check-config`` and the controller accept such a file
like any other.  Schema (docs/experiments.md)::

    name: grid16
    generate:
      cells: 4x4            # ROWSxCOLS grid, or {count: N, edges: [[0, 1], ...]}
      domains: 2            # foreign domains; cells split into contiguous blocks
      mns: 100
      cn_gateways: 1        # default 1 (max 8); each with one correspondent host
      seed: 1               # template draw, initial cells, keys
      placement: random     # or round_robin: the MNs' initial cells
      templates:            # default: one template "basic"
        gold:   {weight: 1, qos: {rate_kbps: 5000, dscp: 46}, smooth_handoff: true}
        basic:  {weight: 3}

A template's keys: ``weight`` (default 1), ``qos``, ``security``, ``smooth_handoff``,
``distribution`` (the profile's, as in ``vpn_profiles``), ``lifetime`` (default 300),
``mn_ha`` (default true: the MN has an MN-HA association).

What is allocated (deterministic, from the index of each element):

* cell ``k`` (1-based, row-major in a grid): access switch ``acc<k>`` (dpid 0x1000+k),
  foreign agent ``fa<k>`` (core 10.0.0.(10+k)/24, inside 10.21.k.1/24 on
  ``acc<k>``:1), in foreign domain ``dom<d>`` (realm ``d<d>.example``, AAAF on
  127.0.0.1:(3880+d)); domain ``dom<d>`` has its own core switch ``core<d>`` linked to
  the backbone ``core0``;
* home domain ``home``: HA ``ha`` (core 10.0.0.1, inside 10.10.0.1/16), AAAH on
  127.0.0.1:3868, HA Diameter 3870, MIP 4341;
* CN gateway ``cngw<j>`` (core 10.0.0.(1+j)), site switch ``corp<j>``, network
  10.(29+j).0.0/24, host ``cn<j>`` (.10);
* mobile node ``mn<i>``: NAI ``user<i>@home.example``, home address 10.10.0.(99+i)
  and up, port ``1+i`` on every access switch (a port no other MN uses, so a move to
  any cell finds it free), keys derived from the seed (emulation only: whoever has the
  file can derive them; docs/experiments.md).

The cell graph (for ``controller.mobility``): :func:`cell_graph`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

__all__ = ["GenerateError", "GenerateSpec", "cell_graph", "expand", "parse_spec"]

MAX_CELLS = 240          # FA core addresses 10.0.0.11 .. 10.0.0.250
MAX_DOMAINS = 26
MAX_CN_GATEWAYS = 8
MAX_MNS = 60_000         # home addresses in 10.10.0.0/16, ports up to 1+MNs
HOME_NET = ipaddress.IPv4Network("10.10.0.0/16")
FIRST_HOME_HOST = 99     # mn1 = 10.10.0.100
AAAH_PORT, HA_DIAMETER_PORT, HA_MIP_PORT, AAAF_BASE_PORT = 3868, 3870, 4341, 3880
SPEC_KEYS = ("cells", "domains", "mns", "cn_gateways", "seed", "templates", "placement")
TEMPLATE_KEYS = ("weight", "qos", "security", "smooth_handoff", "distribution",
                 "lifetime", "mn_ha")
PLACEMENTS = ("random", "round_robin")
_GRID_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


class GenerateError(ValueError):
    """A problem in a ``generate`` spec: ``generate.<key>: <reason>`` (the caller
    prefixes the file name)."""


@dataclass(frozen=True, slots=True)
class GenerateSpec:
    rows: int                               # grid rows; 0 for an explicit graph
    cols: int
    count: int                              # cells
    edges: tuple[tuple[int, int], ...]      # 0-based cell indices
    domains: int
    mns: int
    cn_gateways: int
    seed: int
    placement: str
    templates: tuple[tuple[str, dict[str, Any]], ...]


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenerateError(f"generate.{key}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise GenerateError(f"generate.{key}: {value} is out of range {lo}..{hi}")
    return value


def _grid_edges(rows: int, cols: int) -> tuple[tuple[int, int], ...]:
    edges = []
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            if c + 1 < cols:
                edges.append((k, k + 1))
            if r + 1 < rows:
                edges.append((k, k + cols))
    return tuple(edges)


def _cells(value: Any) -> tuple[int, int, int, tuple[tuple[int, int], ...]]:
    if isinstance(value, str):
        m = _GRID_RE.match(value)
        if not m:
            raise GenerateError(f"generate.cells: {value!r} is not ROWSxCOLS (e.g. 4x4)")
        rows, cols = int(m.group(1)), int(m.group(2))
        if rows < 1 or cols < 1 or rows * cols > MAX_CELLS:
            raise GenerateError(f"generate.cells: {value!r} must have 1..{MAX_CELLS} cells")
        return rows, cols, rows * cols, _grid_edges(rows, cols)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"count", "edges"})
        if unknown:
            raise GenerateError(f"generate.cells.{unknown[0]}: unknown key "
                                f"(allowed: count, edges)")
        if "count" not in value:
            raise GenerateError("generate.cells.count: missing required key")
        count = _int(value["count"], "cells.count", 1, MAX_CELLS)
        raw = value.get("edges") or []
        if not isinstance(raw, list):
            raise GenerateError("generate.cells.edges: expected a list of [a, b] pairs")
        edges = []
        for i, e in enumerate(raw):
            if (not isinstance(e, list) or len(e) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in e)):
                raise GenerateError(f"generate.cells.edges[{i}]: expected [a, b] (cell "
                                    f"indices 0..{count - 1}), got {e!r}")
            a, b = e
            if not (0 <= a < count and 0 <= b < count) or a == b:
                raise GenerateError(f"generate.cells.edges[{i}]: {e!r} must join two "
                                    f"different cells in 0..{count - 1}")
            edges.append((min(a, b), max(a, b)))
        graph = nx.Graph()
        graph.add_nodes_from(range(count))
        graph.add_edges_from(edges)
        if not nx.is_connected(graph):
            raise GenerateError("generate.cells.edges: the cell graph is not connected "
                                "(an MN could never reach some cells)")
        return 0, 0, count, tuple(sorted(set(edges)))
    raise GenerateError(f"generate.cells: expected ROWSxCOLS or {{count, edges}}, "
                        f"got {value!r}")


def _templates(value: Any) -> tuple[tuple[str, dict[str, Any]], ...]:
    if value is None:
        return (("basic", {}),)
    if not isinstance(value, dict) or not value:
        raise GenerateError("generate.templates: expected a non-empty mapping of "
                            "template names")
    out = []
    for name, body in value.items():
        path = f"templates.{name}"
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise GenerateError(f"generate.{path}: expected a mapping, got {body!r}")
        for key in body:
            if key not in TEMPLATE_KEYS:
                raise GenerateError(f"generate.{path}.{key}: unknown key (allowed: "
                                    f"{', '.join(TEMPLATE_KEYS)})")
        if "weight" in body:
            _int(body["weight"], f"{path}.weight", 1, 1_000_000)
        if "lifetime" in body:
            _int(body["lifetime"], f"{path}.lifetime", 1, 0xFFFE)
        if "mn_ha" in body and not isinstance(body["mn_ha"], bool):
            raise GenerateError(f"generate.{path}.mn_ha: expected true or false")
        out.append((str(name), dict(body)))
    return tuple(out)


def parse_spec(value: Any) -> GenerateSpec:
    """Validate a ``generate`` mapping; ``GenerateError`` names the key."""
    if not isinstance(value, dict):
        raise GenerateError(f"generate: expected a mapping, got {value!r}")
    for key in value:
        if key not in SPEC_KEYS:
            raise GenerateError(f"generate.{key}: unknown key (allowed: "
                                f"{', '.join(SPEC_KEYS)})")
    for key in ("cells", "mns"):
        if key not in value:
            raise GenerateError(f"generate.{key}: missing required key")
    rows, cols, count, edges = _cells(value["cells"])
    domains = _int(value.get("domains", 1), "domains", 1, MAX_DOMAINS)
    if domains > count:
        raise GenerateError(f"generate.domains: {domains} domains for {count} cells "
                            "(each domain needs at least one cell)")
    placement = value.get("placement", "random")
    if placement not in PLACEMENTS:
        raise GenerateError(f"generate.placement: {placement!r} is not one of "
                            f"{', '.join(PLACEMENTS)}")
    return GenerateSpec(
        rows=rows, cols=cols, count=count, edges=edges, domains=domains,
        mns=_int(value["mns"], "mns", 0, MAX_MNS),
        cn_gateways=_int(value.get("cn_gateways", 1), "cn_gateways", 1, MAX_CN_GATEWAYS),
        seed=_int(value.get("seed", 1), "seed", 0, 2**63 - 1),
        placement=str(placement), templates=_templates(value.get("templates")))


def cell_name(k: int) -> str:
    """Access switch of cell ``k`` (0-based): ``acc1`` .. ``accN``."""
    return f"acc{k + 1}"


def cell_graph(value: Mapping[str, Any] | GenerateSpec) -> nx.Graph:
    """The cells (access switch names) and their adjacency; each node has ``pos``
    (grid: (col, row); a graph: a seeded spring layout) and ``domain``."""
    spec = value if isinstance(value, GenerateSpec) else parse_spec(value)
    graph = nx.Graph()
    for k in range(spec.count):
        graph.add_node(cell_name(k), index=k, domain=_domain_name(_domain_of(k, spec)))
    graph.add_edges_from((cell_name(a), cell_name(b)) for a, b in spec.edges)
    if spec.rows:
        for k in range(spec.count):
            graph.nodes[cell_name(k)]["pos"] = (float(k % spec.cols), float(k // spec.cols))
    else:
        layout = nx.spring_layout(graph, seed=spec.seed)
        for node, xy in layout.items():
            graph.nodes[node]["pos"] = (float(xy[0]), float(xy[1]))
    return graph


def _domain_of(k: int, spec: GenerateSpec) -> int:
    """1-based foreign domain of cell ``k``: contiguous blocks of the row-major order."""
    return k * spec.domains // spec.count + 1


def _domain_name(d: int) -> str:
    return f"dom{d}"


def _mac(kind: int, n: int, side: int = 0) -> str:
    return f"02:{kind:02x}:{side:02x}:{(n >> 16) & 0xff:02x}:{(n >> 8) & 0xff:02x}:{n & 0xff:02x}"


def _key(seed: int, mn: str, what: str) -> str:
    """16 bytes as hex, derived from the seed (emulation: reproducible runs)."""
    return hashlib.sha256(f"mipvpn-topogen:{seed}:{mn}:{what}".encode()).hexdigest()[:32]


def _pick(rng: random.Random, templates: tuple[tuple[str, dict[str, Any]], ...]) -> str:
    names = [n for n, _ in templates]
    weights = [int(t.get("weight", 1)) for _, t in templates]
    return rng.choices(names, weights=weights, k=1)[0]


def expand(data: Mapping[str, Any]) -> dict[str, Any]:
    """A topology document with ``generate`` -> the full document config.py validates.
    Other top-level keys (``name``, ``user_allowance``, ...) are kept; a section given
    explicitly (e.g. ``vpn_profiles``) is merged over the generated one by name."""
    spec = parse_spec(data["generate"])
    out: dict[str, Any] = {"name": data.get("name", "generated")}
    switches: dict[str, Any] = {"core0": {"dpid": 0x100, "role": "core"},
                                "home": {"dpid": 0x200, "role": "site"}}
    gateways: dict[str, Any] = {}
    hosts: dict[str, Any] = {}
    links: list[list[str]] = []
    domains: dict[str, Any] = {
        "home": {"realm": "home.example",
                 "aaa": {"host": "aaah.home.example", "listen": f"127.0.0.1:{AAAH_PORT}"},
                 "home_agent": {"host": "ha.home.example",
                                "diameter_listen": f"127.0.0.1:{HA_DIAMETER_PORT}",
                                "mip_listen": f"127.0.0.1:{HA_MIP_PORT}"},
                 "home_prefixes": [str(HOME_NET)]}}
    core_port = {"core0": 100}

    def core_iface(switch: str, ip: str, mac: str) -> dict[str, Any]:
        core_port[switch] = core_port.get(switch, 100) + 1
        return {"ip": f"{ip}/24", "mac": mac, "switch": switch, "port": core_port[switch]}

    gateways["ha"] = {"kind": "home_agent", "domain": "home",
                      "core": core_iface("core0", "10.0.0.1", _mac(1, 1)),
                      "inside": {"ip": "10.10.0.1/16", "mac": _mac(1, 1, 1),
                                 "switch": "home", "port": 1}}
    for j in range(1, spec.cn_gateways + 1):
        net = ipaddress.IPv4Network(f"10.{29 + j}.0.0/24")
        site = f"corp{j}"
        switches[site] = {"dpid": 0x300 + j, "role": "site"}
        gateways[f"cngw{j}"] = {"kind": "cn_gateway", "domain": site,
                                "core": core_iface("core0", f"10.0.0.{1 + j}", _mac(3, j)),
                                "inside": {"ip": f"{net[1]}/24", "mac": _mac(3, j, 1),
                                           "switch": site, "port": 1}}
        hosts[f"cn{j}"] = {"ip": f"{net[10]}/24", "mac": _mac(4, j), "gateway": str(net[1]),
                           "switch": site, "port": 2}
        domains[site] = {"realm": f"corp{j}.example", "prefixes": [str(net)]}
    for d in range(1, spec.domains + 1):
        core = f"core{d}"
        switches[core] = {"dpid": 0x100 + d, "role": "core"}
        links.append([f"core0:{d}", f"{core}:1"])
        domains[_domain_name(d)] = {
            "realm": f"d{d}.example",
            "aaa": {"host": f"aaaf.d{d}.example", "listen": f"127.0.0.1:{AAAF_BASE_PORT + d}"}}
    for k in range(spec.count):
        n, d = k + 1, _domain_of(k, spec)
        acc, fa = cell_name(k), f"fa{n}"
        switches[acc] = {"dpid": 0x1000 + n, "role": "access", "foreign_agent": fa}
        gateways[fa] = {"kind": "foreign_agent", "domain": _domain_name(d),
                        "core": core_iface(f"core{d}", f"10.0.0.{10 + n}", _mac(2, n)),
                        "inside": {"ip": f"10.21.{n}.1/24", "mac": _mac(2, n, 1),
                                   "switch": acc, "port": 1}}
    rng = random.Random(f"mipvpn-topogen:{spec.seed}")
    mobile_nodes: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    templates = dict(spec.templates)
    destinations = [{"prefix": f"10.{29 + j}.0.0/24", "gateway": f"cngw{j}"}
                    for j in range(1, spec.cn_gateways + 1)]
    for i in range(1, spec.mns + 1):
        name, nai = f"mn{i}", f"user{i}@home.example"
        tname = _pick(rng, spec.templates)
        tmpl = templates[tname]
        k = rng.randrange(spec.count) if spec.placement == "random" else (i - 1) % spec.count
        mn: dict[str, Any] = {
            "nai": nai, "home_address": str(HOME_NET[FIRST_HOME_HOST + i]),
            "home_agent": "ha", "mac": _mac(5, i), "mn_aaa_spi": 1000 + i,
            "mn_aaa_key": _key(spec.seed, name, "mn-aaa"),
            "attach": {"switch": cell_name(k), "port": 1 + i},
            "lifetime": int(tmpl.get("lifetime", 300))}
        if tmpl.get("mn_ha", True):
            mn["mn_ha_spi"] = 100_000 + i
            mn["mn_ha_key"] = _key(spec.seed, name, "mn-ha")
        mobile_nodes[name] = mn
        profile: dict[str, Any] = {"destinations": [dict(x) for x in destinations]}
        for key in ("security", "qos", "smooth_handoff", "distribution"):
            if key in tmpl:
                profile[key] = tmpl[key]
        profiles[nai] = profile
    generated = {"switches": switches, "gateways": gateways, "hosts": hosts, "links": links,
                 "domains": domains, "mobile_nodes": mobile_nodes, "vpn_profiles": profiles}
    for section, body in generated.items():
        given = data.get(section)
        if isinstance(body, dict) and isinstance(given, dict):
            body.update(given)
        elif given is not None:
            body = given
        out[section] = body
    for key, value in data.items():
        if key not in out and key != "generate":
            out[key] = value
    return out


def template_of(data: Mapping[str, Any]) -> dict[str, str]:
    """MN name -> the template it was drawn from (for reports)."""
    spec = parse_spec(data["generate"])
    rng = random.Random(f"mipvpn-topogen:{spec.seed}")
    out = {}
    for i in range(1, spec.mns + 1):
        out[f"mn{i}"] = _pick(rng, spec.templates)
        if spec.placement == "random":
            rng.randrange(spec.count)
    return out

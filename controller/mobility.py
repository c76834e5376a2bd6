"""Mobility models over the cell graph, and mobility traces (record, replay).

Pure: a model takes the cell graph (``controller.topogen.cell_graph``: nodes are access
switch names with a ``pos``), each MN's initial cell, a duration and a seed, and returns
a trace, the list of :class:`Step` ``(t, mn, cell)`` sorted by time: one step per MN at
``t = 0`` (its initial cell), then one per move, each to a cell adjacent to the one
before.  Every MN draws from its own ``random.Random`` seeded by (seed, model, MN), so a
run repeats exactly and adding MNs does not change the others' moves.

Models (docs/experiments.md):

* ``random_walk``: dwell ``U(dwell)`` seconds in a cell, then a uniformly chosen neighbour;
* ``random_waypoint``: pick a destination cell uniformly, walk the shortest path there
  (``U(dwell)`` per hop), pause ``U(pause)`` there, pick the next;
* ``gauss_markov``: heading and speed follow the Gauss-Markov process (Liang & Haas 1999)
  ``x_n = a x_(n-1) + (1 - a) mean + sqrt(1 - a^2) sigma e_n``; ``a`` (``alpha``, 0..1) is
  the memory: 1 keeps the heading (straight lines, reflected at the edge of the graph),
  0 draws each heading afresh around the mean.  Each hop goes to the neighbour whose
  direction (from the cells' ``pos``) is closest to the heading; the dwell is the
  inverse of the speed (cells per second), clipped to ``dwell``.

Traces serialise to CSV (``t,mn,cell``) or JSON (``{"steps": [{"t", "mn", "cell"}]}``);
:func:`parse_trace` reads either and :func:`check_trace` checks one against a topology,
each with errors naming the source and the row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

__all__ = ["MODELS", "MobilityError", "Step", "check_trace", "dump_trace", "gauss_markov",
           "make_trace", "parse_model", "parse_trace", "random_walk", "random_waypoint"]


class MobilityError(ValueError):
    """A bad model spec or trace: ``<source>: <where>: <reason>``."""


@dataclass(frozen=True, slots=True, order=True)
class Step:
    t: float
    mn: str
    cell: str


Trace = list[Step]
Bounds = tuple[float, float]


def _rng(seed: int, model: str, mn: str) -> random.Random:
    return random.Random(f"mipvpn-mobility:{seed}:{model}:{mn}")


def _sorted(steps: list[Step], order: Mapping[str, int]) -> Trace:
    return sorted(steps, key=lambda s: (s.t, order[s.mn]))


def _initial(start: Mapping[str, str]) -> tuple[list[Step], dict[str, int]]:
    return [Step(0.0, mn, cell) for mn, cell in start.items()], \
        {mn: i for i, mn in enumerate(start)}


def random_walk(graph: nx.Graph, start: Mapping[str, str], duration: float, seed: int,
                dwell: Bounds = (20.0, 60.0)) -> Trace:
    """Dwell ``U(dwell)``, then a uniformly chosen neighbour."""
    steps, order = _initial(start)
    for mn, cell in start.items():
        rng, t = _rng(seed, "random_walk", mn), 0.0
        while True:
            t += rng.uniform(*dwell)
            neighbours = sorted(graph.neighbors(cell))
            if t >= duration or not neighbours:
                break
            cell = rng.choice(neighbours)
            steps.append(Step(round(t, 3), mn, cell))
    return _sorted(steps, order)


def random_waypoint(graph: nx.Graph, start: Mapping[str, str], duration: float, seed: int,
                    dwell: Bounds = (5.0, 15.0), pause: Bounds = (0.0, 30.0)) -> Trace:
    """Destination drawn uniformly, shortest path there (``U(dwell)`` per hop), a pause
    of ``U(pause)`` at the destination."""
    steps, order = _initial(start)
    cells = sorted(graph.nodes)
    for mn, cell in start.items():
        rng, t = _rng(seed, "random_waypoint", mn), 0.0
        while t < duration and len(cells) > 1:
            dest = rng.choice([c for c in cells if c != cell])
            for hop in nx.shortest_path(graph, cell, dest)[1:]:
                t += rng.uniform(*dwell)
                if t >= duration:
                    break
                cell = hop
                steps.append(Step(round(t, 3), mn, cell))
            t += rng.uniform(*pause)
    return _sorted(steps, order)


def _angle(graph: nx.Graph, a: str, b: str) -> float:
    (xa, ya), (xb, yb) = graph.nodes[a]["pos"], graph.nodes[b]["pos"]
    return math.atan2(yb - ya, xb - xa)


def _diff(a: float, b: float) -> float:
    """Absolute angular difference in 0..pi."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def gauss_markov(graph: nx.Graph, start: Mapping[str, str], duration: float, seed: int,
                 dwell: Bounds = (10.0, 60.0), alpha: float = 0.75,
                 sigma_heading: float = math.pi / 2) -> Trace:
    """Gauss-Markov heading and speed; ``alpha`` is the memory (0..1)."""
    steps, order = _initial(start)
    mean_speed = 2.0 / (dwell[0] + dwell[1])       # cells per second
    sigma_speed = mean_speed / 3.0
    keep = math.sqrt(max(0.0, 1.0 - alpha * alpha))
    for mn, cell in start.items():
        rng, t = _rng(seed, "gauss_markov", mn), 0.0
        heading = mean_heading = rng.uniform(-math.pi, math.pi)
        speed = mean_speed
        while True:
            speed = (alpha * speed + (1 - alpha) * mean_speed
                     + keep * sigma_speed * rng.gauss(0.0, 1.0))
            t += min(dwell[1], max(dwell[0], 1.0 / speed if speed > 0 else dwell[1]))
            # the process runs on the deviation from the mean heading (wrapped), so
            # that mixing two angles near +-pi never points the other way
            deviation = (heading - mean_heading + math.pi) % (2 * math.pi) - math.pi
            heading = mean_heading + (alpha * deviation
                                      + keep * sigma_heading * rng.gauss(0.0, 1.0))
            neighbours = sorted(graph.neighbors(cell))
            if t >= duration or not neighbours:
                break
            nxt = min(neighbours, key=lambda n: (_diff(_angle(graph, cell, n), heading), n))
            went = _angle(graph, cell, nxt)
            if _diff(went, heading) >= math.pi / 2 - 1e-9:
                # nothing ahead (the edge of the graph): reflect; heading and its mean
                # follow the move
                heading = mean_heading = went
            cell = nxt
            steps.append(Step(round(t, 3), mn, cell))
    return _sorted(steps, order)


def _bounds(value: Any, key: str, source: str, default: Bounds) -> Bounds:
    if value is None:
        return default
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
            or not 0 <= value[0] <= value[1] or value[1] <= 0):
        raise MobilityError(f"{source}: mobility.{key}: expected [min, max] seconds, "
                            f"0 <= min <= max, max > 0; got {value!r}")
    return float(value[0]), float(value[1])


# model name -> (function, {parameter: default})
MODELS: dict[str, tuple[Callable[..., Trace], dict[str, Any]]] = {
    "random_walk": (random_walk, {"dwell": (20.0, 60.0)}),
    "random_waypoint": (random_waypoint, {"dwell": (5.0, 15.0), "pause": (0.0, 30.0)}),
    "gauss_markov": (gauss_markov, {"dwell": (10.0, 60.0), "alpha": 0.75,
                                    "sigma_heading": math.pi / 2}),
}


def parse_model(body: Any, source: str = "<experiment>") -> tuple[str, int, dict[str, Any]]:
    """``{model: NAME, seed: N, dwell: [a, b], ...}`` -> (name, seed, parameters)."""
    if not isinstance(body, dict):
        raise MobilityError(f"{source}: mobility: expected a mapping (model, seed, ...)")
    name = body.get("model")
    if name not in MODELS:
        raise MobilityError(f"{source}: mobility.model: {name!r} is not one of "
                            f"{', '.join(MODELS)}")
    defaults = MODELS[name][1]
    for key in body:
        if key not in ("model", "seed", *defaults):
            raise MobilityError(f"{source}: mobility.{key}: unknown key for {name} "
                                f"(allowed: model, seed, {', '.join(defaults)})")
    seed = body.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MobilityError(f"{source}: mobility.seed: expected an integer >= 0, "
                            f"got {seed!r}")
    params: dict[str, Any] = {}
    for key, default in defaults.items():
        if isinstance(default, tuple):
            params[key] = _bounds(body.get(key), key, source, default)
        else:
            value = body.get(key, default)
            lo, hi = (0.0, 1.0) if key == "alpha" else (0.0, 2 * math.pi)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not lo <= value <= hi):
                raise MobilityError(f"{source}: mobility.{key}: expected a number in "
                                    f"{lo:g}..{hi:g}, got {value!r}")
            params[key] = float(value)
    if params["dwell"][0] <= 0:
        raise MobilityError(f"{source}: mobility.dwell: the minimum dwell must be > 0")
    return name, seed, params


def make_trace(body: Any, graph: nx.Graph, start: Mapping[str, str], duration: float,
               source: str = "<experiment>") -> Trace:
    """The trace a ``mobility`` spec yields over ``graph`` (validated first)."""
    name, seed, params = parse_model(body, source)
    return MODELS[name][0](graph, start, duration, seed, **params)


# ---------------------------------------------------------------------------
# Traces: CSV / JSON


def dump_trace(trace: Sequence[Step], fmt: str = "csv") -> str:
    """The trace as CSV (``t,mn,cell``) or JSON text."""
    if fmt == "json":
        return json.dumps({"steps": [{"t": s.t, "mn": s.mn, "cell": s.cell}
                                     for s in trace]}, indent=1) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("t", "mn", "cell"))
    for s in trace:
        writer.writerow((f"{s.t:g}", s.mn, s.cell))
    return out.getvalue()


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    """A CSV or JSON trace (JSON when it starts with ``{`` or ``[``): rows with a time
    (seconds >= 0, non-decreasing), an MN and a cell."""
    stripped = text.lstrip()
    rows: list[tuple[str, Any, Any, Any]] = []
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MobilityError(f"{source}: not valid JSON: {exc}") from None
        items = data.get("steps") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise MobilityError(f"{source}: expected {{\"steps\": [...]}} or a list")
        for i, item in enumerate(items):
            if isinstance(item, dict) and set(item) == {"t", "mn", "cell"}:
                rows.append((f"steps[{i}]", item["t"], item["mn"], item["cell"]))
            elif isinstance(item, list) and len(item) == 3:
                rows.append((f"steps[{i}]", *item))
            else:
                raise MobilityError(f"{source}: steps[{i}]: expected {{t, mn, cell}}, "
                                    f"got {item!r}")
    else:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["t", "mn", "cell"]:
            raise MobilityError(f"{source}: line 1: expected the header t,mn,cell, "
                                f"got {header!r}")
        for line, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != 3:
                raise MobilityError(f"{source}: line {line}: expected 3 fields "
                                    f"(t,mn,cell), got {len(row)}")
            try:
                t: Any = float(row[0])
            except ValueError:
                t = row[0]
            rows.append((f"line {line}", t, row[1].strip(), row[2].strip()))
    trace: Trace = []
    last = 0.0
    for where, t, mn, cell in rows:
        if (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)
                or t < 0):
            raise MobilityError(f"{source}: {where}: time {t!r} is not seconds >= 0")
        if t < last:
            raise MobilityError(f"{source}: {where}: time {t:g} is before the previous "
                                f"step's {last:g} (steps must be in time order)")
        for what, value in (("mn", mn), ("cell", cell)):
            if not isinstance(value, str) or not value:
                raise MobilityError(f"{source}: {where}: {what} {value!r} is not a name")
        last = float(t)
        trace.append(Step(float(t), mn, cell))
    return trace


def check_trace(trace: Sequence[Step], start: Mapping[str, str], graph: nx.Graph,
                source: str = "<trace>", adjacent: bool = True) -> None:
    """``trace`` fits the topology: known MNs and cells, an MN's ``t = 0`` step (if
    any) is its initial cell, each move changes cell (to a neighbour unless
    ``adjacent`` is false).  Raises ``MobilityError`` naming the step."""
    where_at = dict(start)
    for i, s in enumerate(trace):
        where = f"{source}: step {i} ({s.t:g}, {s.mn}, {s.cell})"
        if s.mn not in start:
            raise MobilityError(f"{where}: no mobile node {s.mn!r} in the topology")
        if s.cell not in graph:
            raise MobilityError(f"{where}: no cell {s.cell!r} (cells: "
                                f"{', '.join(sorted(graph.nodes))})")
        if s.t == 0:
            if s.cell != start[s.mn]:
                raise MobilityError(f"{where}: {s.mn} starts at {start[s.mn]!r} in the "
                                    "topology")
            continue
        if s.cell == where_at[s.mn]:
            raise MobilityError(f"{where}: {s.mn} is already at {s.cell!r}")
        if adjacent and not graph.has_edge(where_at[s.mn], s.cell):
            raise MobilityError(f"{where}: {s.cell!r} is not adjacent to "
                                f"{where_at[s.mn]!r}")
        where_at[s.mn] = s.cell


def moves_of(trace: Sequence[Step]) -> Trace:
    """The steps that are moves (``t > 0``)."""
    return [s for s in trace if s.t > 0]

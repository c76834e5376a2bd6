"""The web view: one page at ``/`` and a live state stream at ``/v1/view`` (SSE).

The page draws the cells (one per access switch served by a foreign agent, laid out as
the generated grid or graph when the topology has a ``generate`` spec, else one row
per foreign domain) with each mobile node in the cell it is registered in: when a
binding moves to another cell the node glides there and both cells flash
(:func:`cell_layout`, the ``cells`` / ``cell_edges`` of the snapshot and each mobile
node's ``cell``).  Below it the topology (switches, gateways, hosts), the tunnels
(HA-anchored, route-optimised, static, smooth-handoff drawn differently) and a timeline
of registrations/moves with their phases.  It reads
``/v1/view`` with ``fetch`` (``Accept: text/event-stream``) so the operator token travels in the ``Authorization``
header (``EventSource`` cannot send one); the token comes from the page's URL fragment
(``/#token=...``, never sent to the server) or from the box on the page.

``snapshot(rt)`` is pure reading of the runtime's state, on its loop thread.

The page is three static files (``webview.html``, ``webview.js``, ``webview.css``): no
inline script or style, so every response can carry a strict Content-Security-Policy
(:data:`CONTENT_SECURITY_POLICY`, with Trusted Types: a string can never become
markup or script in the page) plus ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer`` (:class:`SecurityHeaders`).  The script writes the
state as text only (``textContent``, text nodes, attribute values); see the comment
at the top of ``webview.js``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from importlib import resources
from typing import Any, AsyncIterator, Mapping

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

PUSH_INTERVAL = 0.25   # s between checks for a change
HEARTBEAT = 10.0       # s: a comment line keeps proxies from closing an idle stream

#: Every response's CSP: scripts and styles only from the page's own files, data only
#: from its own origin, nothing framed, embedded or posted; with Trusted Types no
#: string reaches an HTML/script sink (innerHTML, eval, ...) even by mistake.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
    "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    "object-src 'none'", "require-trusted-types-for 'script'", "trusted-types 'none'"])
#: FastAPI's own API documentation pages (``/docs``: Swagger UI, ``/redoc``) are an
#: inline bootstrap script plus bundles from a CDN: they get this narrower exception
#: (no 'unsafe-eval', nothing framed or posted), every other response the policy above.
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
DOCS_CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
    "font-src https://fonts.gstatic.com", "img-src 'self' data: https:",
    "worker-src blob:", "connect-src 'self'", "base-uri 'none'", "form-action 'none'",
    "frame-ancestors 'none'", "object-src 'none'"])
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_DOCS_HEADERS = ((b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode()),
                 *SECURITY_HEADERS[1:])
#: The page's static files: name -> media type.
STATIC = {"webview.js": "text/javascript; charset=utf-8",
          "webview.css": "text/css; charset=utf-8"}


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response (pages, JSON,
    errors, the event stream), replacing any the app set itself; the API docs pages
    (:data:`DOCS_PATHS`) get :data:`DOCS_CONTENT_SECURITY_POLICY` instead."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in SECURITY_HEADERS}
        ours = _DOCS_HEADERS if scope.get("path") in DOCS_PATHS else SECURITY_HEADERS

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in names]
                message = {**message, "headers": headers + list(ours)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def tunnel_kind(topo: Any, entry: dict[str, Any]) -> str:
    """static | ha-anchored | route-optimised | smooth-handoff | other."""
    if str(entry.get("tunnel_id", "")).startswith("static/"):
        return "static"
    kinds = set()
    for name in (entry.get("gateway"), entry.get("remote_gateway")):
        gw = topo.gateways.get(name)
        kinds.add(gw.kind if gw is not None else "?")
    if "home_agent" in kinds:
        return "ha-anchored"
    if kinds == {"foreign_agent", "cn_gateway"}:
        return "route-optimised"
    if kinds == {"foreign_agent"}:
        return "smooth-handoff"
    return "other"


def _natural(name: str) -> tuple[Any, ...]:
    """``acc2`` before ``acc10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def generate_spec_of(source: str) -> Mapping[str, Any] | None:
    """The ``generate`` spec of the topology file ``source`` (controller.topogen), or
    None: a hand-written topology, or a file that cannot be read any more."""
    import yaml
    try:
        with open(source, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError):
        return None
    spec = data.get("generate") if isinstance(data, dict) else None
    return spec if isinstance(spec, dict) else None


def cell_layout(topo: Any, generate: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The cells the view draws: one per access switch served by a foreign agent, with
    its position (``x`` column, ``y`` row; any scale, the page fits it) and the pairs of
    neighbouring cells.  From ``generate`` (the topology's spec: its grid or graph, as
    ``controller.topogen.cell_graph`` lays it out) when it names the same cells; else
    one row per foreign domain, cells in name order, and no neighbours."""
    access = {name: sw for name, sw in topo.switches.items()
              if sw.role == "access" and sw.foreign_agent in topo.gateways}
    domain = {name: topo.gateways[sw.foreign_agent].domain for name, sw in access.items()}
    pos: dict[str, tuple[float, float]] = {}
    edges: list[list[str]] = []
    if generate is not None:
        from controller.topogen import GenerateError, cell_graph
        try:
            graph = cell_graph(generate)
        except GenerateError:
            graph = None
        if graph is not None and set(graph.nodes) == set(access):
            pos = {n: graph.nodes[n]["pos"] for n in graph.nodes}
            edges = sorted(sorted((a, b), key=_natural) for a, b in graph.edges)
    if not pos:
        for row, dom in enumerate(sorted(set(domain.values()), key=_natural)):
            names = sorted((n for n in access if domain[n] == dom), key=_natural)
            pos.update({n: (float(col), float(row)) for col, n in enumerate(names)})
    return {"cells": [{"switch": n, "foreign_agent": access[n].foreign_agent,
                       "domain": domain[n], "x": pos[n][0], "y": pos[n][1]}
                      for n in sorted(access, key=_natural)],
            "cell_edges": edges}


def snapshot(rt: Any, layout: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole view as JSON-able data; ``layout``: :func:`cell_layout` of ``rt.topo``
    (computed here, without a ``generate`` spec, when not given)."""
    topo = rt.topo
    if layout is None:
        layout = cell_layout(topo)
    access_of = {sw.foreign_agent: name for name, sw in topo.switches.items()
                 if sw.foreign_agent}
    bindings: dict[str, Any] = {}
    for key, role in rt.roles.items():
        if key == "ha" or key.startswith("ha:"):
            for b in getattr(role, "bindings", {}).values():
                bindings[b.nai] = {"foreign_agent": b.foreign_agent,
                                   "care_of_address": b.care_of_address}
    mobile = []
    for name, m in topo.mobile_nodes.items():
        b = bindings.get(m.nai)
        fa = b["foreign_agent"] if b else None
        mobile.append({"name": name, "nai": m.nai, "home_address": m.home_address,
                       "foreign_agent": fa, "registered": b is not None,
                       "switch": access_of.get(fa, m.attach_switch) if fa else m.attach_switch,
                       "cell": access_of.get(fa) if fa else None})
    seen: set[frozenset[str]] = set()
    tunnels = []
    for entry in list(rt.tunnel_log.values()):
        ends = frozenset((str(entry.get("gateway")), str(entry.get("remote_gateway")),
                          str(entry.get("tunnel_id"))))
        if ends in seen:  # one line per tunnel, not per end
            continue
        seen.add(ends)
        tunnels.append({"id": entry.get("tunnel_id"), "a": entry.get("gateway"),
                        "b": entry.get("remote_gateway"), "state": entry.get("state"),
                        "kind": tunnel_kind(topo, entry)})
    return {
        "name": topo.name,
        "switches": [{"name": n, "role": s.role, "foreign_agent": s.foreign_agent,
                      "connected": s.dpid in rt.datapaths} for n, s in topo.switches.items()],
        "gateways": [{"name": n, "kind": g.kind, "domain": g.domain,
                      "core": g.core.switch, "inside": g.inside.switch, "ip": g.core.ip}
                     for n, g in topo.gateways.items()],
        "hosts": [{"name": n, "ip": h.ip, "switch": h.switch} for n, h in topo.hosts.items()],
        "links": [[lk.a_switch, lk.b_switch] for lk in topo.links],
        "cells": layout["cells"],
        "cell_edges": layout["cell_edges"],
        "mobile_nodes": mobile,
        "tunnels": tunnels,
        "handovers": [{"seq": r.seq, "nai": r.nai, "kind": r.kind,
                       "from": r.previous_fa, "to": r.foreign_agent, "code": r.code,
                       "accepted": r.accepted, "phases_ms": r.phases_ms()}
                      for r in list(rt.handovers.records)[-50:]],
    }


async def _stream(rt: Any, layout: dict[str, Any]) -> AsyncIterator[bytes]:
    last = None
    quiet_since = time.monotonic()
    while True:
        data = json.dumps(snapshot(rt, layout), separators=(",", ":"))
        if data != last:
            last = data
            quiet_since = time.monotonic()
            yield f"event: state\ndata: {data}\n\n".encode()
        elif time.monotonic() - quiet_since > HEARTBEAT:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        await asyncio.sleep(PUSH_INTERVAL)


def install_web_view(app: FastAPI, rt: Any, operator: Any) -> None:
    """Add ``GET /`` (the page, no data in it), its ``/webview.js`` and ``/webview.css``,
    and ``GET /v1/view`` (needs the operator token, like every /v1 route)."""
    files = resources.files("controller.adapters")
    page = files.joinpath("webview.html").read_text()
    static = {name: files.joinpath(name).read_text() for name in STATIC}
    layout = cell_layout(rt.topo, generate_spec_of(rt.topo.source))   # read once

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/webview.js", include_in_schema=False)
    async def script() -> Response:
        return Response(static["webview.js"], media_type=STATIC["webview.js"],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/webview.css", include_in_schema=False)
    async def style() -> Response:
        return Response(static["webview.css"], media_type=STATIC["webview.css"],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/v1/view", dependencies=[Depends(operator)], response_model=None)
    async def view(request: Request) -> StreamingResponse | dict[str, Any]:
        """The whole view (topology, cells, mobile nodes' attachment and cell,
        tunnels, last 50 handovers) as JSON; with ``Accept: text/event-stream``,
        server-sent events: an ``state`` event whenever it changes, for as long as the
        client reads."""
        if "text/event-stream" not in request.headers.get("accept", ""):
            return snapshot(rt, layout)
        return StreamingResponse(_stream(rt, layout), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

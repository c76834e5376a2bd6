"""REST API (FastAPI): read the controller's state; OpenAPI schema at /openapi.json.

Served by uvicorn inside the runtime's asyncio loop, so handlers read role state on
the thread that owns it.  No response ever carries key material.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Response

from controller.adapters.store import profile_to_json

LOG = logging.getLogger("mipvpn.rest")


def create_app(rt: Any) -> FastAPI:
    app = FastAPI(title="mipvpn", version="0.1.0",
                  description="Mobile IPv4 + AAA + IPsec VPN controller")

    @app.get("/v1/bindings")
    async def bindings() -> list[dict[str, Any]]:
        ha = rt.roles["ha"]
        now = time.time()
        return [{"nai": b.nai, "home_address": b.home_address,
                 "care_of_address": b.care_of_address, "foreign_agent": b.foreign_agent,
                 "lifetime": b.lifetime, "expires_in": round(b.expires - now, 1),
                 "tunnels": [t.tunnel_id for t in b.vpn_info.tunnels]}
                for b in ha.bindings.values()]

    @app.get("/v1/tunnels")
    async def tunnels() -> dict[str, Any]:
        return {"intended": list(rt.tunnel_log.values()),
                "gateways": await rt.gateway_tunnels()}

    @app.get("/v1/topology")
    async def topology() -> dict[str, Any]:
        topo = rt.topo
        return {
            "name": topo.name,
            "switches": [{"name": n, "dpid": s.dpid, "role": s.role,
                          "connected": s.dpid in rt.datapaths}
                         for n, s in topo.switches.items()],
            "gateways": [{"name": n, "kind": g.kind, "domain": g.domain,
                          "core": g.core.ip, "inside": g.inside.ip}
                         for n, g in topo.gateways.items()],
            "hosts": [{"name": n, "ip": h.ip} for n, h in topo.hosts.items()],
            "links": [[f"{lk.a_switch}:{lk.a_port}", f"{lk.b_switch}:{lk.b_port}"]
                      for lk in topo.links],
            "mobile_nodes": [{"name": n, "nai": m.nai, "home_address": m.home_address}
                             for n, m in topo.mobile_nodes.items()],
            "visitors": {fa.conf.name: sorted(fa.visitors) for fa in rt.foreign_agents()},
        }

    @app.get("/v1/handovers")
    async def handovers() -> list[dict[str, Any]]:
        return rt.handovers.to_json()  # type: ignore[no-any-return]

    @app.get("/v1/profiles/{nai}")
    async def profile(nai: str) -> dict[str, Any]:
        prof = rt.store.profile(nai)
        if prof is None:
            raise HTTPException(404, f"no VPN profile for {nai!r}")
        return profile_to_json(prof)

    @app.get("/v1/counters")
    async def counters() -> dict[str, Any]:
        out: dict[str, Any] = {"runtime": dict(rt.counters)}
        for key, role in rt.roles.items():
            if hasattr(role, "counters"):
                out[key] = dict(role.counters)
        return out

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text format (controller/metrics.py declares every metric)."""
        from controller.metrics import CONTENT_TYPE_LATEST
        return Response(rt.metrics.exposition(rt), media_type=CONTENT_TYPE_LATEST)

    return app


async def serve(rt: Any, host: str, port: int) -> None:
    import uvicorn
    config = uvicorn.Config(create_app(rt), host=host, port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    await server.serve()

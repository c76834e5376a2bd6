"""REST API (FastAPI): read the controller's state; OpenAPI schema at /openapi.json.

Served by uvicorn inside the runtime's asyncio loop, so handlers read role state on
the thread that owns it.  No response ever carries key material.

Every /v1 route needs a bearer token (``controller.adapters.auth``): the operator token,
or for ``/v1/profiles/{nai}`` and ``/v1/users/{nai}/credential`` that user's own
credential.  Bodies are strict pydantic models (unknown fields and wrong types are 422s
naming the field); bodies over 64 KiB are 413s; nothing answers 500 with details.

A user's change to their own profile must lie within the allowance the operator gave
them (``controller.allowance``; ``GET/PUT /v1/users/{nai}/allowance``, operator only):
outside it is a 403 naming each field.  ``PUT`` replaces the whole profile (every section
required: nothing is filled in); ``PATCH`` changes only the fields sent (JSON merge
patch, RFC 7396, without ``null``: a list such as ``destinations`` is replaced whole).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from controller.adapters.auth import (ERROR_RESPONSES, MAX_SECRET_LEN, MIN_SECRET_LEN,
                                      NAI_PATH, Auth, Principal, install_hardening)
from controller.adapters.store import profile_to_json
from controller.allowance import NOTHING, Allowance, allowance_to_json, canonical, violations
from controller.core.aaa_home import Destination, VpnProfile
from controller.core.vpn import QosSpec, SecuritySpec
from controller.logtext import log_text

LOG = logging.getLogger("mipvpn.rest")


#: strongSwan proposals a user may pick (all built by the plugins charon loads here).
IKE_PROPOSALS = ("aes128-sha256-modp2048", "aes256-sha256-modp2048", "aes128-sha256-ecp256",
                 "aes256-sha384-ecp384", "aes128gcm16-prfsha256-ecp256",
                 "aes256gcm16-prfsha384-ecp384", "aes128-sha256-x25519",
                 "aes256-sha384-x25519")
ESP_PROPOSALS = ("aes128gcm16", "aes256gcm16", "aes128-sha256", "aes256-sha256",
                 "aes256-sha384", "aes128gcm16-ecp256", "aes256gcm16-ecp384",
                 "aes128gcm16-modp2048")
IkeProposal = Literal[IKE_PROPOSALS]  # type: ignore[valid-type]
EspProposal = Literal[ESP_PROPOSALS]  # type: ignore[valid-type]


def _cidr(v: str) -> str:
    try:
        return str(ipaddress.IPv4Network(v, strict=True))
    except ValueError as e:
        raise ValueError(f"not an IPv4 network: {e}") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DestinationIn(_Strict):
    prefix: str = Field(max_length=18, description="IPv4 network (CIDR), host bits zero")
    gateway: str = Field(min_length=1, max_length=64,
                         description="name of a cn_gateway of the topology")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _cidr(v)


class SecurityIn(_Strict):
    ike: IkeProposal
    esp: EspProposal


class QosIn(_Strict):
    rate_kbps: int = Field(ge=0, le=10_000_000, description="0 = unlimited")
    dscp: int = Field(ge=0, le=63)


class ProfileIn(_Strict):
    """A user's VPN profile (claim 24), whole: replaces the stored one.  Every field is
    required (nothing is filled in for an absent one)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "destinations": [{"prefix": "10.30.0.0/24", "gateway": "cngw"}],
        "security": {"ike": "aes128-sha256-ecp256", "esp": "aes128gcm16"},
        "qos": {"rate_kbps": 10000, "dscp": 46},
        "smooth_handoff": True, "distribution": "registration"}]})
    destinations: list[DestinationIn] = Field(min_length=1, max_length=64)
    security: SecurityIn
    qos: QosIn
    smooth_handoff: bool
    distribution: Literal["registration", "on_demand"]
    # issue 14; the one optional field: absent = the stored profile's (default off)
    seamless_handover: bool = Field(None, description="prepare the FAs the MN can move "
                                    "to (absent: unchanged)")


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _absent(**constraints: Any) -> Any:
    """A PATCH field: absent = unchanged (the ``None`` default is never validated, and
    hidden from the schema); ``null`` sent is invalid like any other wrong type."""
    return Field(None, json_schema_extra=_drop_default, **constraints)


class SecurityPatch(_Strict):
    ike: IkeProposal = _absent()
    esp: EspProposal = _absent()


class QosPatch(_Strict):
    rate_kbps: int = _absent(ge=0, le=10_000_000, description="0 = unlimited")
    dscp: int = _absent(ge=0, le=63)


class ProfilePatch(_Strict):
    """Changes to a user's VPN profile: only the fields sent change (nested sections
    merge; ``destinations`` is replaced whole)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"qos": {"dscp": 46}}]})
    destinations: list[DestinationIn] = _absent(min_length=1, max_length=64)
    security: SecurityPatch = _absent()
    qos: QosPatch = _absent()
    smooth_handoff: bool = _absent()
    distribution: Literal["registration", "on_demand"] = _absent()
    seamless_handover: bool = _absent()


class AllowanceIn(_Strict):
    """What the user may change in their own profile (issue 11); replaces the stored
    allowance.  A value the user's profile already has is always kept."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "prefixes": ["10.30.0.0/16"], "gateways": ["cngw"], "max_rate_kbps": 10000,
        "dscp": [0, 46], "ike": ["aes128-sha256-ecp256"], "esp": ["aes128gcm16"],
        "smooth_handoff": True, "distribution": False}]})
    prefixes: list[Annotated[str, Field(max_length=18), AfterValidator(_cidr)]] = Field(
        max_length=64, description="IPv4 networks a destination must lie within")
    gateways: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        max_length=64, description="cn_gateways of the topology the user may pick")
    max_rate_kbps: int | None = Field(
        ge=0, le=10_000_000, description="highest rate: 0 = any (unlimited included), "
        "N = 1..N kbit/s (a user with a limit may not pick 0), null = none but the "
        "rate the profile has")
    dscp: list[Annotated[int, Field(ge=0, le=63)]] = Field(max_length=64)
    ike: list[IkeProposal] = Field(max_length=len(IKE_PROPOSALS))
    esp: list[EspProposal] = Field(max_length=len(ESP_PROPOSALS))
    smooth_handoff: bool = Field(description="may toggle smooth_handoff")
    distribution: bool = Field(description="may toggle distribution")
    seamless_handover: bool = Field(False, description="may toggle seamless_handover")


class CredentialIn(_Strict):
    secret: str = Field(min_length=MIN_SECRET_LEN, max_length=MAX_SECRET_LEN)


def create_app(rt: Any, auth: Auth | None = None) -> FastAPI:
    """The REST app over runtime ``rt`` (needs ``rt.store``, ``rt.topo``, ...).

    ``auth`` defaults to ``rt.auth``, else to the operator token of ``rt.run_dir`` and
    the user credentials in the VPN database's file.
    """
    if auth is None:
        auth = getattr(rt, "auth", None) or Auth.from_run_dir(rt.run_dir, rt.store.path)
    app = FastAPI(title="mipvpn", version="0.1.0",
                  description="Mobile IPv4 + AAA + IPsec VPN controller",
                  responses=ERROR_RESPONSES)
    install_hardening(app)
    app.state.auth = auth
    operator = [Depends(auth.operator)]

    @app.get("/v1/bindings", dependencies=operator)
    async def bindings() -> list[dict[str, Any]]:
        ha = rt.roles["ha"]
        now = time.time()
        # issue 14: the earlier binding kept beside it during a seamless move (S bit)
        earlier = getattr(getattr(ha, "simultaneous", None), "earlier", {})
        return [{"nai": b.nai, "home_address": b.home_address,
                 "care_of_address": b.care_of_address, "foreign_agent": b.foreign_agent,
                 "lifetime": b.lifetime, "expires_in": round(b.expires - now, 1),
                 "tunnels": [t.tunnel_id for t in b.vpn_info.tunnels],
                 "simultaneous": [
                     {"care_of_address": e.care_of_address, "foreign_agent": e.foreign_agent,
                      "tunnels": [t.tunnel_id for t in e.tunnels],
                      "awaiting": list(e.awaiting), "expires_in": round(e.expires - now, 3)}
                     for e in ([earlier[b.nai]] if b.nai in earlier else [])]}
                for b in ha.bindings.values()]

    @app.get("/v1/tunnels", dependencies=operator)
    async def tunnels() -> dict[str, Any]:
        return {"intended": list(rt.tunnel_log.values()),
                "gateways": await rt.gateway_tunnels()}

    @app.get("/v1/gateways", dependencies=operator)
    async def gateways() -> list[dict[str, Any]]:
        """Each gateway's charon as the controller sees it (issue 5): ``up``,
        ``degraded`` (VICI does not answer: its tunnels are down; retried every
        0.2 s, reconciled when it is back), ``connecting`` (not reached yet) or
        ``unmanaged`` (another controller process drives it); outages so far, the
        last outage's length and the last reconcile (tunnels kept, added, removed,
        initiated)."""
        health = getattr(rt, "gateway_health", {})
        out = []
        for name, g in rt.topo.gateways.items():
            h = health.get(name)
            out.append({"name": name, "kind": g.kind,
                        "state": h["state"] if h else "unmanaged",
                        "since": round(h["since"], 3) if h else None,
                        "error": h["error"] if h else "",
                        "outages": h["outages"] if h else 0,
                        "last_outage_s": h["last_outage_s"] if h else None,
                        "reconciles": h["reconciles"] if h else 0,
                        "last_reconcile": h["last_reconcile"] if h else None})
        return out

    @app.get("/v1/topology", dependencies=operator)
    async def topology() -> dict[str, Any]:
        topo = rt.topo
        return {
            "name": topo.name,
            "switches": [{"name": n, "dpid": s.dpid, "role": s.role,
                          "connected": s.dpid in rt.datapaths,
                          "last_reconcile": getattr(rt, "switch_reconciles", {}).get(n)}
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

    @app.get("/v1/handovers", dependencies=operator)
    async def handovers() -> list[dict[str, Any]]:
        return rt.handovers.to_json()  # type: ignore[no-any-return]

    @app.get("/v1/profiles/{nai}")
    async def profile(nai: str = NAI_PATH,
                      who: Principal = Depends(auth.operator_or_user)) -> dict[str, Any]:
        prof = rt.store.profile(nai)
        if prof is None:
            raise HTTPException(404, f"no VPN profile for {nai!r}")
        return profile_to_json(prof)

    def check_gateways(names: list[str], field: str) -> None:
        """422 unless each name is a cn_gateway of the topology."""
        for i, name in enumerate(names):
            gw = rt.topo.gateways.get(name)
            why = ("no such gateway" if gw is None else
                   None if gw.kind == "cn_gateway" else f"{name!r} is a {gw.kind}, "
                   "not a cn_gateway")
            if why:
                raise HTTPException(422, [{"field": field.format(i), "message": why}])

    def check_behind_gateway(dests: tuple[Destination, ...]) -> None:
        """422 unless each prefix lies within the networks behind its gateway (the
        topology's ``domains.<d>.prefixes``): the home agent refuses VPN information
        whose correspondent selectors reach beyond them (issue 11), so such a profile
        could never register; the operator is told at once instead."""
        for i, d in enumerate(dests):
            gw = rt.topo.gateways[d.gateway]
            behind = [ipaddress.ip_network(p) for p in rt.topo.domains[gw.domain].prefixes]
            net = ipaddress.ip_network(d.prefix)
            if not any(net.subnet_of(b) for b in behind):   # type: ignore[arg-type]
                raise HTTPException(422, [{
                    "field": f"body.destinations[{i}].prefix",
                    "message": f"not within the networks behind {d.gateway} "
                               f"({', '.join(str(b) for b in behind) or 'none'})"}])

    def store_profile(prof: VpnProfile, current: VpnProfile | None,
                      who: Principal) -> dict[str, Any]:
        """Check ``prof`` against the user's allowance (not the operator's), store it."""
        check_gateways([d.gateway for d in prof.destinations],
                       "body.destinations[{}].gateway")
        if who.role != "operator":
            refused = violations(rt.store.allowance(prof.nai) or NOTHING, current, prof)
            if refused:
                LOG.info("VPN profile change of %s refused: outside the allowance (%s)",
                         log_text(prof.nai), ", ".join(r["field"] for r in refused))
                raise HTTPException(403, refused)
        check_behind_gateway(prof.destinations)
        rt.store.put_profile(prof, now=time.time())     # options travel with it
        LOG.info("VPN profile of %s changed by the %s", log_text(prof.nai), who.role)
        hook = getattr(rt, "profile_changed", None)
        if hook is not None:
            hook(prof.nai)
        return profile_to_json(prof)

    def destinations(body: list[DestinationIn]) -> tuple[Destination, ...]:
        return tuple(Destination(d.prefix, d.gateway) for d in body)

    _put_doc = {403: {"description": "A user's change outside their allowance; `detail` "
                                     "names each field"}}

    @app.put("/v1/profiles/{nai}", responses=_put_doc)
    async def put_profile(body: ProfileIn, nai: str = NAI_PATH,
                          who: Principal = Depends(auth.operator_or_user)) -> dict[str, Any]:
        """Claim 24: the user (within their allowance) or the operator replaces the
        user's whole VPN profile; every field is required."""
        if rt.store.user(nai) is None:
            raise HTTPException(404, f"no user {nai!r}")
        prof = VpnProfile(nai, destinations(body.destinations),
                          SecuritySpec(body.security.ike, body.security.esp),
                          QosSpec(body.qos.rate_kbps, body.qos.dscp),
                          smooth_handoff=body.smooth_handoff, distribution=body.distribution)
        current = rt.store.profile(nai)
        seamless = body.seamless_handover
        if seamless is None:   # absent: what the stored profile has
            seamless = bool(current and current.seamless_handover)
        return store_profile(replace(prof, seamless_handover=seamless), current, who)

    @app.patch("/v1/profiles/{nai}", responses=_put_doc)
    async def patch_profile(body: ProfilePatch, nai: str = NAI_PATH,
                            who: Principal = Depends(auth.operator_or_user)
                            ) -> dict[str, Any]:
        """Claim 24: change only the fields sent (the user within their allowance)."""
        current = rt.store.profile(nai) if rt.store.user(nai) is not None else None
        if current is None:
            raise HTTPException(404, f"no VPN profile for {nai!r} to change: PUT a whole "
                                     "one first")
        sec, qos = body.security or SecurityPatch(), body.qos or QosPatch()
        prof = VpnProfile(
            nai,
            current.destinations if body.destinations is None else
            destinations(body.destinations),
            SecuritySpec(sec.ike or current.security.ike, sec.esp or current.security.esp),
            QosSpec(current.qos.rate_kbps if qos.rate_kbps is None else qos.rate_kbps,
                    current.qos.dscp if qos.dscp is None else qos.dscp),
            smooth_handoff=(current.smooth_handoff if body.smooth_handoff is None
                            else body.smooth_handoff),
            distribution=body.distribution or current.distribution,
            seamless_handover=(current.seamless_handover if body.seamless_handover is None
                               else body.seamless_handover))
        return store_profile(prof, current, who)

    @app.get("/v1/users/{nai}/allowance", dependencies=operator)
    async def get_allowance(nai: str = NAI_PATH) -> dict[str, Any]:
        """What the user may change in their own profile (operator only)."""
        if rt.store.user(nai) is None:
            raise HTTPException(404, f"no user {nai!r}")
        return allowance_to_json(rt.store.allowance(nai) or NOTHING)

    @app.put("/v1/users/{nai}/allowance", dependencies=operator)
    async def put_allowance(body: AllowanceIn, nai: str = NAI_PATH) -> dict[str, Any]:
        """Replace what the user may change in their own profile (operator only)."""
        if rt.store.user(nai) is None:
            raise HTTPException(404, f"no user {nai!r}")
        check_gateways(body.gateways, "body.gateways[{}]")
        allowance = canonical(Allowance(
            tuple(body.prefixes), tuple(body.gateways), body.max_rate_kbps,
            tuple(body.dscp), tuple(body.ike), tuple(body.esp), body.smooth_handoff,
            body.distribution, body.seamless_handover))
        rt.store.put_allowance(nai, allowance, now=time.time())
        LOG.info("allowance of %s changed by the operator", log_text(nai))
        return allowance_to_json(allowance)

    @app.put("/v1/users/{nai}/credential", status_code=204, response_class=Response)
    async def put_credential(body: CredentialIn, nai: str = NAI_PATH,
                             who: Principal = Depends(auth.operator_or_user)) -> Response:
        """Set the user's REST credential (operator, or the user changing their own).
        The secret travels only in this request; only its scrypt hash is stored."""
        if auth.credentials is None or rt.store.user(nai) is None:
            raise HTTPException(404, f"no user {nai!r}")
        await asyncio.to_thread(auth.credentials.set, nai, body.secret)   # scrypt: off-loop
        auth.forget(nai)
        LOG.info("REST credential of %s set by the %s", log_text(nai), who.role)
        return Response(status_code=204)

    @app.get("/v1/counters", dependencies=operator)
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

    from controller.adapters.webview import SecurityHeaders, install_web_view
    install_web_view(app, rt, auth.operator)  # GET / (page) and GET /v1/view (SSE)
    app.add_middleware(SecurityHeaders)       # CSP, nosniff, no-referrer: every response

    return app


async def serve(rt: Any, host: str, port: int) -> None:
    import uvicorn
    app = create_app(rt)
    LOG.info("REST on %s:%d; operator token in %s", host, port,
             app.state.auth.token_source or "(given by the runtime)")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    await server.serve()

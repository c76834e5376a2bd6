"""A fake runtime for REST tests: the real default topology and a real VPN store
(in memory), fake roles holding bindings whose VPN info carries real-looking secrets."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from controller.adapters.auth import Auth, UserCredentials
from controller.adapters.store import VpnStore
from controller.config import load_topology
from controller.core.handover import HandoverLog
from controller.core.vpn import QosSpec, SecuritySpec, TunnelEnd, TunnelSpec, VpnInfo

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "op-" + "0123456789abcdef" * 2
ALICE = "alice@home.example"
ALICE_SECRET = "alice-secret-" + "x1y2z3" * 3
PSK = bytes.fromhex("5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e7aaaa")


class FakeRuntime:
    def __init__(self, tmp: Path) -> None:
        self.topo = load_topology(ROOT / "topology" / "default.yaml")
        self.run_dir = tmp
        self.store = VpnStore(":memory:")
        self.store.seed(self.topo)
        vpn = VpnInfo(
            nai=ALICE, home_address="10.10.0.100", home_agent="ha", foreign_agent="fa1",
            tunnels=(TunnelSpec("alice/ha-fa1", TunnelEnd("ha", "10.0.0.1", ("10.10.0.100/32",)),
                                TunnelEnd("fa1", "10.0.0.11", ()), PSK, SecuritySpec(),
                                QosSpec(), initiator="fa1"),))
        binding = SimpleNamespace(nai=ALICE, home_address="10.10.0.100",
                                  care_of_address="10.0.0.11", foreign_agent="fa1",
                                  lifetime=300, expires=time.time() + 300, vpn_info=vpn)
        fa = SimpleNamespace(conf=SimpleNamespace(name="fa1"), visitors={ALICE: object()},
                             counters={"accepted": 1})
        self.roles: dict[str, Any] = {
            "ha": SimpleNamespace(bindings={ALICE: binding}, counters={"accepted": 1}),
            "fa:fa1": fa}
        self.tunnel_log = {("fa1", "alice/ha-fa1"): {
            "gateway": "fa1", "tunnel_id": "alice/ha-fa1", "local": "10.0.0.11",
            "remote": "10.0.0.1", "state": "up"}}
        self.datapaths: dict[int, Any] = {0x101: object()}
        self.handovers = HandoverLog()
        self.handovers.mark(ALICE, "rrq_at_fa", 1.0, {"fa": "fa1"})
        self.counters = {"flow_mods": 3, "packet_in": 5, "malformed": 0, "adverts": 9}
        self.changed: list[str] = []
        self.gateway_health = {"ha": {
            "state": "degraded", "since": time.time(), "error": "charon does not answer",
            "outages": 1, "last_outage_s": None, "reconciles": 1,
            "last_reconcile": {"kept": 1, "added": 0, "removed": 0, "initiated": 0,
                               "ms": 1.0, "at": time.time()}}}

    def foreign_agents(self) -> list[Any]:
        return [self.roles["fa:fa1"]]

    async def gateway_tunnels(self) -> dict[str, Any]:
        return {"fa1": [{"tunnel_id": "alice/ha-fa1", "state": "ESTABLISHED"}],
                "ha": {"error": "charon not running"}}

    def profile_changed(self, nai: str) -> None:
        self.changed.append(nai)


def make_auth(path: str | Path = ":memory:") -> Auth:
    creds = UserCredentials(path, n=1 << 10)      # cheap scrypt: tests only
    creds.set(ALICE, ALICE_SECRET)
    return Auth(OPERATOR, creds, token_source="test")


def secret_strings(rt: FakeRuntime) -> dict[str, str]:
    """Every secret the controller holds, in the textual forms a leak could take."""
    import base64
    out = {"operator token": OPERATOR, "user credential": ALICE_SECRET}
    keys = {"psk": PSK}
    for nai in rt.store.users():
        user = rt.store.user(nai)
        assert user is not None
        keys[f"mn-aaa key of {nai}"] = user.mn_aaa_key
    for name, raw in keys.items():
        out[f"{name} (hex)"] = raw.hex()
        out[f"{name} (HEX)"] = raw.hex().upper()
        out[f"{name} (base64)"] = base64.b64encode(raw).decode()
        out[f"{name} (repr)"] = repr(raw)[2:-1]
    return out

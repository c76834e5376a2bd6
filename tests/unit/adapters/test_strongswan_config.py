"""strongSwan adapter, without charon: what a tunnel side becomes in VICI, and which
tunnels a secondary one re-asserts (kernel-libipsec).  Against real charons:
``tests/integration/test_strongswan.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from controller.adapters import strongswan
from controller.adapters.strongswan import driver
from controller.adapters.strongswan import (SECONDARY_POLICY_PRIORITY, ChildSaState,
                                            StrongSwanGateway, TunnelState, connection_for)
from controller.core.vpn import TunnelEnd, TunnelSpec

HOA, CNNET = "10.10.0.100/32", "10.30.0.0/24"
FWD = TunnelSpec("alice/fa1-fa2", TunnelEnd("fa1", "10.0.0.11", (CNNET,)),
                 TunnelEnd("fa2", "10.0.0.12", (HOA,)), psk=b"k" * 32, initiator="fa2")


def test_ordinary_side_has_no_fixed_priority() -> None:
    conn = connection_for(FWD.side_for("fa1"))["alice/fa1-fa2"]
    child = conn["children"]["alice/fa1-fa2"]
    assert "priority" not in child and "reqid" not in child
    assert child["local_ts"] == [CNNET] and child["remote_ts"] == [HOA]
    assert conn["local_addrs"] == ["10.0.0.11"] and conn["remote_addrs"] == ["10.0.0.12"]


def test_secondary_side_gets_the_lowest_policy_priority() -> None:
    side = replace(FWD.side_for("fa2"), secondary=True)
    child = connection_for(side)["alice/fa1-fa2"]["children"]["alice/fa1-fa2"]
    assert child["priority"] == SECONDARY_POLICY_PRIORITY
    # above every priority charon computes (kernel-netlink: <= 3 x 200,000), and no
    # reqid / mark: equal selectors must keep sharing one reqid (kernel-netlink refuses
    # a policy whose selectors another reqid holds)
    assert SECONDARY_POLICY_PRIORITY > 600_000
    assert not {"reqid", "mark_in", "mark_out"} & set(child)
    # the secondary flag changes nothing else
    plain = connection_for(FWD.side_for("fa2"))["alice/fa1-fa2"]
    plain["children"]["alice/fa1-fa2"]["priority"] = SECONDARY_POLICY_PRIORITY
    assert connection_for(side)["alice/fa1-fa2"] == plain


def _child(uid: str, local: str, remote: str, state: str = "INSTALLED") -> ChildSaState:
    return ChildSaState(name="c", state=state, spi_in="1", spi_out="2", local_ts=(local,),
                        remote_ts=(remote,), bytes_in=0, bytes_out=0, packets_in=0,
                        packets_out=0, unique_id=uid)


def _tunnel(tid: str, *children: ChildSaState) -> TunnelState:
    return TunnelState(tid, "ESTABLISHED", "10.0.0.12", "10.0.0.1", children)


class _Recorder:
    """Stands in for the VICI session: records rekeys; list-sas answers from a script."""

    def __init__(self, views: list[list[TunnelState]]) -> None:
        self.views = views
        self.rekeyed: list[dict[str, Any]] = []

    def rekey(self, msg: dict[str, Any]) -> dict[str, str]:
        self.rekeyed.append(msg)
        return {"success": "yes", "matches": "1"}


def _gateway(monkeypatch: pytest.MonkeyPatch, views: list[list[TunnelState]],
             libipsec: bool = True) -> tuple[StrongSwanGateway, _Recorder]:
    gw = StrongSwanGateway("fa2", "/nonexistent/charon.vici")
    rec = _Recorder(views)
    gw._libipsec = libipsec
    monkeypatch.setattr(gw, "_call", lambda fn, *a: fn(rec, *a))
    monkeypatch.setattr(gw, "tunnels",
                        lambda: rec.views.pop(0) if len(rec.views) > 1 else rec.views[0])
    monkeypatch.setattr(driver.time, "sleep", lambda _s: None)
    return gw, rec


def test_secondary_rekeys_the_tunnels_with_its_selectors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fwd = _tunnel("alice/fa1-fa2", _child("7", HOA, CNNET))
    ha = _tunnel("alice/ha-fa2", _child("3", HOA, CNNET))
    bob = _tunnel("bob/ha-fa2", _child("4", "10.10.0.101/32", CNNET))
    other_dir = _tunnel("carol/fa2-fa3", _child("5", CNNET, HOA))   # reversed: not equal
    before = [fwd, ha, bob, other_dir]
    during = [fwd, _tunnel("alice/ha-fa2", _child("3", HOA, CNNET, "REKEYING")), bob,
              other_dir]
    after = [fwd, _tunnel("alice/ha-fa2", _child("3", HOA, CNNET, "REKEYED"),
                          _child("8", HOA, CNNET)), bob, other_dir]
    gw, rec = _gateway(monkeypatch, [before, during, after])
    assert gw._reassert_primaries("alice/fa1-fa2") == ["alice/ha-fa2"]
    assert rec.rekeyed == [{"child-id": "3"}]
    assert rec.views == [after]          # it waited for the new CHILD_SA


def test_nothing_to_reassert_without_libipsec(monkeypatch: pytest.MonkeyPatch) -> None:
    fwd = _tunnel("alice/fa1-fa2", _child("7", HOA, CNNET))
    ha = _tunnel("alice/ha-fa2", _child("3", HOA, CNNET))
    gw, rec = _gateway(monkeypatch, [[fwd, ha]], libipsec=False)
    assert gw._reassert_primaries("alice/fa1-fa2") == [] and rec.rekeyed == []


def test_gives_up_waiting_but_does_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    fwd = _tunnel("alice/fa1-fa2", _child("7", HOA, CNNET))
    ha = _tunnel("alice/ha-fa2", _child("3", HOA, CNNET))
    gw, rec = _gateway(monkeypatch, [[fwd, ha]])
    clock = iter(range(100))
    monkeypatch.setattr(driver.time, "monotonic", lambda: float(next(clock)))
    assert gw._reassert_primaries("alice/fa1-fa2", timeout=3.0) == ["alice/ha-fa2"]
    assert rec.rekeyed == [{"child-id": "3"}]


def test_remote_groups_split_the_children() -> None:
    side = replace(FWD.side_for("fa2"), secondary=True)
    side = replace(side, remote=TunnelEnd("fa1", "10.0.0.11", (CNNET, "10.32.0.0/24")))
    children = connection_for(side, remote_groups=[[CNNET], ["10.32.0.0/24"]])[
        "alice/fa1-fa2"]["children"]
    assert list(children) == ["alice/fa1-fa2", "alice/fa1-fa2#2"]
    assert [c["remote_ts"] for c in children.values()] == [[CNNET], ["10.32.0.0/24"]]
    assert all(c["local_ts"] == [HOA] and c["priority"] == SECONDARY_POLICY_PRIORITY
               for c in children.values())
    assert list(connection_for(side)["alice/fa1-fa2"]["children"]) == ["alice/fa1-fa2"]


def test_secondary_grouped_like_the_primaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """One CHILD_SA per primary (equal selector lists share a reqid), the rest apart."""
    side = replace(FWD.side_for("fa2"), secondary=True,
                   remote=TunnelEnd("fa1", "10.0.0.11",
                                    ("10.30.0.5/24", "10.32.0.0/24", "10.33.0.0/24")))
    ha = _tunnel("alice/ha-fa2", _child("3", HOA, CNNET))
    ro = _tunnel("alice/cngw2-fa2", _child("4", HOA, "10.32.0.0/24"))
    bob = _tunnel("bob/ha-fa2", _child("5", "10.10.0.101/32", CNNET))
    gw, _rec = _gateway(monkeypatch, [[ha, ro, bob]])
    assert gw._primary_groups(side) == [(CNNET,), ("10.32.0.0/24",), ("10.33.0.0/24",)]
    only_ha = replace(side, remote=TunnelEnd("fa1", "10.0.0.11", (CNNET,)))
    assert gw._primary_groups(only_ha) is None          # one group: one CHILD_SA


# ------------------------------------------------------------------ strongswan.conf


def _charon_settings(conf: str) -> dict[str, str]:
    """The ``key = value`` lines directly in the ``charon { }`` section."""
    out: dict[str, str] = {}
    depth = 0
    for line in conf.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith("{"):
            depth += 1
        elif line == "}":
            depth -= 1
        elif depth == 1 and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_charon_dos_protection_on_with_limits() -> None:
    """Cookies, a per-address cap and global caps on half-open IKE_SAs: on, and loose
    enough for our own bursts (docs/strongswan.md explains the numbers)."""
    from pathlib import Path
    conf = _charon_settings(strongswan.strongswan_conf(
        "ha", Path("/r/gw/ha/charon.vici"), Path("/r/gw/ha/charon.log"),
        strongswan.charon_plugins(False)))
    assert conf["dos_protection"] == "yes"
    limits = {k: int(conf[k]) for k in ("cookie_threshold", "cookie_threshold_ip",
                                        "block_threshold", "init_limit_half_open",
                                        "init_limit_job_load")}
    assert limits == strongswan.DOS_LIMITS and all(v > 0 for v in limits.values())
    # cookies (stateless, one round trip) before anyone is refused; a per-address
    # cap below the global one; tens of tunnels from one gateway at once still pass
    assert limits["cookie_threshold_ip"] < limits["block_threshold"]
    assert limits["cookie_threshold"] < limits["init_limit_half_open"]
    assert limits["block_threshold"] >= 40
    assert float(conf["half_open_timeout"]) <= 10   # spoofed half-open SAs go soon


def test_default_esp_proposal_has_pfs_everywhere() -> None:
    """The default ESP proposal, and every profile in the shipped topologies and
    scenarios, carries a DH group that the REST API accepts and a loaded plugin makes."""
    from pathlib import Path

    import yaml

    from controller.adapters.rest import ESP_PROPOSALS
    from controller.config import SecurityConf
    from controller.core.vpn import SecuritySpec

    def has_dh(esp: str) -> bool:
        return any(part.startswith(("ecp", "modp", "x25519", "curve25519"))
                   for part in esp.split("-"))

    assert has_dh(SecuritySpec().esp) and SecuritySpec().esp in ESP_PROPOSALS
    assert SecurityConf().esp == SecuritySpec().esp
    assert "openssl" in strongswan.charon_plugins(False).split()   # ECP and MODP groups
    root = Path(__file__).resolve().parents[3]
    seen = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "esp" in node and isinstance(node["esp"], str):
                seen.append((where, node["esp"]))
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    for path in [*root.glob("topology/*.yaml"), *root.glob("scenarios/*.yaml")]:
        walk(yaml.safe_load(path.read_text()), path.name)
    assert len(seen) >= 10
    assert [w for w, esp in seen if not has_dh(esp) or esp not in ESP_PROPOSALS] == []

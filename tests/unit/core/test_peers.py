"""controller/core/peers.py alone (pure): the per-command sender rules of issue 11."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from controller.config import load_topology
from controller.core import peers

from tests.unit.proto.test_diameter_codec import AMR, HAR

ROOT = Path(__file__).resolve().parents[3]
TABLE = peers.build_peer_table(load_topology(ROOT / "topology" / "two-domains.yaml"))
AMR_FA3 = replace(AMR, origin_host="fa3.b.example", origin_realm="b.example",
                  foreign_agent="fa3", originating_foreign_aaa=None)
HAR_OK = replace(HAR, origin_host="aaah.home.example", origin_realm="home.example")


def _gw_of_b() -> str:
    return sorted(p.name for p in TABLE.listeners["aaaf:domain-b"].values())[0]


def test_legitimate_senders_pass() -> None:
    fa = _gw_of_b()
    amr = replace(AMR_FA3, origin_host=f"{fa}.b.example", foreign_agent=fa)
    assert peers.judge(TABLE, "aaaf:domain-b", amr, f"{fa}.b.example", "b.example") is None
    relayed = replace(amr, originating_foreign_aaa=("b.example", "aaaf.b.example"))
    assert peers.judge(TABLE, "aaah", relayed, "AAAF.b.example", "B.example") is None
    assert peers.judge(TABLE, "ha", HAR_OK, "aaah.home.example", "home.example") is None


@pytest.mark.parametrize("role, request_, host, realm, code", [
    ("ha", HAR_OK, "aaaf.a.example", "a.example", peers.UNKNOWN_PEER),   # not in table
    ("ha", AMR, "aaah.home.example", "home.example", peers.AUTHORIZATION_REJECTED),
    ("ha", HAR_OK, "aaah.home.example", "a.example", peers.UNKNOWN_PEER),  # wrong realm
    ("aaah", HAR_OK, "aaaf.a.example", "a.example", peers.AUTHORIZATION_REJECTED),
    ("aaah", replace(AMR, originating_foreign_aaa=("a.example", "aaaf.a.example"),
                     foreign_agent="fa3", origin_host="fa3.a.example",
                     origin_realm="a.example"),
     "aaaf.a.example", "a.example", peers.AUTHORIZATION_REJECTED),     # fa3 is B's
    ("cngw:cngw", HAR_OK, "aaah.home.example", "home.example", peers.UNKNOWN_PEER),
])
def test_refusals(role: str, request_: object, host: str, realm: str, code: int) -> None:
    refusal = peers.judge(TABLE, role, request_, host, realm)
    assert refusal is not None and refusal.result_code == code


def test_shown_escapes_and_cuts() -> None:
    assert peers.shown("a\nb") == "'a\\nb'"
    assert peers.shown("x" * 100).endswith("...") and len(peers.shown("x" * 100)) < 80


# ------------------------------------------------------------------ the listener's policy


def _policy(listener: str, local: frozenset[str] = frozenset(),
            own: tuple[str, int] | None = None) -> peers.PeerPolicy:
    return peers.peer_policy(TABLE, listener, local,
                             (lambda a, p: (a, p) == own) if own else None)


def test_own_connection_admitted_whatever_the_listeners_address() -> None:
    """A listener on a public address (docs/topology.md's 10.0.0.2 example) still takes
    its own process's links: their source is that address, not loopback, and not in
    the peer's configured addresses; the connection being ours proves it."""
    policy = _policy("aaaf:domain-a", frozenset({"fa:fa1"}), own=("192.0.2.2", 40000))
    assert policy("fa1.a.example", "a.example", "192.0.2.2", False, port=40000) is None
    # the same address on another port (someone else's socket) is not ours
    refusal = policy("fa1.a.example", "a.example", "192.0.2.2", False, port=40001)
    assert refusal is not None and refusal.result_code == peers.UNKNOWN_PEER


@pytest.mark.parametrize("same_user, admitted", [(True, True), (False, False),
                                                 (None, False)])
def test_peer_of_another_process_on_loopback_must_be_our_user(
        same_user: bool | None, admitted: bool) -> None:
    """A split deployment's peer (another controller process) on loopback without TLS:
    admitted only when its socket belongs to this controller's user; another user's
    process (or one the kernel does not list) announcing fa1's identity is refused."""
    policy = _policy("aaaf:domain-a")          # fa1 runs in another process
    refusal = policy("fa1.a.example", "a.example", "127.0.0.1", False, port=40000,
                     same_user=same_user)
    assert (refusal is None) is admitted
    # a verified certificate proves the name whatever the owner
    assert policy("fa1.a.example", "a.example", "127.0.0.1", True, port=40000,
                  same_user=False) is None

"""Realms joined through a Diameter relay (issue 17): the topology's ``diameter_relays``,
the home AAA's peer table with a relay in it, and what a request that came through the
relay must show (pure; docs/security.md "Relay between realms")."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.config import ConfigError, parse_topology
from controller.core import peers

from tests.unit.proto.test_diameter_codec import AMR, HAR

ROOT = Path(__file__).resolve().parents[3]
RELAY = {"host": "dra.transit.example", "realm": "transit.example",
         "listen": "127.0.0.1:3968", "carries": ["domain-b"]}


def two_domains(**relays: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "topology" / "two-domains.yaml").read_text())
    data["diameter_relays"] = relays or {"dra": dict(RELAY)}
    return data


TOPO = parse_topology(two_domains(), "t.yaml")
TABLE = peers.build_peer_table(TOPO)
FA_B = TOPO.foreign_agents_of("domain-b")[0].name
FA_A = TOPO.foreign_agents_of("domain-a")[0].name
#: an AMR of domain B's FA as the AAAF forwards it and the relay passes it on
RELAYED = replace(AMR, origin_host=f"{FA_B}.b.example", origin_realm="b.example",
                  foreign_agent=FA_B,
                  originating_foreign_aaa=("b.example", "aaaf.b.example"),
                  route_record=(f"{FA_B}.b.example", "aaaf.b.example"))


def judge(request: object, host: str = "dra.transit.example",
          realm: str = "transit.example") -> peers.Refusal | None:
    return peers.judge(TABLE, "aaah", request, host, realm)


# ------------------------------------------------------------------ the schema


def test_relays_parse() -> None:
    relay = TOPO.diameter_relays["dra"]
    assert (relay.host, relay.realm, relay.listen_host, relay.listen_port) == (
        "dra.transit.example", "transit.example", "127.0.0.1", 3968)
    assert relay.carries == ("domain-b",)
    assert TOPO.relay_of("domain-b") is relay
    assert TOPO.relay_of("domain-a") is None
    assert parse_topology(yaml.safe_load(
        (ROOT / "topology" / "two-domains.yaml").read_text()), "t").diameter_relays == {}


@pytest.mark.parametrize("change, where", [
    ({"carries": ["home"]}, "carries[0]"),              # the home domain
    ({"carries": ["nowhere"]}, "carries[0]"),
    ({"carries": []}, "carries"),
    ({"host": "aaah.home.example"}, "host"),            # one of ours
    ({"listen": "127.0.0.1:0"}, "listen"),
    ({"peer_addresses": ["0.0.0.0"]}, "peer_addresses"),
    ({"extra": 1}, "extra"),
])
def test_bad_relays_are_refused(change: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"diameter_relays.dra.{where}")):
        parse_topology(two_domains(dra={**RELAY, **change}), "t.yaml")


def test_a_domain_is_carried_by_one_relay() -> None:
    with pytest.raises(ConfigError, match="carried by diameter_relays.dra"):
        parse_topology(two_domains(dra=dict(RELAY), dra2={**RELAY, "host": "x.example"}),
                       "t.yaml")


# ------------------------------------------------------------------ the peer table


def test_home_aaa_admits_the_relay_not_the_domains_behind_it() -> None:
    assert peers.admit(TABLE, "aaah", "DRA.transit.example.", "transit.example",
                       "127.0.0.1", False) is None
    relay = TABLE.peer("aaah", "dra.transit.example")
    assert relay is not None and relay.role == "relay:dra"
    # domain B's AAA is reached through the relay only; domain A's still directly
    assert peers.admit(TABLE, "aaah", "aaaf.b.example", "b.example", "127.0.0.1",
                       False) is not None
    assert peers.admit(TABLE, "aaah", "aaaf.a.example", "a.example", "127.0.0.1",
                       False) is None
    # the relay is nobody's peer but the home AAA's
    assert peers.admit(TABLE, "ha", "dra.transit.example", "transit.example",
                       "127.0.0.1", False) is not None
    assert peers.admit(TABLE, "aaah", "dra.transit.example", "b.example", "127.0.0.1",
                       False) is not None                       # its own realm only


# ------------------------------------------------------------------ relayed requests


def test_relayed_amr_of_a_carried_domain_passes() -> None:
    assert judge(RELAYED) is None
    # what the AAAF's FA added before is not the relay's business
    assert judge(replace(RELAYED, route_record=("aaaf.b.example",))) is None


@pytest.mark.parametrize("request_, why", [
    (replace(RELAYED, route_record=()), "Route-Record"),
    (replace(RELAYED, route_record=(f"{FA_B}.b.example",)), "Route-Record"),
    (replace(RELAYED, route_record=("aaaf.b.example", "aaaf.a.example")), "Route-Record"),
    (replace(RELAYED, originating_foreign_aaa=None), "MIP-Originating-Foreign-AAA"),
    # domain A is not carried by this relay: the relay cannot speak for its AAA
    (replace(RELAYED, origin_host=f"{FA_A}.a.example", origin_realm="a.example",
             foreign_agent=FA_A, originating_foreign_aaa=("a.example", "aaaf.a.example"),
             route_record=("aaaf.a.example",)), "not behind"),
    (replace(RELAYED, foreign_agent=FA_A, origin_host=f"{FA_A}.b.example"),
     "outside"),                                             # an FA of another domain
    (replace(RELAYED, origin_host="other.b.example"), "Origin-Host"),
    (replace(RELAYED, origin_realm="a.example"), "Origin-Host"),
    (HAR, "not accepted"),
])
def test_relayed_refusals(request_: object, why: str) -> None:
    refusal = judge(request_)
    assert refusal is not None and refusal.result_code == peers.AUTHORIZATION_REJECTED
    assert why in refusal.reason


def test_relay_in_another_realm_than_configured_is_unknown() -> None:
    refusal = judge(RELAYED, realm="b.example")
    assert refusal is not None and refusal.result_code == peers.UNKNOWN_PEER


def test_direct_amr_of_a_carried_domain_is_refused() -> None:
    """Domain B's AAA connecting directly is not in the table any more."""
    refusal = judge(RELAYED, "aaaf.b.example", "b.example")
    assert refusal is not None and refusal.result_code == peers.UNKNOWN_PEER


def test_foreign_aaa_records_the_fa_it_proxies_for() -> None:
    """The AAAF forwards the FA's AMR as a proxy: Route-Record names the FA (RFC 6733
    §6.1.9); the relay then appends the AAAF, which the home AAA checks."""
    from tests.unit.harness import MobileNode, Walk
    walk = Walk()
    MobileNode(walk).register("fa1")
    amrs = [d.msg for d in walk.diameter(0) if d.name == "AMR"]
    assert [a.route_record for a in amrs] == [(), ("fa1.a.example",)]

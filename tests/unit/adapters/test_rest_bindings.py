"""REST ``GET /v1/bindings``: each binding lists the earlier one the HA keeps beside it
during a seamless move (simultaneous bindings, issue 14), never a secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.core.simultaneous import SimultaneousBindings
from tests.unit.rest_fakes import ALICE, OPERATOR, PSK, FakeRuntime

OP = {"Authorization": f"Bearer {OPERATOR}"}


@pytest.fixture()
def rt(tmp_path: Path) -> FakeRuntime:
    return FakeRuntime(tmp_path)


def test_bindings_show_the_simultaneous_one(rt: FakeRuntime, client: TestClient) -> None:
    ha = rt.roles["ha"]
    old = ha.bindings[ALICE].vpn_info.tunnels[0]
    ha.simultaneous = SimultaneousBindings()
    now = time.time()
    ha.simultaneous.keep(now, ALICE, "10.0.0.11", "fa1", [old], {"alice/ha-fa2"})
    r = client.get("/v1/bindings", headers=OP)
    assert r.status_code == 200, r.text
    [b] = r.json()
    [e] = b["simultaneous"]
    assert e["care_of_address"] == "10.0.0.11" and e["foreign_agent"] == "fa1"
    assert e["tunnels"] == ["alice/ha-fa1"] and e["awaiting"] == ["alice/ha-fa2"]
    assert 0 < e["expires_in"] <= 1.0
    assert PSK.hex() not in r.text


def test_without_one_the_list_is_empty(rt: FakeRuntime, client: TestClient) -> None:
    r = client.get("/v1/bindings", headers=OP)
    assert r.status_code == 200 and r.json()[0]["simultaneous"] == []

"""Fixtures the REST tests share (each test module gives its own ``rt``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from controller.adapters.rest import create_app
from tests.unit.rest_fakes import make_auth


@pytest.fixture()
def client(rt: Any) -> TestClient:
    """The REST app over the module's ``rt`` (a ``FakeRuntime``), operator and users
    from ``rest_fakes.make_auth``."""
    return TestClient(create_app(rt, auth=make_auth()), raise_server_exceptions=False)

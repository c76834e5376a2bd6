"""Schemathesis against the REST API's own OpenAPI schema, in process (ASGI, no network).

Bounded: at most 50 examples per operation, both valid and invalid (negative) data,
with the operator token, with a user's credential and with none.  Asserted: never a
5xx, status codes, content types, headers and bodies conform to the schema, invalid
data is rejected, and authentication is enforced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

from controller.adapters.rest import create_app  # noqa: E402

from tests.unit.rest_fakes import ALICE, ALICE_SECRET, OPERATOR, FakeRuntime, make_auth  # noqa: E402

_RT = FakeRuntime(Path("/nonexistent-run-dir"))
APP = create_app(_RT, auth=make_auth())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance, checks.negative_data_rejection]

AUTHS = {"operator": {"Authorization": f"Bearer {OPERATOR}"},
         "user": {"Authorization": f"Bearer {ALICE_SECRET}"},
         "none": {}}


@pytest.mark.parametrize("who", sorted(AUTHS))
@schema.include(path_regex=r"^/v1/").parametrize()
@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms(case: Any, who: str) -> None:
    auth = APP.state.auth                   # each case starts from the same credentials
    auth.credentials.set(ALICE, ALICE_SECRET)
    auth.forget(ALICE)
    auth._failures.clear()
    headers = dict(AUTHS[who])
    if case.headers:
        headers = {**case.headers, **headers} if who != "none" else dict(case.headers)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
    if who == "none":
        assert response.status_code in (400, 401, 404, 405, 413, 422, 429), response.text


def test_schema_declares_bearer_auth() -> None:
    spec = APP.openapi()
    assert "bearer" in spec["components"]["securitySchemes"]
    put = spec["paths"]["/v1/profiles/{nai}"]["put"]
    assert {"401", "413", "422"} <= set(put["responses"])
    # issue 11: PATCH merges, PUT replaces whole (every section required), the allowance
    patch = spec["paths"]["/v1/profiles/{nai}"]["patch"]
    assert {"401", "403", "404", "422"} <= set(patch["responses"]) and "403" in put["responses"]
    schemas = spec["components"]["schemas"]
    assert set(schemas["ProfileIn"]["required"]) == {
        "destinations", "security", "qos", "smooth_handoff", "distribution"}
    assert "required" not in schemas["ProfilePatch"]
    assert {"get", "put"} <= set(spec["paths"]["/v1/users/{nai}/allowance"])

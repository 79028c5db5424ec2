"""Schemathesis against the real server: requests generated from /openapi.json (valid and
invalid ones) never meet a 5xx, and every answer has a status and a shape the document
declares."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.settings import load_settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    # Long simulated operations: generated jobs wait instead of rendering videos.
    env = {**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_SIM_SECONDS": "600"}
    with server_thread(load_settings(env=env)) as running:
        yield schemathesis.openapi.from_url(f"{running.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# /api/events never ends, so it is left to the SSE tests.
@schema.exclude(path="/api/events").parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_document(case):
    if case.path == "/api/logs" and case.query:
        case.query.pop("follow", None)  # following the log never ends either
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    )

"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis, on Hypothesis).

Every operation is called with generated parameters and bodies, valid and not, by a caller with an
admin token: the answer must never be a 5xx, must be a status the document lists for it, with the
content type and (for JSON) the shape it documents. A real run and a real repository event exist,
so generated ids sometimes name them.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.core.parameters import ParameterLocation
from service_env import TOKENS, make_config, stack

from webhooks.app import create_app

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}
WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello:
        input:
          name: { type: string, default: world }
        flow:
          greet: { type: script, script: 'echo "hello {{ input.name }}"' }
      gate:
        flow:
          ask: { type: approval, message: "go?" }
    """
}


@pytest.fixture
def api_schema(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config, workers=1) as service:
        app = create_app(config, service)
        app.test_client().post("/api/workspaces/local/tasks/gate/execute", json={}, headers=AUTH)
        yield schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=AUTH)


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.hook
def filter_path_parameters(context, path_parameters) -> bool:
    """A path parameter with a raw `?` or `#` cannot be sent as written: an HTTP client encodes it (then the server
    sees it in the path, and other cases cover that) or makes it a query; the test client refuses it instead."""
    return not any(mark in str(value) for value in (path_parameters or {}).values() for mark in "?#")


@schema.parametrize()
@settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate]
)
def test_every_operation_answers_as_documented_and_never_5xx(case):
    # Not checked: that every schema-valid request is accepted. Some rules cannot be written in the
    # schema (pr needs workspace; a forge's event header), and those answer 400 with the reason.
    excluded = [schemathesis.checks.positive_data_acceptance]
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers is not None and headers.mode.is_negative:
        # the case dropped or mangled the Authorization header, and the admin token sent here replaces it: the
        # request is no longer invalid there, so its acceptance proves nothing (other cases check the rest)
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(headers=AUTH, excluded_checks=excluded)

"""Schemathesis against the spec's Emails operations, on a real server process.

Bounded as for Messages: a few dozen generated cases per operation, no server error and no
response that breaks the spec's schemas.
"""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.acceptance.server import ServerProcess

SPEC = Path(__file__).parents[2] / "src" / "opencomms" / "spec" / "twilio_comms_v1.yaml"
schema = schemathesis.openapi.from_path(SPEC).include(path_regex="^/Emails")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def live(server: ServerProcess) -> ServerProcess:
    return server


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_emails_operations_conform(case: schemathesis.Case, live: ServerProcess) -> None:
    case.call_and_validate(base_url=live.base_url + "/v1", auth=live.auth, checks=CHECKS)

"""Schemathesis against OpenComms' own extensions, as the served contract documents them.

The same bounded run as for Twilio's operations: no server error, no answer that breaks the
documented schemas, whatever the generated parameters and bodies.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from opencomms.api import spec
from tests.acceptance.server import ServerProcess

schema = schemathesis.openapi.from_dict(spec.served_document()).include(path_regex="^/Sandbox")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def live(server: ServerProcess) -> ServerProcess:
    return server


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_sandbox_extensions_conform(case: schemathesis.Case, live: ServerProcess) -> None:
    case.call_and_validate(base_url=live.base_url + "/v1", auth=live.auth, checks=CHECKS)

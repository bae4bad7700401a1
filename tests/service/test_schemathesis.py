"""Property-based tests from the service's own OpenAPI schema (schemathesis against the live server):
no 5xx, and every response conforms to the documented status codes, content types and schemas.

Positive cases also check that every request the schema calls valid is accepted, so the schema
built from the bundle is as precise as the bundle's own checks. Each operation gets 30 examples.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .said import assert_said_in_both

pytestmark = pytest.mark.slow  # hundreds of generated requests

OPERATIONS = [("/v1/score", "POST"), ("/v1/price", "POST"), ("/v1/model", "GET"), ("/health", "GET")]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server}/openapi.json")


def test_schema_lists_every_operation(api_schema):
    found = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("path, method", OPERATIONS)
def test_api_conforms_to_its_schema(api_schema, path, method):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate()

    check()


@pytest.mark.parametrize("path", ["/v1/score", "/v1/price"])
def test_invalid_requests_are_rejected_without_5xx(api_schema, path):
    from schemathesis.generation import GenerationMode

    operation = api_schema[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call_and_validate()  # includes: negative data must be rejected with a 4xx
        assert response.status_code in (413, 422), response.text
        for item in response.json()["detail"]:  # every reason in Chinese as well as English
            assert_said_in_both(item)

    check()

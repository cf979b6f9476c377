"""Property-based API test (issue 14): schemathesis runs every operation of the app's own OpenAPI schema,
in-process (ASGI, no network), on SQLite and PostgreSQL, with a partner token and the hooks token, and
checks that no answer is a server error and that every answer matches the status codes and the response
schemas the document declares. A bounded number of examples keeps it to a few seconds per store."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from orchestrator.app.bootstrap import bootstrap
from store.admin import add_partner
from web.app import create_app

HOOKS_TOKEN = "hooks-token-0123456789abcdef"
EXAMPLES = 40  # per operation: a few seconds per store
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def partner_token(engine) -> str:
    # A territory-scoped partner, so generated events also go through the territory checks.
    return add_partner(engine, "bge-35", ["creation", "first_hire", "offer_enrolled"], ["departements:35"],
                       now=dt.datetime.now(dt.UTC))


def test_every_operation_answers_as_documented(settings, engine, partner_token):
    # Each operation's cases come from its own strategy (APIOperation.as_strategy), run by Hypothesis here:
    # schemathesis.pytest.from_fixture would be the shorter way, but it does not run under pytest 9.
    settings.hooks_token = HOOKS_TOKEN
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(bootstrap(settings)))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6  # the partner API (2), the provider hooks (3), health
    headers = {"Authorization": f"Bearer {partner_token}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings_(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
        def run(case):
            if case.path.startswith("/hooks/"):
                case.query = {**(case.query or {}), "token": HOOKS_TOKEN}  # reach the parsers, not only the 403
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()


def test_the_schema_declares_every_operation_and_its_errors(settings, engine):
    document = create_app(bootstrap(settings)).openapi()
    post = document["paths"]["/api/v1/events"]["post"]
    assert {"200", "401", "413", "422"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["events"]["maxItems"] == 1000
    assert "external_id" in body["properties"]["events"]["items"]["properties"]
    assert {"401", "422"} <= set(document["paths"]["/api/v1/events"]["get"]["responses"])
    for path in ("/hooks/sms/replies", "/hooks/sms/receipts", "/hooks/email/bounces"):
        assert {"400", "403", "404", "413"} <= set(document["paths"][path]["post"]["responses"])

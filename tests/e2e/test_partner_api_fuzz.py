"""Schemathesis against the partner APIs' own OpenAPI documents, over real HTTP on the local stack.

Every operation of schemas/manufacturer-api.openapi.json and schemas/finance-api.openapi.json gets
generated requests, valid and invalid (schemathesis's positive and negative modes), sent with a key
of the right scope. Schemathesis's own checks run on each answer (no 5xx, a documented status,
the documented content type and JSON schema, invalid input refused), and ours on top: no stack
trace, no risky input echoed back. TRACEKIT_FUZZ_EXAMPLES sets the count per operation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chalicelib import bootstrap
from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from chalicelib.timeutil import utc_now
from devstack.aws import load_resources, physical_name
from devstack.stack import REGION
from tests.journeys.test_fuzz import assert_no_trace_or_raw_echo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("TRACEKIT_FUZZ_EXAMPLES", "150"))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def keys(stack) -> dict[str, str]:
    """One key per scope, created in the stack's own key table as the CLI would."""
    table = physical_name("local", "ApiKeysTable", load_resources()["ApiKeysTable"])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "local")
        env.setenv("AWS_SECRET_ACCESS_KEY", "local")
        store = bootstrap.key_store(table, REGION, stack["moto"])
        return {scope: create_api_key(scope, "schemathesis", store, utc_now())[1] for scope in Scope}


def no_trace_and_no_echo(ctx, response, case) -> None:
    """A schemathesis check of our own: nothing internal shown, nothing risky echoed unescaped."""
    text = response.content.decode("utf-8", errors="replace") if response.content else ""
    sent = [case.body] if isinstance(case.body, str) else []
    for part in (case.query or {}, case.path_parameters or {}, case.body if isinstance(case.body, dict) else {}):
        sent += [v for v in part.values() if isinstance(v, str)]
    assert_no_trace_or_raw_echo(text, sent)


def api(name: str):
    schema = schemathesis.openapi.from_path(ROOT / "schemas" / f"{name}-api.openapi.json")
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
    # Not TRACE, OPTIONS or QUERY: `chalice local` serves through Python's http.server, which
    # answers those with 501 before the app sees them (API Gateway answers them itself).
    schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "patch"}
    return schema


# Operations whose schema-valid requests may rightly be refused with 400 for a rule JSON Schema
# cannot state (each rule is in the document's prose, and its 400 is tested in the integration
# tests): a cursor must be one the API gave out; a dispatch time must lie between the order's
# release and now; a period's end must follow its start, by at most 366 days.
BEYOND_A_SCHEMA = {
    "GET /manufacturer/fulfilment-orders",
    "GET /manufacturer/cancellations",
    "GET /manufacturer/amendments",
    "POST /manufacturer/fulfilment-orders/{fulfilment_id}/dispatch",
    "GET /finance/reconciliation",
    "GET /finance/kit-maker-statement",
}
MANUFACTURER = api("manufacturer")
FINANCE = api("finance")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def call_and_check(case, stack, token: str) -> None:
    # A query value of [] or {} is never sent (requests drops it), so the request would not carry
    # the invalid part schemathesis generated: such cases prove nothing and are set aside.
    assume(not any(value in ([], {}) for value in (case.query or {}).values()))
    accept = XLSX if (case.query or {}).get("format") == "xlsx" else "*/*"
    headers = {"Accept": accept}
    if "Authorization" in (case.headers or {}):  # a generated case without it must get 401
        headers["Authorization"] = f"Bearer {token}"
    case.call_and_validate(
        base_url=stack["app"],
        headers=headers,
        additional_checks=[no_trace_and_no_echo],
        excluded_checks=[positive_data_acceptance] if case.operation.label in BEYOND_A_SCHEMA else [],
    )


@MANUFACTURER.parametrize()
@FUZZ
def test_the_manufacturer_api_survives_its_own_document(case, stack, keys):
    call_and_check(case, stack, keys[Scope.MANUFACTURER])


@FINANCE.parametrize()
@FUZZ
def test_the_finance_api_survives_its_own_document(case, stack, keys):
    call_and_check(case, stack, keys[Scope.FINANCE])


def test_the_documents_are_the_ones_served(stack, keys):
    """The fuzzed documents are the ones the running app hands its callers."""
    import urllib.request

    for scope, name in ((Scope.MANUFACTURER, "manufacturer"), (Scope.FINANCE, "finance")):
        request = urllib.request.Request(
            f"{stack['app']}/{name}/openapi.json", headers={"Authorization": f"Bearer {keys[scope]}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310 - our own loopback stack
            served = json.load(response)
        assert served == json.loads((ROOT / "schemas" / f"{name}-api.openapi.json").read_text())

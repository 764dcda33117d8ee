"""The finance API's OpenAPI document (schemas/finance-api.openapi.json) against the app: valid
OpenAPI 3.1, exactly the app's /finance routes, each behind the bearer key, and what the app
answers fits what the document promises (media types and JSON error bodies)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from openapi_spec_validator import validate

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from tests.integration.test_manufacturer_openapi import documented_operations, response_validator

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((ROOT / "schemas" / "finance-api.openapi.json").read_text())
RECONCILIATION = "/finance/reconciliation"
MEDIA = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)


def test_the_document_names_exactly_the_finance_routes_and_each_needs_the_key():
    from app import app

    routes = {
        (path, method.lower())
        for path, entries in app.routes.items()
        if path.startswith("/finance")
        for method in entries
    }
    assert set(documented_operations(DOCUMENT)) == routes
    for path, method in routes:
        assert app.routes[path][method.upper()].authorizer is not None
    assert DOCUMENT["security"] == [{"bearerAuth": []}]


def test_what_the_app_answers_fits_the_document(client, deps):
    token = create_api_key(Scope.FINANCE, "Finance", deps.api_keys, deps.clock())[1]
    today = deps.clock().date()

    def get(path: str, key: str | None = token, accept: str = "*/*"):
        headers = {"Accept": accept} | ({"Authorization": f"Bearer {key}"} if key else {})
        return client.http.get(path, headers=headers)

    promised = DOCUMENT["paths"][RECONCILIATION]["get"]["responses"]
    for fmt in ("csv", "xlsx"):
        ok = get(f"{RECONCILIATION}?from={today}&to={today + timedelta(days=1)}&format={fmt}", accept=MEDIA[fmt])
        assert ok.status_code == 200, ok.body
        assert ok.headers["Content-Type"].split(";")[0] in promised["200"]["content"]
        assert ok.headers["Content-Disposition"].endswith(f'.{fmt}"')
    for query, field in (("from=2026-12-01&to=2026-11-01", "to"), ("to=2026-11-01", "from"), ("", "from")):
        bad = get(f"{RECONCILIATION}?{query}")
        assert bad.status_code == 400
        answer = json.loads(bad.body)
        response_validator(RECONCILIATION, "get", 400, DOCUMENT).validate(answer)
        assert field in answer["fields"]
    manufacturer = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
    assert get(f"{RECONCILIATION}?from={today}&to={today + timedelta(days=1)}", manufacturer).status_code == 403
    served = get("/finance/openapi.json")
    assert served.status_code == 200 and json.loads(served.body) == DOCUMENT

"""The manufacturer API's OpenAPI document (schemas/manufacturer-api.openapi.json) against the
app: it is valid OpenAPI 3.1, it names exactly the routes the app has, every route needs the
bearer key, and what the app really answers fits the schemas it promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from tests.integration.test_manufacturer_client import cancelled_order, dispatch, fid, free_orders

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT_PATH = ROOT / "schemas" / "manufacturer-api.openapi.json"
MESSAGE_SCHEMA = json.loads((ROOT / "schemas" / "fulfilment-message.v1.json").read_text())
DOCUMENT = json.loads(DOCUMENT_PATH.read_text())
DOCUMENT_URI = "urn:tracekit:manufacturer-api"  # a base for the document's own #/components/... references
PREFIX = "/manufacturer"
ORDERS = f"{PREFIX}/fulfilment-orders"
CANCELLATIONS = f"{PREFIX}/cancellations"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def app_routes() -> set[tuple[str, str]]:
    from app import app

    return {
        (path, method.lower()) for path, entries in app.routes.items() if path.startswith(PREFIX) for method in entries
    }


def documented_operations(document: dict = DOCUMENT) -> dict[tuple[str, str], dict]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    validate(DOCUMENT)


def test_the_document_names_exactly_the_routes_the_app_has():
    assert set(documented_operations()) == app_routes()


def test_every_route_needs_the_bearer_key_in_the_document_and_in_the_app():
    from app import app

    assert DOCUMENT["components"]["securitySchemes"]["bearerAuth"] | {"bearerFormat": "…", "description": "…"} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "…",
        "description": "…",
    }
    for key, operation in documented_operations().items():
        assert operation.get("security", DOCUMENT.get("security")) == [{"bearerAuth": []}], key
    for path, method in app_routes():
        assert app.routes[path][method.upper()].authorizer is not None, (path, method)


def test_the_work_list_item_carries_the_fulfilment_message_fields_unchanged():
    schemas = DOCUMENT["components"]["schemas"]
    item = schemas["FulfilmentOrder"]
    assert set(MESSAGE_SCHEMA["required"]) <= set(item["required"])
    for name, definition in MESSAGE_SCHEMA["properties"].items():
        documented = item["properties"][name]
        if documented == {"$ref": "#/components/schemas/Recipient"}:
            documented = schemas["Recipient"]
        assert documented == definition, name
    assert set(item["properties"]) - set(MESSAGE_SCHEMA["properties"]) == {"state", "released_at"}


def response_validator(path: str, method: str, status: int, document: dict = DOCUMENT) -> Draft202012Validator:
    """A validator for the JSON body the document promises for this operation and status."""
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response["content"]["application/json"]["schema"]
    registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document, DRAFT202012))
    if "$ref" in schema:
        schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
    return Draft202012Validator(schema, registry=registry)


def route_of(path: str) -> str:
    """'/manufacturer/fulfilment-orders/F-…/accept?x=1' -> '/manufacturer/fulfilment-orders/{fulfilment_id}/accept'."""
    return re.sub(r"/F-[^/]+/", "/{fulfilment_id}/", path.split("?")[0])


@pytest.fixture
def call(client, deps):
    """Calls the app (chalice.test.Client on real adapters) and checks the answer against the document."""
    token = create_api_key(Scope.MANUFACTURER, "Kit Maker Ltd", deps.api_keys, deps.clock())[1]

    def request(method: str, path: str, body: dict | None = None, key: str | None = token) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
        send = getattr(client.http, method)
        response = send(path, headers=headers, body=json.dumps(body or {}) if method == "post" else None)
        answer = json.loads(response.body)
        response_validator(route_of(path), method, response.status_code).validate(answer)
        return response.status_code, answer

    return request


def test_what_the_app_answers_fits_the_document(call, deps, stripe_emulator):
    first, second = free_orders(deps, {}, {"full_name": "Bob Example", "address_line_2": "Flat 2"})
    cancelled = cancelled_order(deps, stripe_emulator)
    status, page = call("get", f"{ORDERS}?limit=1")
    assert status == 200 and len(page["fulfilment_orders"]) == 1 and page["next_cursor"]
    assert call("get", f"{ORDERS}?limit=0")[0] == 400
    assert call("post", f"{ORDERS}/{fid(first)}/accept")[1]["state"] == "accepted"
    assert call("post", f"{ORDERS}/F-ZZZZZ-ZZZZZ/accept")[0] == 404
    assert call("post", f"{ORDERS}/{fid(first)}/dispatch", dispatch(fid(first)))[1]["state"] == "dispatched"
    assert call("post", f"{ORDERS}/{fid(first)}/dispatch", dispatch(fid(first), "SW-2"))[0] == 409
    assert call("post", f"{ORDERS}/{fid(second)}/dispatch", {"kit_code": ""})[0] == 400
    assert call("post", f"{ORDERS}/{fid(second)}/reject", {"reason": "no such street"})[1]["state"] == "rejected"
    assert call("post", f"{ORDERS}/{fid(second)}/reject", {})[0] == 400
    assert call("post", f"{ORDERS}/{fid(first)}/returned", {"reason": "gone away"})[1]["state"] == "returned"
    assert call("post", f"{ORDERS}/{fid(first)}/returned", {"reason": " "})[0] == 400
    assert call("post", f"{ORDERS}/{fid(second)}/returned", {"reason": "gone away"})[0] == 409
    assert call("post", f"{ORDERS}/{fid(cancelled)}/accept")[0] == 409
    assert call("get", CANCELLATIONS)[1]["cancellations"][0]["fulfilment_id"] == fid(cancelled)
    assert call("post", f"{CANCELLATIONS}/{fid(cancelled)}/acknowledge")[1]["state"] == "cancelled"
    assert call("post", f"{CANCELLATIONS}/{fid(first)}/acknowledge")[0] == 409
    assert call("get", ORDERS, key=None)[0] == 401
    assert call("get", ORDERS, key="tk_manufacturer_0123456789abcdef_" + "A" * 43)[0] == 403


def test_the_app_serves_this_document(call):
    assert call("get", "/manufacturer/openapi.json") == (200, DOCUMENT)


def test_the_amendments_routes_answer_as_documented(call, deps):
    from chalicelib import services

    [reference] = free_orders(deps, {})
    new = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "LS1 4AP"}
    services.change_delivery_address(reference, "FA/3000", "SW1A 2AA", new, deps, "198.51.100.7")
    amendments = f"{PREFIX}/amendments"
    status, page = call("get", amendments)
    assert status == 200 and page["amendments"][0]["amendment"] == 1
    assert call("get", f"{amendments}?limit=0")[0] == 400
    assert call("post", f"{amendments}/{fid(reference)}/acknowledge", {"amendment": "one"})[0] == 400
    assert call("post", f"{amendments}/{fid(reference)}/acknowledge", {"amendment": 2})[0] == 409
    assert call("post", f"{amendments}/F-ZZZZZ-ZZZZZ/acknowledge", {"amendment": 1})[0] == 404
    assert call("post", f"{amendments}/{fid(reference)}/acknowledge", {"amendment": 1})[1]["state"] == "released"

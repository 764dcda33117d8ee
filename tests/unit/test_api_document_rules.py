"""The manufacturer API's document and the domain state the same text rules.

Schemathesis generates requests from the document's patterns and expects the app to agree with
them both ways; this checks the agreement directly, character by character, with the document's
own patterns, read by jsonschema-rs as schemathesis reads them (ECMAScript-like: `$` is the end,
where Python's `re` also lets a final newline through)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import jsonschema_rs

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.fulfilment import parse_dispatch, parse_reason
from tests.builders import NOW

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "manufacturer-api.openapi.json").read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]
# every character of the Basic Multilingual Plane up to CJK, the byte-order mark and one astral one
CHARACTERS = [chr(c) for c in range(0x3100) if not 0xD800 <= c <= 0xDFFF] + ["\ufeff", "\U0001f600"]
SAMPLES = [c for c in CHARACTERS] + [f" {c}x" for c in CHARACTERS] + [f"x{c}" for c in CHARACTERS]


def documented(schema: dict):
    return jsonschema_rs.Draft202012Validator(schema).is_valid


def accepted(parse, value) -> bool:
    try:
        parse(value)
    except InvalidInput:
        return False
    return True


def test_a_rejection_reason_is_valid_in_the_document_exactly_when_the_app_accepts_it():
    valid = documented(SCHEMAS["RejectRequest"]["properties"]["reason"])
    for value in [*SAMPLES, "", "   ", "a" * 500, "a" * 501, " " + "a" * 499, "\ta\n", 42, None]:
        assert valid(value) == accepted(parse_reason, value), repr(value)


@pytest.mark.parametrize("field", ["carrier", "tracking_reference", "kit_code"])
def test_each_dispatch_field_is_valid_in_the_document_exactly_when_the_app_accepts_it(field):
    valid = documented(SCHEMAS["Dispatch"]["properties"][field])
    good = {"kit_code": "SW-1", "carrier": "Royal Mail", "tracking_reference": "AB1", "dispatched_at": NOW.isoformat()}

    def parse(value):
        return parse_dispatch(good | {field: value}, NOW - timedelta(days=1), NOW)

    for value in [*SAMPLES, "", "  ", "a" * 40, "a" * 41, "a" * 60, "a" * 61, " A-1 ", "-A", 42, None]:
        assert valid(value) == accepted(parse, value), repr(value)

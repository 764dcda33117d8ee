"""The fulfilment message's JSON Schema (schemas/fulfilment-message.v1.json), checked before a
message leaves tracekit: what the kit maker is promised is what it gets."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..domain.errors import FulfilmentMessageRefused

# schemas/ sits beside chalicelib/ in the repository and in the package (via vendor/).
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "fulfilment-message.v1.json"


AMENDMENT_SCHEMA = SCHEMA.with_name("fulfilment-amendment.v1.json")


@functools.cache
def _validator(path: Path = SCHEMA) -> Any:
    import jsonschema  # imported on the first send, not at a cold start

    schema = json.loads(path.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def check_fulfilment_message(document: dict[str, Any]) -> None:
    """Raises FulfilmentMessageRefused naming each field that breaks the schema and the rule it
    breaks (`recipient.postcode: pattern`), never the field's value, which may be personal data."""
    _check(document, SCHEMA)


def check_amendment_message(document: dict[str, Any]) -> None:
    """The address amendment against its own schema (schemas/fulfilment-amendment.v1.json), refused
    the same way."""
    _check(document, AMENDMENT_SCHEMA)


def _check(document: dict[str, Any], schema: Path) -> None:
    errors = sorted(_validator(schema).iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = {f"{'.'.join(map(str, e.absolute_path)) or '(message)'}: {e.validator}" for e in errors}
        raise FulfilmentMessageRefused(tuple(sorted(problems)))

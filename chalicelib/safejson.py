"""JSON from outside tracekit (a partner's body, a signed webhook), read with a limit on nesting.

Python's json module parses recursively: 5,000 nested brackets in 10 KB end in RecursionError, a
500. The bytes are scanned first, cheaply (strings removed by one regular expression, then the
brackets counted), and anything deeper than the caller's limit is refused before it is parsed.
The scan agrees with the parser wherever the body is valid JSON, and where it is not the parser
stops at the first fault, before it could nest any further than the scan saw."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # the unrolled loop: linear
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
# Stripe's events nest about 8 levels (event, data, object, then an expanded object's lists; the
# emulator's 4 to 7): a signed event deeper than this is refused (400), never parsed.
STRIPE_EVENT_DEPTH = 64
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class TooDeep(ValueError):
    """The body nests arrays and objects deeper than the limit allows."""


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw`, brackets inside strings not counted."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    return max(accumulate(_STEP[byte] for byte in brackets), default=0)


def loads(raw: bytes | str, max_depth: int) -> Any:
    """json.loads, refusing (TooDeep, a ValueError) a body nested deeper than max_depth."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if nesting_depth(data) > max_depth:
        raise TooDeep(f"nested deeper than {max_depth} levels")
    return json.loads(data)

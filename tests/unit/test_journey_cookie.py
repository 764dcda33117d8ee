"""The journey cookie's size: every answer the forms accept fits in the cookie a browser keeps.

Chromium keeps a cookie whose name and value come to 4,096 bytes at most and drops a larger one
without a word (the holder was sent back to the certificate page, in a loop). The worst case is
worked out from the forms' own limits with a 4-byte character in every place: JSON written with
ensure_ascii=False spends at most 4 bytes on a character the forms accept (only control characters,
which the forms refuse, take more), and Fernet's token grows with its plaintext, so no accepted
answer makes a larger cookie than this one."""

from __future__ import annotations

import json
import math
import random

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.delivery import LIMITS, parse_delivery_details
from chalicelib.domain.eligibility import EligibilityReason
from chalicelib.domain.money import Money
from chalicelib.services import CheckedCertificate
from chalicelib.web.journey import COOKIE_NAME, Journey, JourneyCookies

CHROMIUM_COOKIE_LIMIT = 4096  # name + value; each attribute may add up to 1,024 more
MARGIN = 300  # bytes kept free under the limit, counting the attributes too
MAX_TTL_SECONDS = 48 * 3600  # JOURNEY_TTL_SECONDS's maximum: the longest Max-Age
_RANDOM = random.Random(14)


def four_byte_text(length: int) -> str:
    """Characters from the supplementary planes (4 bytes each in UTF-8), drawn at random so that
    nothing about them is shorter to write than any other accepted text."""
    return "".join(chr(_RANDOM.randrange(0x10000, 0x110000)) for _ in range(length))


def worst_case_answers() -> dict[str, str]:
    email_length = LIMITS["email"]
    local, domain = four_byte_text(email_length // 2), four_byte_text(email_length - email_length // 2 - 3)
    return {
        "full_name": four_byte_text(LIMITS["full_name"]),
        "address_line_1": four_byte_text(LIMITS["address_line_1"]),
        "address_line_2": four_byte_text(LIMITS["address_line_2"]),
        "town": four_byte_text(LIMITS["town"]),
        "postcode": "SW1A 2AA",  # the longest form a postcode is stored in
        "email": f"{local}@{domain}.{four_byte_text(1)}",
        "contact_consent": "yes",
    }


def worst_case_journey() -> Journey:
    delivery = parse_delivery_details(worst_case_answers())  # accepted by the form, as it stands
    assert len(delivery.email) == LIMITS["email"]
    longest_reason = max((reason.value for reason in EligibilityReason), key=len)
    checked = CheckedCertificate("f" * 64, Money(10**9, "gbp"), longest_reason)  # key: a SHA-256 hex MAC
    return Journey(checked, delivery, "TK-7K3MQ-9X2HD", "n" * 22)  # csrf: token_urlsafe(16)


def fernet_token_bytes(plaintext_bytes: int) -> int:
    """Fernet: version, time and IV (25 bytes), the AES-CBC ciphertext padded to whole 16-byte blocks,
    the HMAC (32 bytes), all in padded URL-safe base64."""
    return 4 * math.ceil((25 + 16 * (plaintext_bytes // 16 + 1) + 32) / 3)


def test_the_largest_journey_any_accepted_answers_make_fits_in_chromium_with_margin():
    journey = worst_case_journey()
    cookies = JourneyCookies(b"k" * 32, MAX_TTL_SECONDS, secure=True)
    header = cookies.set_cookie(journey)
    plaintext = len(journey.to_json().encode("utf-8"))
    name_and_value = header.split(";", 1)[0]
    assert len(name_and_value) == len(COOKIE_NAME) + 1 + fernet_token_bytes(plaintext)
    assert len(header.encode()) <= CHROMIUM_COOKIE_LIMIT - MARGIN, len(header)
    assert cookies.read(name_and_value) == journey


def test_no_accepted_character_costs_more_than_a_four_byte_one():
    """Quotes and backslashes are escaped (2 bytes each); control characters would cost 6 but the
    form refuses them."""
    base = worst_case_journey()
    for awkward in ('"', "\\", "é", "€", "😀"):
        answers = {**worst_case_answers(), "town": awkward * LIMITS["town"]}
        journey = base.with_changes(delivery=parse_delivery_details(answers))
        assert len(journey.to_json().encode()) <= len(base.to_json().encode()), awkward
    with pytest.raises(InvalidInput) as refused:
        parse_delivery_details({**worst_case_answers(), "town": "a\x01b"})
    assert "town" in refused.value.errors


def test_a_journey_cookie_of_the_earlier_form_is_still_read():
    """A holder midway through when the new form is deployed carries on."""
    journey = worst_case_journey()
    cookies = JourneyCookies(b"k" * 32, 3600, secure=False)
    earlier = {
        "checked": {"key": "f" * 64, "pence": 895, "currency": "gbp", "reason": "standard_price"},
        "delivery": journey.delivery.to_dict(),
        "order": journey.order_reference,
        "csrf": journey.csrf,
    }
    token = cookies._fernet.encrypt_at_time(json.dumps(earlier).encode(), cookies._now()).decode()
    read = cookies.read(f"{COOKIE_NAME}={token}")
    assert read.delivery == journey.delivery and read.order_reference == journey.order_reference
    assert read.checked == CheckedCertificate("f" * 64, Money(895, "gbp"), "standard_price")

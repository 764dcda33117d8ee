"""The hosted checkout page, form decoding and money formatting."""

from __future__ import annotations

import urllib.parse
import urllib.request


from devstack.stripe_emulator import decode_stripe_form, format_money
from tests.integration.stripe_emulator.support import (
    PRODUCT_NAME,
    create_session,
    request_page,
)


# ---------------------------------------------------------------------------
# Hosted page and helpers
# ---------------------------------------------------------------------------


def test_hosted_page_shows_product_amount_and_pay_and_decline_buttons(client, emulator):
    session = create_session(client)

    with urllib.request.urlopen(session.url, timeout=10) as response:
        page = response.read().decode()

    assert '<html lang="en">' in page
    assert "<h1>" in page
    assert PRODUCT_NAME in page
    assert "£8.95" in page
    assert '<button type="submit" class="pay">Pay</button>' in page
    assert '<button type="submit" class="decline">Decline</button>' in page
    assert "not real Stripe" in page
    assert 'href="https://tracekit.test/basket">Cancel and go back</a>' in page


def test_unknown_hosted_page_is_a_404(emulator):
    assert request_page(emulator, "GET", "/c/pay/cs_test_unknown").status == 404


def test_form_decoding_builds_nested_dicts_and_lists():
    decoded = decode_stripe_form(
        "line_items[0][price_data][unit_amount]=895&line_items[0][quantity]=1"
        "&metadata[order_ref]=X&payment_intent_data[metadata][order_ref]=X&expand[0]=line_items"
    )

    assert decoded == {
        "line_items": [{"price_data": {"unit_amount": "895"}, "quantity": "1"}],
        "metadata": {"order_ref": "X"},
        "payment_intent_data": {"metadata": {"order_ref": "X"}},
        "expand": ["line_items"],
    }


def test_money_is_formatted_from_integer_pence():
    assert format_money(895, "gbp") == "£8.95"
    assert format_money(123456, "gbp") == "£1,234.56"
    assert format_money(500, "jpy") == "500 JPY"

"""The developer dashboard at /_emulator and its forms."""

from __future__ import annotations

import json


from tests.integration.stripe_emulator.support import (
    create_session,
    pay_for_session,
    post_form,
    request_page,
)


# ---------------------------------------------------------------------------
# Developer dashboard
# ---------------------------------------------------------------------------


def test_dashboard_lists_sessions_and_payments_with_labelled_forms(client, emulator):
    open_session = create_session(client)
    payment_intent = pay_for_session(client, emulator)

    page = request_page(emulator, "GET", "/_emulator")

    assert page.status == 200
    assert '<html lang="en">' in page.body
    assert f"<code>{open_session.id}</code>" in page.body
    assert f"<code>{payment_intent}</code>" in page.body
    assert "£8.95" in page.body and "unpaid" in page.body
    assert f'action="/_emulator/sessions/{open_session.id}/expire"' in page.body
    assert f'action="/_emulator/payment_intents/{payment_intent}/refund"' in page.body
    assert f'<label for="refund-amount-{payment_intent}">' in page.body
    assert f'<input id="refund-amount-{payment_intent}" name="amount"' in page.body


def test_dashboard_refund_form_redirects_back_with_a_notice(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    form = {"view": "dashboard", "amount": "300"}

    response = post_form(
        emulator, f"/_emulator/payment_intents/{payment_intent}/refund", form, {"Origin": emulator.base_url}
    )

    assert (response.status, response.location) == (303, "/_emulator?done=refunded")
    assert "The refund was created." in request_page(emulator, "GET", response.location).body
    [refund] = client.v1.refunds.list().data
    assert refund.amount == 300


def test_dashboard_form_errors_are_shown_escaped_on_the_dashboard(client, emulator):
    response = post_form(emulator, "/_emulator/payment_intents/%3Cscript%3E/refund", {"view": "dashboard"})

    assert response.status == 404
    assert 'role="alert"' in response.body
    assert "&lt;script&gt;" in response.body and "<script>" not in response.body


def test_dashboard_dispute_close_and_expire_controls(client, emulator):
    payment_intent = pay_for_session(client, emulator)
    open_session = create_session(client)

    opened = post_form(emulator, f"/_emulator/payment_intents/{payment_intent}/dispute", {"reason": "duplicate"})
    dispute = json.loads(opened.body)
    closed = post_form(emulator, f"/_emulator/disputes/{dispute['id']}/close", {"view": "dashboard", "outcome": "won"})
    expired = post_form(emulator, f"/_emulator/sessions/{open_session.id}/expire", {})

    assert (opened.status, dispute["reason"]) == (200, "duplicate")
    assert (closed.status, client.v1.disputes.retrieve(dispute["id"]).status) == (303, "won")
    assert (expired.status, json.loads(expired.body)["status"]) == (200, "expired")


def test_dashboard_controls_refuse_posts_from_other_sites(client, emulator):
    payment_intent = pay_for_session(client, emulator)

    response = post_form(
        emulator, f"/_emulator/payment_intents/{payment_intent}/refund", {}, {"Origin": "https://evil.example"}
    )

    assert response.status == 403
    assert client.v1.refunds.list().data == []

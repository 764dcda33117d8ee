"""The lifecycle as one module: its one-write fast path is the general rule, every effect it can owe
is carried out by someone, and the documented table is the module's own."""

from __future__ import annotations

import dataclasses
import inspect
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import services
from chalicelib.adapters.dynamodb_order_items import item_values
from chalicelib.adapters.dynamodb_orders import guarded_attributes
from chalicelib.domain import lifecycle
from chalicelib.domain.changes import Effect, Source
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.attempts import on_attempt
from chalicelib.domain.errors import AddressNotChangeable, FulfilmentConflict, OrderNotFound, ReplacementTooEarly
from chalicelib.domain.lifecycle import (
    TRANSITIONS,
    accept_payment,
    note_processing,
    open_checkout,
    pay_as_expected,
    place_order,
    reconcile_money,
)
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Dispatch, FulfilmentState, OrderState, PaymentState
from chalicelib.domain.payments import MoneyView
from chalicelib.domain.references import (
    fulfilment_attempt_of,
    fulfilment_id_of,
    new_order_reference,
    order_reference_of,
)
from chalicelib.services.manufacturer import dispatch_fulfilment
from chalicelib.services.privacy import erase_order
from tests.builders import NOW, delivery_form, fake_dependencies, load_register, register_row

PRICE = Money(895)
RETENTION = timedelta(days=30)
ROOT = Path(__file__).resolve().parents[2]


@st.composite
def unpaid_orders(draw):
    """Orders as the lifecycle makes them before payment: with or without an email, consent, an
    open session, a processing payment, a refund or dispute noted early."""
    email = draw(st.sampled_from(["", "sam@example.com"]))
    consent = "yes" if email and draw(st.booleans()) else ""
    delivery = parse_delivery_details(delivery_form(email=email, contact_consent=consent))
    eligibility = Eligibility(PRICE, EligibilityReason.STANDARD_PRICE)
    order = place_order(new_order_reference(), "cert", eligibility, delivery, NOW).order
    if draw(st.booleans()):
        attempt = draw(st.integers(1, 3))
        order = open_checkout(order, f"cs_{attempt}", "https://pay", NOW + timedelta(hours=1), attempt, NOW).order
    if draw(st.booleans()):
        order = note_processing(order, draw(st.sampled_from(["pi_0", None])), Source("stripe", "evt_p"), NOW).order
    refunded, dispute = draw(st.sampled_from([(0, None), (0, None), (300, None), (0, "needs_response")]))
    if refunded or dispute:
        view = MoneyView(order.reference, "pi_1", PRICE, refunded, dispute)
        order = reconcile_money(order, view, Source("stripe", "evt_r"), NOW).order
    return order


@settings(max_examples=200, deadline=None)
@given(unpaid_orders(), st.sampled_from(["pi_1", None]))
def test_the_one_write_payment_is_the_general_rule_for_every_order_it_accepts(order, intent):
    source, later = Source("stripe", "evt_1"), NOW + timedelta(minutes=5)
    change = pay_as_expected(PRICE, intent, source, later)
    general = accept_payment(order, PRICE, intent, source, later)
    if not change.met_by(order):
        assert order.refunded_pence or order.dispute_status  # the only unpaid orders it turns away
        return
    assert change.applied_to(order) == general


@settings(max_examples=200, deadline=None)
@given(unpaid_orders(), st.sampled_from(["pi_1", None]))
def test_the_store_writes_for_the_one_write_payment_what_a_save_of_the_general_rule_writes(order, intent):
    """The adapter's translation: the fields set, and the views that differ between the sketches,
    take the stored item of a real order to the item the general path stores."""
    source = Source("stripe", "evt_1")
    change = pay_as_expected(PRICE, intent, source, NOW)
    if not change.met_by(order):
        return
    written = guarded_attributes(change, RETENTION)
    stored = {**item_values(order, RETENTION), **written}
    assert stored == item_values(accept_payment(order, PRICE, intent, source, NOW).order, RETENTION)


@settings(max_examples=100, deadline=None)
@given(unpaid_orders(), st.booleans())
def test_erasure_ends_every_unfinished_order_and_a_second_erasure_changes_nothing(order, paid):
    if paid:
        order = accept_payment(order, PRICE, "pi_1", Source("stripe", "evt_1"), NOW).order
    once = lifecycle.erase_personal_data(order, Source("operator:alice"), NOW, "asked")
    twice = lifecycle.erase_personal_data(once.order, Source("operator:alice"), NOW, "asked")
    assert (twice.changed, twice.order, twice.effects) == (False, once.order, frozenset())
    erased = once.order
    assert erased.delivery.postcode == "" and not erased.awaits_payment and not erased.awaits_release
    assert not erased.open_for_manufacturer
    if erased.payment in lifecycle.REFUNDABLE:  # money held: owed back until the refund is recorded
        assert Effect.REFUND_IN_FULL in lifecycle.outstanding(erased)
    late = accept_payment(erased, PRICE, "pi_2", Source("stripe", "evt_late"), NOW)
    assert Effect.RELEASE_TO_MANUFACTURER not in late.effects and not late.order.awaits_release


@settings(max_examples=100, deadline=None)
@given(unpaid_orders(), st.booleans())
def test_a_holder_cancelling_ends_an_unfinished_order_once_and_a_second_cancel_changes_nothing(order, paid):
    if paid:
        order = accept_payment(order, PRICE, "pi_1", Source("stripe", "evt_1"), NOW).order
    if not (order.awaits_payment or order.is_confirmed):
        with pytest.raises(FulfilmentConflict):
            lifecycle.cancel_by_holder(order, Source("holder"), NOW)
        return
    once = lifecycle.cancel_by_holder(order, Source("holder"), NOW)
    twice = lifecycle.cancel_by_holder(once.order, Source("holder"), NOW)
    assert (twice.changed, twice.order, twice.effects) == (False, once.order, frozenset())
    ended = once.order
    assert (ended.state, ended.fulfilment) == (OrderState.CANCELLED, FulfilmentState.CANCELLED)
    assert Effect.RELEASE_CLAIM in once.effects and not ended.awaits_release and not ended.open_for_manufacturer
    assert (Effect.REFUND_IN_FULL in once.effects) == (order.payment in lifecycle.REFUNDABLE)
    assert (Effect.EMAIL_CANCELLATION in once.effects) == bool(order.delivery.email)
    if ended.payment in lifecycle.REFUNDABLE:  # owed back until the refund is recorded
        assert Effect.REFUND_IN_FULL in lifecycle.outstanding(ended)
    late = accept_payment(ended, PRICE, "pi_2", Source("stripe", "evt_late"), NOW)
    assert Effect.RELEASE_TO_MANUFACTURER not in late.effects and not late.order.awaits_release
    assert Effect.RECLAIM not in late.effects


def test_a_dispatched_kit_cannot_be_cancelled_by_the_holder():
    free = Eligibility(Money(0), EligibilityReason.REGISTER_FLAG)
    order = place_order(new_order_reference(), "cert", free, parse_delivery_details(delivery_form()), NOW).order
    released = lifecycle.release(order, NOW).order
    posted = Dispatch("SW-1", "Royal Mail", "RM1GB", NOW)
    dispatched = lifecycle.dispatch(released, posted, Source("manufacturer:k"), NOW).order
    with pytest.raises(FulfilmentConflict, match="already dispatched"):
        lifecycle.cancel_by_holder(dispatched, Source("holder"), NOW)


def test_every_transition_is_in_the_table_and_every_row_is_a_transition():
    functions = {
        name
        for name, f in inspect.getmembers(lifecycle, inspect.isfunction)
        if f.__module__ == lifecycle.__name__ and not name.startswith("_") and name != "outstanding"
    }
    assert {t.name for t in TRANSITIONS} == functions


def lifecycle_table() -> str:
    rows = ["| Transition | The fact | Reported by | Effects it may owe |", "| --- | --- | --- | --- |"]
    for t in TRANSITIONS:
        effects = ", ".join(sorted(e.value for e in t.effects)) or "none"
        rows.append(f"| `{t.name}` | {t.fact} | {t.reported_by} | {effects} |")
    return "\n".join(rows)


def test_the_documented_lifecycle_table_is_the_modules():
    text = (ROOT / "docs" / "architecture.md").read_text()
    documented = re.search(r"<!-- lifecycle-table -->\n(.*?)\n<!-- /lifecycle-table -->", text, re.S)
    assert documented, "docs/architecture.md lost its lifecycle table markers"
    assert documented.group(1).strip() == lifecycle_table(), "regenerate: python -m tests.unit.test_lifecycle"


# -- Every effect has a consumer: each scenario owes one effect, and its outcome is seen ------------


def world():
    deps = fake_dependencies()
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA", free_kit="yes"))
    return deps


def placed(deps, reference="FA/1001", email="sam@example.com"):
    checked = services.check_certificate(reference, "sw1a2aa", deps)
    delivery = parse_delivery_details(delivery_form(email=email))
    return services.confirm_order(checked, delivery, new_order_reference(), deps).reference


def claims(deps) -> int:
    return sum(deps.register.claims.values())


def test_release_claim_gives_the_certificate_its_kit_back():
    deps = world()
    reference = placed(deps)
    assert claims(deps) == 1
    services.apply_change(reference, lambda o: lifecycle.expire_checkout(o, None, Source("system"), NOW), deps)
    assert claims(deps) == 0


def test_reclaim_takes_the_kit_back_for_a_payment_honoured_after_the_order_lapsed():
    deps = world()
    reference = placed(deps)
    services.apply_change(reference, lambda o: lifecycle.expire_checkout(o, None, Source("system"), NOW), deps)
    services.apply_change(reference, lambda o: accept_payment(o, PRICE, "pi_1", Source("stripe", "e"), NOW), deps)
    assert claims(deps) == 1


def test_release_to_manufacturer_puts_the_message_on_the_queue_and_records_the_release():
    deps = world()
    reference = placed(deps, "FA/1002", email="")
    assert [m["order_reference"] for m in deps.fulfilment_queue.receive_all()] == [reference]
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED


def test_email_confirmation_is_sent_by_the_caller_that_released_the_order():
    deps = world()
    placed(deps, "FA/1002")
    assert [to for to, _, _ in deps.mailer.sent] == ["sam@example.com"]
    assert deps.orders.notifications_due(NOW + timedelta(days=1)) == []


def test_email_dispatch_is_sent_by_the_caller_that_recorded_the_dispatch():
    deps = world()
    reference = placed(deps, "FA/1002")
    report = {"kit_code": "K1", "carrier": "Royal Mail", "tracking_reference": "T1", "dispatched_at": NOW.isoformat()}
    dispatch_fulfilment(fulfilment_id_of(reference), report, "k", deps)
    assert len(deps.mailer.sent) == 2 and "on its way" in deps.mailer.sent[-1][1]
    assert deps.orders.notifications_due(NOW + timedelta(days=1)) == []


def paid_and_released(deps) -> str:
    reference = placed(deps)
    session = deps.payments.pay(deps.orders.get(reference).checkout_session_id)
    services.handle_stripe_webhook(
        *deps.payments.completed_event(reference, payment_intent=session["payment_intent"]), deps
    )
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED
    return reference


def test_refund_in_full_gives_back_what_stripe_holds_of_an_order_its_erasure_ended():
    deps = world()
    reference = paid_and_released(deps)
    order = erase_order(reference, "holder asked", "alice", deps)
    assert deps.payments.money_view(order.payment_intent_id).amount_refunded == PRICE.pence
    assert (order.state, order.payment, order.fulfilment) == (
        OrderState.CANCELLED,
        PaymentState.REFUNDED,
        FulfilmentState.CANCELLED,
    )


def test_close_checkout_expires_the_session_of_an_order_erased_before_payment():
    deps = world()
    reference = placed(deps)
    session_id = deps.orders.get(reference).checkout_session_id
    erase_order(reference, "holder asked", "alice", deps)
    assert deps.payments.session(session_id)["status"] == "expired"
    assert claims(deps) == 0


def test_email_cancellation_is_sent_by_the_caller_that_recorded_the_holders_cancellation():
    deps = world()
    reference = placed(deps, "FA/1002")
    services.cancel_order(reference, "FA/1002", "SW1A 2AA", deps, "198.51.100.7")
    assert len(deps.mailer.sent) == 2 and "is cancelled" in deps.mailer.sent[-1][1]


def test_email_returned_is_sent_by_the_caller_that_recorded_the_return():
    deps = world()
    reference = dispatched(deps)
    services.apply_change(
        reference, lambda o: lifecycle.report_returned(o, "gone away", Source("manufacturer:k"), NOW), deps
    )
    assert len(deps.mailer.sent) == 3 and "came back" in deps.mailer.sent[-1][1]
    assert deps.orders.notifications_due(NOW + timedelta(days=1)) == []


def test_email_rejected_is_sent_by_the_caller_that_recorded_the_rejection():
    deps = world()
    reference = placed(deps, "FA/1002")
    services.apply_change(
        reference, lambda o: lifecycle.reject(o, "no such street", Source("manufacturer:k"), NOW), deps
    )
    assert len(deps.mailer.sent) == 2 and "could not send" in deps.mailer.sent[-1][1]
    assert "no such street" not in deps.mailer.sent[-1][2]
    assert deps.orders.notifications_due(NOW + timedelta(days=1)) == []


# -- A kit that has not arrived: the replacement's emails, carried out ------------------------------

DAYS = 10


def _reported(deps, reference):
    later = NOW + timedelta(days=DAYS)
    services.apply_change(reference, lambda o: lifecycle.request_replacement(o, Source("holder"), later, DAYS), deps)
    return later


def test_email_replacement_requested_is_sent_by_the_caller_that_recorded_the_report():
    deps = world()
    reference = dispatched(deps)
    _reported(deps, reference)
    assert "has not arrived" in deps.mailer.sent[-1][1]
    assert deps.orders.notifications_due(NOW + timedelta(days=30)) == []


def test_email_replacement_approved_is_sent_by_the_caller_that_approved_it():
    deps = world()
    reference = dispatched(deps)
    later = _reported(deps, reference)
    decide = lambda o: lifecycle.approve_replacement(o, Source("operator:ann"), later, "lost in post")  # noqa: E731
    services.apply_change(reference, decide, deps)
    assert "replacement" in deps.mailer.sent[-1][1] and "on its way" in deps.mailer.sent[-1][1]
    assert deps.orders.get(reference).fulfilment_id == fulfilment_id_of(reference, 2)


def test_email_replacement_declined_is_sent_with_supports_reason():
    deps = world()
    reference = dispatched(deps)
    later = _reported(deps, reference)
    decide = lambda o: lifecycle.decline_replacement(o, Source("operator:ann"), later, "signed for on 3 May")  # noqa: E731
    services.apply_change(reference, decide, deps)
    assert "signed for on 3 May" in deps.mailer.sent[-1][2]


def test_email_sending_again_is_sent_by_the_caller_that_resolved_with_a_new_address():
    deps = world()
    reference = placed(deps, "FA/1002")
    services.apply_change(
        reference, lambda o: lifecycle.reject(o, "no such street", Source("manufacturer:k"), NOW), deps
    )
    corrected = parse_delivery_details(delivery_form(address_line_1="2 New Street"))
    decide = lambda o: lifecycle.resolve_with_new_address(o, corrected, Source("operator:ann"), NOW, "flat number")  # noqa: E731
    services.apply_change(reference, decide, deps)
    assert "sending your property-marking kit again" in deps.mailer.sent[-1][1]
    assert "2 New Street" not in deps.mailer.sent[-1][2] and "no such street" not in deps.mailer.sent[-1][2]
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED  # sent again at once
    assert deps.orders.notifications_due(NOW + timedelta(days=1)) == []


# -- The holder changes the delivery address (lifecycle.change_address) ------------------------------

NEW_ADDRESS = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "ls1 4ap"}


def change_address(deps, reference, certificate="FA/1002", **fields):
    return services.change_delivery_address(
        reference, certificate, "SW1A 2AA", {**NEW_ADDRESS, **fields}, deps, "198.51.100.7"
    )


def test_email_address_changed_is_sent_by_the_caller_that_recorded_the_change():
    deps = world()
    reference = placed(deps, "FA/1002")
    change_address(deps, reference)
    assert len(deps.mailer.sent) == 2 and "was changed" in deps.mailer.sent[-1][1]
    assert "Leeds" not in deps.mailer.sent[-1][2] and "certificate" not in deps.mailer.sent[-1][2].lower()


def test_send_amendment_puts_the_new_address_on_the_queue_and_records_it_sent():
    deps = world()
    reference = placed(deps, "FA/1002")
    order = change_address(deps, reference)
    [amendment] = [m for m in deps.fulfilment_queue.receive_all() if m.get("kind") == "address_amendment"]
    assert amendment["amendment"] == 1 and amendment["recipient"]["postcode"] == "LS1 4AP"
    assert (order.amendments_issued, order.amendment_sent) == (1, 1) and not order.amendment_unsent


def test_a_change_of_address_before_payment_owes_no_amendment_and_applied_twice_changes_nothing():
    deps = world()
    order = deps.orders.get(placed(deps))
    new = parse_delivery_details(delivery_form(**NEW_ADDRESS))
    once = lifecycle.change_address(order, new, Source("holder"), NOW)
    twice = lifecycle.change_address(once.order, new, Source("holder"), NOW)
    assert (twice.changed, twice.order, twice.effects) == (False, once.order, frozenset())
    assert once.effects == {Effect.EMAIL_ADDRESS_CHANGED} and once.order.amendments_issued == 0
    assert once.order.delivery.email == order.delivery.email and once.order.delivery.postcode == "LS1 4AP"


def test_a_confirmed_order_not_yet_recorded_released_owes_an_amendment_sent_after_its_release():
    deps = world()
    paid = accept_payment(deps.orders.get(placed(deps)), PRICE, "pi_1", Source("stripe", "evt_1"), NOW).order
    new = parse_delivery_details(delivery_form(**NEW_ADDRESS))
    once = lifecycle.change_address(paid, new, Source("holder"), NOW)
    assert lifecycle.change_address(once.order, new, Source("holder"), NOW).changed is False
    assert once.effects == {Effect.EMAIL_ADDRESS_CHANGED, Effect.SEND_AMENDMENT}
    # its message may have gone with the old address: the amendment follows the release
    assert not once.order.amendment_unsent and lifecycle.outstanding(once.order) == {Effect.RELEASE_TO_MANUFACTURER}
    released = lifecycle.release(once.order, NOW).order
    assert released.amendment_unsent and Effect.SEND_AMENDMENT in lifecycle.outstanding(released)


def test_a_change_of_address_after_release_owes_a_numbered_amendment_once():
    deps = world()
    order = deps.orders.get(placed(deps, "FA/1002", email=""))
    new = parse_delivery_details(delivery_form(**NEW_ADDRESS))
    once = lifecycle.change_address(order, new, Source("holder"), NOW)
    twice = lifecycle.change_address(once.order, new, Source("holder"), NOW)
    assert (twice.changed, twice.effects) == (False, frozenset())
    assert once.effects == {Effect.SEND_AMENDMENT} and once.order.amendments_issued == 1
    assert lifecycle.outstanding(once.order) == {Effect.SEND_AMENDMENT}
    again = lifecycle.change_address(once.order, dataclasses.replace(new, town="York"), Source("holder"), NOW)
    assert again.order.amendments_issued == 2
    sent = lifecycle.record_amendment_sent(again.order, 2, NOW)
    assert lifecycle.record_amendment_sent(sent.order, 1, NOW).changed is False
    assert not sent.order.amendment_unsent and sent.order.amendment_to_tell


def test_a_message_sent_with_the_old_address_before_its_release_was_recorded_is_amended():
    from chalicelib.domain.fulfilment import fulfilment_message_for

    deps = world()
    reference = placed(deps)
    paid = accept_payment(deps.orders.get(reference), PRICE, "pi_1", Source("stripe", "evt_1"), NOW).order
    deps.orders.save(deps.orders.get(reference), paid)
    deps.fulfilment_queue.send(fulfilment_message_for(paid, "PMK-1"))  # sent; the process died before recording
    change_address(deps, reference, "FA/1001")
    fulfilment, amendment = deps.fulfilment_queue.receive_all()  # the resend was a duplicate
    assert fulfilment["recipient"]["postcode"] == "SW1A 2AA" and amendment["recipient"]["postcode"] == "LS1 4AP"
    assert deps.orders.get(reference).amendment_sent == 1


@pytest.mark.parametrize("state", [FulfilmentState.ACCEPTED, FulfilmentState.DISPATCHED, FulfilmentState.CANCELLED])
def test_a_change_of_address_once_the_kit_maker_accepted_is_refused(state):
    deps = world()
    order = dataclasses.replace(deps.orders.get(placed(deps, "FA/1002")), fulfilment=state)
    new = parse_delivery_details(delivery_form(**NEW_ADDRESS))
    with pytest.raises(FulfilmentConflict):
        lifecycle.change_address(order, new, Source("holder"), NOW)


def test_an_amendment_acknowledged_twice_is_recorded_once_and_a_number_never_issued_is_a_conflict():
    deps = world()
    order = change_address(deps, placed(deps, "FA/1002"))
    once = lifecycle.acknowledge_amendment(order, 1, Source("manufacturer:k"), NOW)
    twice = lifecycle.acknowledge_amendment(once.order, 1, Source("manufacturer:k"), NOW)
    assert twice.changed is False and not once.order.amendment_to_tell
    with pytest.raises(FulfilmentConflict):
        lifecycle.acknowledge_amendment(once.order, 2, Source("manufacturer:k"), NOW)
    unreleased = deps.orders.get(placed(deps))
    with pytest.raises(OrderNotFound):
        lifecycle.acknowledge_amendment(unreleased, 1, Source("manufacturer:k"), NOW)


CONSUMED_IN = {
    Effect.RELEASE_CLAIM: test_release_claim_gives_the_certificate_its_kit_back,
    Effect.RECLAIM: test_reclaim_takes_the_kit_back_for_a_payment_honoured_after_the_order_lapsed,
    Effect.RELEASE_TO_MANUFACTURER: test_release_to_manufacturer_puts_the_message_on_the_queue_and_records_the_release,
    Effect.EMAIL_CONFIRMATION: test_email_confirmation_is_sent_by_the_caller_that_released_the_order,
    Effect.EMAIL_DISPATCH: test_email_dispatch_is_sent_by_the_caller_that_recorded_the_dispatch,
    Effect.REFUND_IN_FULL: test_refund_in_full_gives_back_what_stripe_holds_of_an_order_its_erasure_ended,
    Effect.CLOSE_CHECKOUT: test_close_checkout_expires_the_session_of_an_order_erased_before_payment,
    Effect.EMAIL_CANCELLATION: test_email_cancellation_is_sent_by_the_caller_that_recorded_the_holders_cancellation,
    Effect.EMAIL_RETURNED: test_email_returned_is_sent_by_the_caller_that_recorded_the_return,
    Effect.EMAIL_REJECTED: test_email_rejected_is_sent_by_the_caller_that_recorded_the_rejection,
    Effect.EMAIL_SENDING_AGAIN: test_email_sending_again_is_sent_by_the_caller_that_resolved_with_a_new_address,
    Effect.EMAIL_REPLACEMENT_REQUESTED: test_email_replacement_requested_is_sent_by_the_caller_that_recorded_the_report,
    Effect.EMAIL_REPLACEMENT_APPROVED: test_email_replacement_approved_is_sent_by_the_caller_that_approved_it,
    Effect.EMAIL_REPLACEMENT_DECLINED: test_email_replacement_declined_is_sent_with_supports_reason,
    Effect.EMAIL_ADDRESS_CHANGED: test_email_address_changed_is_sent_by_the_caller_that_recorded_the_change,
    Effect.SEND_AMENDMENT: test_send_amendment_puts_the_new_address_on_the_queue_and_records_it_sent,
}


def test_every_kind_of_effect_has_a_test_above_that_shows_it_carried_out():
    assert set(CONSUMED_IN) == set(Effect)


def test_a_redelivered_fact_finishes_what_a_crash_left_outstanding():
    deps = world()
    reference = placed(deps, "FA/1002", email="")
    stuck = dataclasses.replace(deps.orders.get(reference), fulfilment=FulfilmentState.NOT_RELEASED, released_at=None)
    deps.orders.orders[reference] = stuck  # as if the process died between the send and the release
    assert lifecycle.outstanding(stuck) == {Effect.RELEASE_TO_MANUFACTURER}
    assert services.apply_change(reference, lambda o: lifecycle.noted(o, Source("system"), NOW, "touch"), deps)
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED
    assert deps.orders.get(reference).state is OrderState.CONFIRMED


if __name__ == "__main__":
    print(lifecycle_table())


def _released(email: str = "sam@example.com"):
    delivery = parse_delivery_details(delivery_form(email=email))
    eligibility = Eligibility(Money(0), EligibilityReason.REGISTER_FLAG)
    order = place_order(new_order_reference(), "cert", eligibility, delivery, NOW).order
    return lifecycle.release(order, NOW).order


def test_a_resend_logs_who_and_why_and_owes_the_email_once_per_request():
    support = Source("operator:alex")
    first = lifecycle.resend_email(_released(), "confirmation", support, NOW, "holder lost it")
    assert first.effects == {Effect.EMAIL_CONFIRMATION}
    assert (first.order.history[-1].actor, first.order.history[-1].change) == (
        "operator:alex",
        "confirmation email resent: holder lost it",
    )
    again = lifecycle.resend_email(first.order, "confirmation", support, NOW + timedelta(minutes=1), "holder lost it")
    assert not again.changed and again.effects == frozenset() and again.order.history == first.order.history
    other = lifecycle.resend_email(first.order, "confirmation", support, NOW, "asked again the next day")
    assert other.effects == {Effect.EMAIL_CONFIRMATION} and len(other.order.history) == len(first.order.history) + 1


def test_a_resend_is_refused_without_an_email_or_before_its_moment():
    from chalicelib.domain.errors import NothingToResend

    support = Source("operator:alex")
    delivery = parse_delivery_details(delivery_form(email="sam@example.com"))
    unreleased = place_order(
        new_order_reference(), "cert", Eligibility(PRICE, EligibilityReason.STANDARD_PRICE), delivery, NOW
    ).order
    cases = [
        (_released(email=""), "confirmation", "no email address"),
        (unreleased, "confirmation", "has not been released"),
        (_released(), "dispatch", "has not been dispatched"),
    ]
    for order, kind, words in cases:
        with pytest.raises(NothingToResend, match=words):
            lifecycle.resend_email(order, kind, support, NOW, "why")


def test_a_rejected_order_needs_support_from_its_rejection_until_erased():
    order = _released()
    assert not order.needs_support and order.support_since is None
    rejected = lifecycle.reject(order, "no such address", Source("manufacturer"), NOW + timedelta(hours=2)).order
    assert rejected.needs_support and rejected.support_since == NOW + timedelta(hours=2)
    erased = lifecycle.erase_personal_data(rejected, Source("system"), NOW + timedelta(days=31), "retention").order
    assert not erased.needs_support and item_values(erased, RETENTION)["support_needed"] is None


# -- A posted kit that comes back ---------------------------------------------------------------------


def dispatched(deps, email="sam@example.com") -> str:
    reference = placed(deps, "FA/1002", email=email)
    report = {"kit_code": "K1", "carrier": "Royal Mail", "tracking_reference": "T1", "dispatched_at": NOW.isoformat()}
    dispatch_fulfilment(fulfilment_id_of(reference), report, "k", deps)
    return reference


def test_a_returned_parcel_applied_twice_is_recorded_once_and_emails_the_holder_once():
    deps = world()
    reference = dispatched(deps)
    once = lifecycle.report_returned(deps.orders.get(reference), "addressee unknown", Source("manufacturer:k"), NOW)
    assert once.order.fulfilment is FulfilmentState.RETURNED and once.order.returned_at == NOW
    assert once.order.return_reason == "addressee unknown" and once.effects == {Effect.EMAIL_RETURNED}
    twice = lifecycle.report_returned(once.order, "addressee unknown", Source("manufacturer:k"), NOW)
    assert not twice.changed and twice.order == once.order
    services.apply_change(
        reference, lambda o: lifecycle.report_returned(o, "gone away", Source("manufacturer:k"), NOW), deps
    )
    services.apply_change(
        reference, lambda o: lifecycle.report_returned(o, "gone away", Source("manufacturer:k"), NOW), deps
    )
    subjects = [subject for _, subject, _ in deps.mailer.sent]
    assert len(subjects) == 3 and "came back" in subjects[-1]
    assert "gone away" not in deps.mailer.sent[-1][2]


def test_a_returned_parcel_keeps_its_address_until_support_resolves_it():
    deps = world()
    reference = dispatched(deps)
    outcome = lifecycle.report_returned(deps.orders.get(reference), "refused", Source("manufacturer:k"), NOW)
    assert outcome.order.personal_data_until(timedelta(days=30)) is None


def test_a_return_without_a_dispatch_is_a_conflict_and_an_unreleased_order_is_not_found():
    deps = world()
    released = deps.orders.get(placed(deps, "FA/1002"))
    with pytest.raises(FulfilmentConflict, match="never dispatched: reject it instead"):
        lifecycle.report_returned(released, "x", Source("manufacturer:k"), NOW)
    rejected = lifecycle.reject(released, "no such street", Source("manufacturer:k"), NOW).order
    with pytest.raises(FulfilmentConflict, match="was rejected earlier"):
        lifecycle.report_returned(rejected, "x", Source("manufacturer:k"), NOW)
    unreleased = dataclasses.replace(released, fulfilment=FulfilmentState.NOT_RELEASED, released_at=None)
    with pytest.raises(OrderNotFound):
        lifecycle.report_returned(unreleased, "x", Source("manufacturer:k"), NOW)


# -- Support resolves a rejected or returned order by cancelling it ------------------------------------


def test_resolving_by_cancelling_applied_twice_ends_the_order_once():
    support = Source("operator:alice")
    rejected = lifecycle.reject(_released(), "no such street", Source("manufacturer:k"), NOW).order
    once = lifecycle.resolve_by_cancelling(rejected, support, NOW + timedelta(days=1), "holder moved")
    assert (once.order.state, once.order.fulfilment) == (OrderState.CANCELLED, FulfilmentState.CANCELLED)
    assert once.order.cancelled_by_support and not once.order.needs_support
    assert once.effects == {Effect.RELEASE_CLAIM, Effect.EMAIL_CANCELLATION}  # free: nothing to refund
    assert once.order.history[-1].actor == "operator:alice" and "holder moved" in once.order.history[-1].change
    twice = lifecycle.resolve_by_cancelling(once.order, support, NOW + timedelta(days=2), "holder moved")
    assert not twice.changed and twice.order == once.order


def test_resolving_a_paid_rejected_order_refunds_it_and_a_crash_before_the_refund_leaves_it_owed():
    deps = world()
    reference = paid_and_released(deps)
    rejected = lifecycle.reject(deps.orders.get(reference), "no such street", Source("manufacturer:k"), NOW).order
    outcome = lifecycle.resolve_by_cancelling(rejected, Source("operator:alice"), NOW, "address wrong")
    assert Effect.REFUND_IN_FULL in outcome.effects
    assert lifecycle.outstanding(outcome.order) == {Effect.REFUND_IN_FULL}  # until Stripe's refund is recorded


def test_only_a_rejected_or_returned_order_can_be_resolved():
    from chalicelib.domain.errors import NothingToResolve

    with pytest.raises(NothingToResolve, match="not waiting for support"):
        lifecycle.resolve_by_cancelling(_released(), Source("operator:alice"), NOW, "why")


def test_a_rejected_order_keeps_its_address_until_resolved_then_the_usual_period():
    rejected = lifecycle.reject(_released(), "no such street", Source("manufacturer:k"), NOW).order
    assert rejected.personal_data_until(RETENTION) is None
    resolved_at = NOW + timedelta(days=90)
    resolved = lifecycle.resolve_by_cancelling(rejected, Source("operator:alice"), resolved_at, "why").order
    assert resolved.personal_data_until(RETENTION) == resolved_at + RETENTION


def test_the_rejection_email_gives_the_campaigns_contact_and_never_the_kit_makers_reason():
    deps = fake_dependencies(CAMPAIGN_CONTACT_EMAIL="enquiries@tracekit.invalid")
    load_register(deps, register_row("FA/1002", "SW1A 2AA", free_kit="yes"))
    reference = placed(deps, "FA/1002")
    services.apply_change(
        reference, lambda o: lifecycle.reject(o, "no such street", Source("manufacturer:k"), NOW), deps
    )
    _, subject, body = deps.mailer.sent[-1]
    assert "could not send" in subject and "enquiries@tracekit.invalid" in body
    assert "no such street" not in body and "certificate" not in body.lower() and "firearm" not in body.lower()


# -- A kit that has not arrived: each transition applied twice ---------------------------------------


def _posted(email: str = "sam@example.com"):
    order = _released(email)
    details = Dispatch("K1", "Royal Mail", "T1", NOW)
    return lifecycle.dispatch(order, details, Source("manufacturer:k"), NOW).order


def test_a_report_before_the_days_is_refused_with_the_date_and_from_then_applied_twice_is_one_request():
    posted = _posted()
    with pytest.raises(ReplacementTooEarly) as early:
        lifecycle.request_replacement(posted, Source("holder"), NOW + timedelta(days=9), 10)
    assert early.value.allowed_from == NOW + timedelta(days=10)
    once = lifecycle.request_replacement(posted, Source("holder"), NOW + timedelta(days=10), 10)
    assert once.order.replacement_open and once.order.needs_support
    assert once.order.support_since == NOW + timedelta(days=10)
    assert once.order.personal_data_until(timedelta(days=30)) is None
    assert once.effects == {Effect.EMAIL_REPLACEMENT_REQUESTED}
    twice = lifecycle.request_replacement(once.order, Source("holder"), NOW + timedelta(days=11), 10)
    assert (twice.changed, twice.order) == (False, once.order)


def test_a_report_of_a_kit_not_yet_posted_is_refused():
    with pytest.raises(FulfilmentConflict):
        lifecycle.request_replacement(_released(), Source("holder"), NOW + timedelta(days=30), 10)


def _requested():
    return lifecycle.request_replacement(_posted(), Source("holder"), NOW + timedelta(days=10), 10).order


def test_an_approval_applied_twice_starts_one_next_fulfilment_at_no_charge():
    requested, at = _requested(), NOW + timedelta(days=11)
    once = lifecycle.approve_replacement(requested, Source("operator:ann"), at, "lost in post")
    order = once.order
    assert once.effects == {Effect.RELEASE_TO_MANUFACTURER, Effect.EMAIL_REPLACEMENT_APPROVED}
    assert (order.fulfilment, order.fulfilment_attempt, order.replacements_approved) == (
        FulfilmentState.NOT_RELEASED,
        2,
        1,
    )
    assert order.fulfilment_id == fulfilment_id_of(order.reference) + "-2" and order.awaits_release
    assert (order.dispatch, order.released_at, order.payment, order.amount) == (
        None,
        None,
        requested.payment,
        requested.amount,
    )
    [earlier] = order.earlier_fulfilments
    assert (earlier.fulfilment_id, earlier.state, earlier.dispatch) == (
        requested.fulfilment_id,
        FulfilmentState.DISPATCHED,
        requested.dispatch,
    )
    assert not order.needs_support and order.history[-1].actor == "operator:ann"
    twice = lifecycle.approve_replacement(order, Source("operator:ann"), at, "lost in post")
    assert (twice.changed, twice.order) == (False, order)
    released = lifecycle.release(order, at)
    assert released.effects == frozenset() and released.order.fulfilment is FulfilmentState.RELEASED


def test_a_second_replacement_needs_an_admins_override():
    first = lifecycle.approve_replacement(_requested(), Source("operator:ann"), NOW, "lost").order
    first = lifecycle.release(first, NOW + timedelta(days=12)).order
    again_posted = Dispatch("K2", "Royal Mail", "T2", NOW + timedelta(days=13))
    first = lifecycle.dispatch(first, again_posted, Source("manufacturer:k"), NOW + timedelta(days=13)).order
    asked = lifecycle.request_replacement(first, Source("holder"), NOW + timedelta(days=23), 10).order
    with pytest.raises(FulfilmentConflict):
        lifecycle.approve_replacement(asked, Source("operator:ann"), NOW + timedelta(days=24), "lost again")
    admin = lifecycle.approve_replacement(asked, Source("operator:bo"), NOW, "lost again", admin_override=True)
    assert admin.order.fulfilment_attempt == 3 and admin.order.replacements_approved == 2
    assert "admin override" in admin.order.history[-1].change


def test_a_decline_applied_twice_closes_the_request_once_and_the_usual_retention_applies():
    requested = _requested()
    once = lifecycle.decline_replacement(requested, Source("operator:ann"), NOW, "signed for")
    assert once.effects == {Effect.EMAIL_REPLACEMENT_DECLINED} and not once.order.needs_support
    assert once.order.replacement_decline_reason == "signed for"
    assert once.order.personal_data_until(timedelta(days=30)) == NOW + timedelta(days=30)
    twice = lifecycle.decline_replacement(once.order, Source("operator:ann"), NOW, "signed for")
    assert (twice.changed, twice.order) == (False, once.order)
    with pytest.raises(FulfilmentConflict):
        lifecycle.request_replacement(once.order, Source("holder"), NOW + timedelta(days=40), 10)


def test_a_kit_makers_report_on_a_superseded_fulfilment_is_unchanged_if_the_same_else_a_conflict():
    requested = _requested()
    order = lifecycle.approve_replacement(requested, Source("operator:ann"), NOW, "lost").order
    decide = lambda o: lifecycle.dispatch(o, requested.dispatch, Source("manufacturer:k"), NOW)  # type: ignore[arg-type]  # noqa: E731
    assert not on_attempt(order, 1, decide).changed
    other = Dispatch("K9", "DPD", "T9", NOW)
    with pytest.raises(FulfilmentConflict, match="superseded"):
        on_attempt(order, 1, lambda o: lifecycle.dispatch(o, other, Source("manufacturer:k"), NOW))
    with pytest.raises(OrderNotFound):
        on_attempt(order, 3, decide)


def test_fulfilment_ids_of_attempts_are_derived_from_the_reference():
    assert fulfilment_id_of("TK-7K3MQ-9X2HD") == "F-7K3MQ-9X2HD" == fulfilment_id_of("TK-7K3MQ-9X2HD", 1)
    assert fulfilment_id_of("TK-7K3MQ-9X2HD", 2) == "F-7K3MQ-9X2HD-2"
    assert order_reference_of("F-7K3MQ-9X2HD-2") == "TK-7K3MQ-9X2HD" and fulfilment_attempt_of("F-7K3MQ-9X2HD-2") == 2
    assert fulfilment_attempt_of("F-7K3MQ-9X2HD") == 1
    for not_an_id in ("F-7K3MQ-9X2HD-1", "F-7K3MQ-9X2HD-02", "F-7K3MQ-9X2HD-", "F-7K3MQ-9X2HD-2-2"):
        assert order_reference_of(not_an_id) is None and fulfilment_attempt_of(not_an_id) is None


def test_an_order_with_earlier_fulfilments_reads_back_from_its_item_as_it_was():
    order = lifecycle.approve_replacement(_requested(), Source("operator:ann"), NOW, "lost").order
    from chalicelib.adapters.dynamodb_order_items import COLUMNS, order_from

    record = type("Record", (), {"version": 1, "processed_events": None, "history": []})()
    for name, value in item_values(order, timedelta(days=30)).items():
        setattr(record, name, value)
    for column in COLUMNS:
        if not hasattr(record, column.name):
            setattr(record, column.name, None)
    back = order_from(record)
    assert back.earlier_fulfilments == order.earlier_fulfilments and back.fulfilment_attempt == 2


# -- Support resolves a rejected or returned order with a corrected address --------------------------


def test_resolving_with_a_new_address_applied_twice_sends_the_next_fulfilment_once():
    support = Source("operator:ann")
    rejected = lifecycle.reject(_released(), "no such street", Source("manufacturer:k"), NOW).order
    corrected = parse_delivery_details(delivery_form(address_line_1="Flat 2, 1 High Street", email=""))
    once = lifecycle.resolve_with_new_address(rejected, corrected, support, NOW + timedelta(days=1), "flat number")
    order = once.order
    assert once.effects == {Effect.RELEASE_TO_MANUFACTURER, Effect.EMAIL_SENDING_AGAIN}
    assert (order.fulfilment, order.fulfilment_attempt, order.awaits_release) == (FulfilmentState.NOT_RELEASED, 2, True)
    assert order.delivery.address_line_1 == "Flat 2, 1 High Street"
    assert order.delivery.email == rejected.delivery.email  # the holder's email is theirs, not support's to change
    assert order.rejection_reason is None and not order.needs_support
    [earlier] = order.earlier_fulfilments
    assert (earlier.fulfilment_id, earlier.state) == (rejected.fulfilment_id, FulfilmentState.REJECTED)
    assert "Flat 2" not in order.history[-1].change and order.history[-1].actor == "operator:ann"
    twice = lifecycle.resolve_with_new_address(order, corrected, support, NOW + timedelta(days=2), "flat number")
    assert (twice.changed, twice.order) == (False, order)
    released = lifecycle.release(order, NOW + timedelta(days=1)).order
    again = lifecycle.resolve_with_new_address(released, corrected, support, NOW + timedelta(days=2), "flat number")
    assert not again.changed


def test_a_returned_order_sent_again_is_its_next_fulfilment_and_an_order_in_progress_is_refused():
    from chalicelib.domain.errors import NothingToResolve

    posted = lifecycle.dispatch(
        _released(), Dispatch("K1", "Royal Mail", "T1", NOW), Source("manufacturer:k"), NOW
    ).order
    returned = lifecycle.report_returned(posted, "not known at address", Source("manufacturer:k"), NOW).order
    corrected = parse_delivery_details(delivery_form(town="Leeds"))
    sent = lifecycle.resolve_with_new_address(returned, corrected, Source("operator:ann"), NOW, "moved").order
    assert sent.fulfilment_attempt == 2 and sent.earlier_fulfilments[0].dispatch == posted.dispatch
    assert sent.personal_data_until(RETENTION) is None  # in progress again
    with pytest.raises(NothingToResolve):
        lifecycle.resolve_with_new_address(_released(), corrected, Source("operator:ann"), NOW, "moved")
    with pytest.raises(NothingToResolve):  # an open report of a kit not arrived is not for resolve --cancel
        requested = lifecycle.request_replacement(posted, Source("holder"), NOW + timedelta(days=10), 10).order
        lifecycle.resolve_by_cancelling(requested, Source("operator:ann"), NOW, "why")


def test_an_amendment_the_kit_maker_never_acknowledged_is_not_owed_for_the_next_fulfilment():
    """A change of address after release owes the kit maker an amendment of that fulfilment; once
    support sends the order again as its next fulfilment, whose message carries the current address,
    the old amendment is neither sent nor listed for the new one."""
    released = _released()
    new_address = parse_delivery_details(delivery_form(address_line_1="5 Other Road"))
    changed = lifecycle.change_address(released, new_address, Source("holder"), NOW).order
    assert changed.amendment_unsent and changed.amendment_to_tell
    rejected = lifecycle.reject(changed, "no such road", Source("manufacturer:k"), NOW).order
    again = lifecycle.resolve_with_new_address(rejected, new_address, Source("operator:ann"), NOW, "typo").order
    sent_again = lifecycle.release(again, NOW).order
    assert sent_again.fulfilment_id.endswith("-2") and sent_again.open_for_manufacturer
    assert not sent_again.amendment_unsent and not sent_again.amendment_to_tell
    assert lifecycle.outstanding(sent_again) == frozenset()


def test_support_changing_the_address_sends_a_rejected_order_again_and_changes_any_other_in_place():
    deps = world()
    new = parse_delivery_details(delivery_form(**NEW_ADDRESS))
    support = Source("operator:ann")
    waiting = deps.orders.get(placed(deps, "FA/1002"))
    rejected = lifecycle.reject(waiting, "no such street", Source("manufacturer:k"), NOW).order
    sent = lifecycle.support_changes_address(rejected, new, support, NOW, "holder rang").order
    assert (sent.fulfilment_attempt, sent.delivery.postcode) == (2, "LS1 4AP")
    assert lifecycle.support_changes_address(sent, new, support, NOW, "holder rang").changed is False

    changed = lifecycle.support_changes_address(waiting, new, support, NOW, "holder rang")
    assert changed.order.fulfilment_attempt == 1 and changed.order.amendments_issued == 1
    assert changed.order.history[-1].change.startswith("delivery address changed by support: holder rang")
    accepted = lifecycle.accept(waiting, Source("manufacturer:k"), NOW).order
    with pytest.raises(AddressNotChangeable):
        lifecycle.support_changes_address(accepted, new, support, NOW, "holder rang")

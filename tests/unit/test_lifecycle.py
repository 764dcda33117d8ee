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
from chalicelib.domain.errors import FulfilmentConflict, OrderNotFound
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
from chalicelib.domain.references import fulfilment_id_of, new_order_reference
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

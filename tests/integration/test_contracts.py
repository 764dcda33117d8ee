"""One contract per port, run against the in-memory fake and the real adapter on moto alike.

The real adapters run against moto's HTTP server (tests/conftest.py), so what passes here is what
PynamoDB and boto3 actually send."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import boto3
import pytest

from chalicelib.adapters.dynamodb import build_models
from chalicelib.adapters.dynamodb_attempts import DynamoAttempts
from chalicelib.adapters.dynamodb_contacts import DynamoContacts, build_contact_model
from chalicelib.adapters.dynamodb_register import DynamoRegister
from chalicelib.adapters.dynamodb_fulfilments import FulfilmentQueries
from chalicelib.adapters.dynamodb_finance import FinanceOrders
from chalicelib.adapters.dynamodb_orders import DynamoOrders
from chalicelib.bootstrap import key_store, personal_fields, recipient_key, tables_for
from chalicelib.adapters.sqs_queue import SqsFulfilmentQueue
from chalicelib.domain.changes import Effect, Source
from chalicelib.domain.contacts import CONFIRM, WITHDRAW, ContactLink, confirm_contact
from chalicelib.domain.delivery import parse_delivery_details, parse_new_address
from chalicelib.domain.eligibility import Eligibility, EligibilityReason
from chalicelib.domain.errors import (
    AuditEntryExists,
    CertificateAlreadyClaimed,
    ConcurrentChange,
    ContactLinkNotUsable,
    NothingToRollBack,
    OrderAlreadyExists,
    OrderNotFound,
    RegisterChanged,
)
from chalicelib.domain.fulfilment import fulfilment_message_for
from chalicelib.domain.money import Money, free
from chalicelib.domain.lifecycle import (
    accept_payment,
    change_address,
    dispatch,
    reconcile_money,
    erase_personal_data,
    expire_checkout,
    open_checkout,
    pay_as_expected,
    place_order,
    reject,
    release,
)
from chalicelib.domain.orders import Dispatch, FulfilmentState, HistoryEntry, OrderState, PaymentState
from chalicelib.domain.payments import MoneyView
from chalicelib.domain.reconciliation import Period
from chalicelib.domain.credentials import Scope, issue_key, read_token
from chalicelib.domain.register import CertificateStatus, RegisterEntry, RegisterState
from chalicelib.domain.throttle import Check, Place, Reservation
from chalicelib.ports import CertificateLookup
from tests.builders import NOW, days_from_now, delivery_form
from tests.fakes import (
    InMemoryApiKeys,
    InMemoryAttempts,
    InMemoryAuditLog,
    InMemoryContacts,
    InMemoryExports,
    InMemoryFulfilmentQueue,
    InMemoryFulfilments,
    InMemoryFinanceOrders,
    InMemoryOrders,
    InMemoryRegister,
)

LEASE = timedelta(minutes=10)


@pytest.fixture(params=["fake", "dynamodb"])
def stores(request):
    """(register, orders) sharing one set of claims, as the real tables do."""
    if request.param == "fake":
        claims: dict[str, int] = {}
        return InMemoryRegister(claims), InMemoryOrders(claims)
    settings = request.getfixturevalue("settings")
    models = build_models(tables_for(settings))
    return DynamoRegister(models), DynamoOrders(models, sealer(settings), recipient_key=recipient_key(settings))


def sealer(settings):
    return personal_fields(settings, boto3.session.Session(region_name=settings.region))


def opened(orders, order):
    """The order with its delivery details in clear, as the readers that may see them get them."""
    return dataclasses.replace(order, delivery=orders.delivery_of(order))


def entry(key: str = "k1", **changes) -> RegisterEntry:
    base = RegisterEntry(key, "mac", CertificateStatus.IN_FORCE, days_from_now(400), False)
    return dataclasses.replace(base, **changes)


STANDARD_PRICE = Money(895)


def an_order(reference: str = "TK-AAAAA-00001", certificate_key: str = "k1", price: Money = STANDARD_PRICE):
    reason = EligibilityReason.STANDARD_PRICE if price.pence else EligibilityReason.REGISTER_FLAG
    return place_order(
        reference,
        certificate_key,
        Eligibility(price, reason),
        parse_delivery_details(delivery_form(address_line_2="Flat 2", email="")),
        NOW,
    ).order


def paid_once(orders, reference: str, event_id: str = "evt_1", money: Money = STANDARD_PRICE):
    return orders.apply_guarded(reference, pay_as_expected(money, "pi_1", Source("stripe", event_id), NOW))


def record_release(orders, reference: str, now=NOW, held_until=None):
    """What services.changes does once the message went: the lifecycle's release, saved."""
    stored = orders.get(reference)
    outcome = release(stored, now)
    if outcome.changed:
        orders.save(stored, outcome.order, outcome.effects, mail_held_until=held_until)
    return outcome.changed


def make_live(register, *entries) -> int:
    """A generation of these entries, switched to; returns its number."""
    expected = register.state()
    generation = register.start_generation()
    register.save_all(generation, entries)
    register.switch(generation, expected, len(entries), NOW)
    return generation


class TestRegisterContract:
    def test_an_empty_register_finds_nothing(self, stores):
        register, _ = stores
        assert register.state() == RegisterState()
        assert register.find("k1") == CertificateLookup(None, 0)

    def test_a_live_entry_is_found_with_no_claims(self, stores):
        register, _ = stores
        make_live(register, entry("k1"), entry("k2", free_kit=True))
        found = register.find("k2")
        assert found.entry == entry("k2", free_kit=True) and found.kits_claimed == 0
        assert register.find("missing").entry is None

    def test_a_generation_is_not_seen_until_it_is_switched_to(self, stores):
        register, _ = stores
        first = make_live(register, entry("k1"))
        expected = register.state()
        second = register.start_generation()
        assert register.save_all(second, [entry("k1", status=CertificateStatus.REVOKED), entry("k2")]) == 2
        assert register.find("k1").entry == entry("k1") and register.find("k2").entry is None
        after = register.switch(second, expected, 2, NOW)
        assert (after.live, after.previous, after.live_entries, after.previous_entries) == (second, first, 2, 1)
        assert after.live_since == NOW and register.state() == after
        assert register.find("k1").entry.status is CertificateStatus.REVOKED and register.find("k2").entry

    def test_a_switch_is_refused_if_the_register_moved_or_a_later_generation_started(self, stores):
        register, _ = stores
        make_live(register, entry("k1"))
        expected = register.state()
        overtaken = register.start_generation()
        register.start_generation()  # another import (or a prune's fence) started after it
        with pytest.raises(RegisterChanged):
            register.switch(overtaken, expected, 0, NOW)
        make_live(register, entry("k2"))
        later = register.start_generation()
        with pytest.raises(RegisterChanged):
            register.switch(later, expected, 0, NOW)  # read before the last switch
        assert register.find("k2").entry is not None

    def test_a_rollback_swaps_live_and_previous_if_the_register_is_as_read(self, stores):
        register, _ = stores
        first = make_live(register, entry("k1"))
        with pytest.raises(NothingToRollBack):
            register.roll_back(register.state(), NOW)
        second = make_live(register, entry("k2"))
        stale = register.state()
        rolled = register.roll_back(stale, NOW)
        assert (rolled.live, rolled.previous) == (first, second) and register.find("k1").entry is not None
        with pytest.raises(RegisterChanged):
            register.roll_back(stale, NOW)
        assert register.roll_back(register.state(), NOW).live == second

    def test_a_generation_is_listed_and_deleted_whole(self, stores):
        register, _ = stores
        generation = register.start_generation()
        assert register.save_all(generation, (entry(f"k{i}") for i in range(60))) == 60  # batches, shards
        assert generation in register.state().generations
        assert sorted(e.reference_key for e in register.entries(generation)) == sorted(f"k{i}" for i in range(60))
        assert register.delete_generation(generation) == 60
        assert list(register.entries(generation)) == [] and generation not in register.state().generations
        assert register.delete_generation(generation) == 0

    def test_generation_numbers_are_never_handed_out_twice(self, stores):
        register, _ = stores
        numbers = [register.start_generation() for _ in range(3)]
        assert numbers == sorted(set(numbers)) and register.state().started == numbers[-1]

    def test_a_check_reads_the_generation_another_process_switched_to(self, stores, request):
        register, _ = stores
        other = (
            register
            if isinstance(register, InMemoryRegister)
            else DynamoRegister(build_models(tables_for(request.getfixturevalue("settings"))))
        )
        make_live(register, entry("k1"))
        assert register.find("k1").entry is not None  # this container now knows that generation
        make_live(other, entry("k1", status=CertificateStatus.EXPIRED))  # the operator's import
        assert register.find("k1").entry.status is CertificateStatus.EXPIRED

    def test_claims_made_by_orders_are_seen_by_the_register(self, stores):
        register, orders = stores
        make_live(register, entry("k1"))
        orders.create_claiming_certificate(an_order(), 1)
        assert register.find("k1").kits_claimed == 1


@pytest.fixture(params=["fake", "dynamodb"])
def attempts(request):
    if request.param == "fake":
        return InMemoryAttempts()
    models = build_models(tables_for(request.getfixturevalue("settings")))
    return DynamoAttempts(models.attempts, models.connection)


def places(*specs: tuple[str, int], expires=NOW + timedelta(minutes=30)) -> tuple[Place, ...]:
    return tuple(Place(key, limit, expires) for key, limit in specs)


class TestAttemptsContract:
    def test_a_reservation_takes_a_place_in_each_counter_up_to_its_limit(self, attempts):
        granted = [attempts.reserve(Reservation(places(("a:w", 3), ("a:d", 10)), ())) for _ in range(5)]
        assert granted == [True, True, True, False, False]
        # a:d took three places, not five: a refused reservation added nothing anywhere
        assert [attempts.reserve(Reservation(places(("a:d", 4)), ())) for _ in range(2)] == [True, False]

    def test_a_reservation_is_all_or_nothing(self, attempts):
        assert attempts.reserve(Reservation(places(("full", 1)), ()))
        assert not attempts.reserve(Reservation(places(("other", 5), ("full", 1)), ()))
        assert [attempts.reserve(Reservation(places(("other", 1)), ())) for _ in range(2)] == [True, False]

    def test_a_check_refuses_while_its_counter_is_at_its_limit_and_passes_when_absent(self, attempts):
        assert attempts.reserve(Reservation(places(("w1", 2)), (Check("w0", 2),)))
        assert attempts.reserve(Reservation(places(("w1", 2)), ()))
        assert not attempts.reserve(Reservation(places(("w2", 2)), (Check("w1", 2),)))
        assert attempts.reserve(Reservation(places(("w2", 2)), (Check("w1", 3),)))

    def test_simultaneous_reservations_get_at_most_the_limit(self, attempts):
        with ThreadPoolExecutor(max_workers=12) as pool:
            granted = list(pool.map(lambda _: attempts.reserve(Reservation(places(("hot", 5)), ())), range(24)))
        assert granted.count(True) == 5

    def test_counters_past_their_expiry_are_swept(self, attempts):
        attempts.reserve(Reservation(places(("soon", 5)) + places(("later", 5), expires=NOW + timedelta(days=2)), ()))
        assert attempts.sweep(NOW + timedelta(hours=1)) == 1
        assert attempts.sweep(NOW + timedelta(hours=1)) == 0
        # the swept counter starts again from nothing; the other still holds its one
        assert attempts.reserve(Reservation(places(("soon", 1)), ()))
        assert not attempts.reserve(Reservation(places(("later", 1)), ()))


class TestOrdersContract:
    def test_an_order_round_trips_intact(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        assert opened(orders, orders.get(order.reference)) == order

    def test_an_order_is_found_by_its_recipients_surname_and_postcode_until_moved_or_erased(self, stores):
        _, orders = stores
        ann, namesake, neighbour = (
            dataclasses.replace(an_order(f"TK-AAAAA-0000{n}", f"k{n}"), delivery=parse_delivery_details(form))
            for n, form in (
                (1, delivery_form(full_name="Ann O'Neill", postcode="n1 9al")),
                (2, delivery_form(full_name="Bea Oneill", postcode="N1 9AL")),
                (3, delivery_form(full_name="Cy Other", postcode="N1 9AL")),
            )
        )
        for order in (ann, namesake, neighbour):
            orders.create_claiming_certificate(order, 1)
        both = sorted([ann.reference, namesake.reference])
        assert orders.find_by_recipient("O'NEILL", "n19al") == both  # case, spaces and punctuation aside
        assert orders.find_by_recipient("  oneill ", "N1  9AL") == both
        assert orders.find_by_recipient("Other", "N1 9AL") == [neighbour.reference]
        assert orders.find_by_recipient("Oneill", "SW1A 2AA") == []
        assert orders.find_by_recipient("", "N1 9AL") == []

        stored = orders.get(ann.reference)
        moved = parse_new_address(delivery_form(full_name="Ann Newname", postcode="E1 6AN"))
        orders.save(stored, change_address(opened(orders, stored), moved, Source("holder"), NOW).order)
        assert orders.find_by_recipient("Oneill", "N1 9AL") == [namesake.reference]
        assert orders.find_by_recipient("Newname", "E1 6AN") == [ann.reference]

        stored = orders.get(ann.reference)
        orders.save(stored, erase_personal_data(stored, Source("operator:test"), NOW, "request").order)
        assert orders.find_by_recipient("Newname", "E1 6AN") == []

    def test_the_release_puts_the_confirmation_in_the_outbox_held_by_its_caller_then_one_claimer(self, stores):
        _, orders = stores
        order = an_order(price=free())
        orders.create_claiming_certificate(order, 1)
        assert orders.claim_due_notifications(order.reference, NOW, NOW + LEASE) is None  # nothing due yet
        orders.save(order, dataclasses.replace(order, delivery=parse_delivery_details(delivery_form())))
        assert record_release(orders, order.reference, held_until=NOW + LEASE) is True
        assert orders.notifications_due(NOW) == []  # the releasing caller holds it
        assert orders.claim_due_notifications(order.reference, NOW, NOW + LEASE) is None
        assert orders.notifications_due(NOW + LEASE) == [(order.reference, frozenset({"confirmation"}), 0)]
        later = NOW + LEASE
        claimed, kinds, failures = orders.claim_due_notifications(order.reference, later, later + LEASE)
        assert (claimed.reference, claimed.fulfilment, kinds, failures) == (
            order.reference,
            FulfilmentState.RELEASED,
            frozenset({"confirmation"}),
            0,
        )
        assert orders.claim_due_notifications(order.reference, later, later + LEASE) is None  # the lease holds
        assert orders.notifications_due(later) == []
        assert orders.claim_due_notifications(order.reference, later + LEASE, later + 2 * LEASE) is not None
        assert orders.claim_due_notifications("TK-NONE0-NONE0", NOW, NOW + LEASE) is None

    def test_a_dispatch_puts_its_email_in_the_outbox_in_the_same_write(self, stores):
        _, orders = stores
        order = an_order(price=free())
        orders.create_claiming_certificate(order, 1)
        record_release(orders, order.reference)  # no email: nothing in the outbox
        assert orders.notifications_due(NOW + timedelta(days=1)) == []
        stored = orders.get(order.reference)
        posted = dataclasses.replace(
            stored, history=stored.history + (HistoryEntry(NOW, "manufacturer:k", "dispatched"),)
        )
        orders.save(stored, posted, frozenset({Effect.EMAIL_DISPATCH}))
        assert orders.notifications_due(NOW) == [(order.reference, frozenset({"dispatch"}), 0)]

    def test_a_failed_email_stays_in_the_outbox_and_is_due_again_after_its_time_until_it_ends(self, stores):
        _, orders = stores
        order, other = an_order("TK-AAAAA-00001"), an_order("TK-AAAAA-00002", "k2")
        orders.create_claiming_certificate(order, 1)
        orders.create_claiming_certificate(other, 1)
        orders.defer_notification(order.reference, "dispatch", NOW + timedelta(minutes=15))
        orders.defer_notification(order.reference, "confirmation", NOW + timedelta(minutes=15))
        assert orders.notifications_due(NOW) == []
        [(reference, kinds, failures)] = orders.notifications_due(NOW + timedelta(minutes=15))
        assert (reference, kinds, failures) == (order.reference, frozenset({"dispatch", "confirmation"}), 2)
        orders.end_retry(order.reference, "dispatch")
        assert orders.notifications_due(NOW + timedelta(hours=1)) == [(order.reference, frozenset({"confirmation"}), 2)]
        orders.end_retry(order.reference, "confirmation")
        orders.end_retry(order.reference, "confirmation")  # idempotent
        orders.end_retry("TK-NONE0-NONE0", "dispatch")  # creates nothing
        with pytest.raises(OrderNotFound):
            orders.get("TK-NONE0-NONE0")
        assert orders.notifications_due(NOW + timedelta(days=1)) == []
        orders.defer_notification(order.reference, "dispatch", NOW)  # a later failure counts from one again
        assert orders.notifications_due(NOW) == [(order.reference, frozenset({"dispatch"}), 1)]
        assert opened(orders, orders.get(order.reference)) == order  # none of it touches what the domain reads

    def test_an_unknown_order_is_not_found(self, stores):
        _, orders = stores
        with pytest.raises(OrderNotFound):
            orders.get("TK-NONE0-NONE0")

    def test_the_kit_limit_per_certificate_is_enforced(self, stores):
        _, orders = stores
        orders.create_claiming_certificate(an_order("TK-AAAAA-00001"), 2)
        orders.create_claiming_certificate(an_order("TK-AAAAA-00002"), 2)
        with pytest.raises(CertificateAlreadyClaimed):
            orders.create_claiming_certificate(an_order("TK-AAAAA-00003"), 2)
        with pytest.raises(OrderNotFound):
            orders.get("TK-AAAAA-00003")

    def test_simultaneous_confirmations_of_one_certificate_make_one_order(self, stores):
        _, orders = stores
        candidates = [an_order(f"TK-RACE0-0000{i}") for i in range(6)]

        def attempt(order):
            try:
                orders.create_claiming_certificate(order, 1)
                return order.reference
            except CertificateAlreadyClaimed:
                return None

        with ThreadPoolExecutor(max_workers=6) as pool:
            winners = [ref for ref in pool.map(attempt, candidates) if ref]
        assert len(winners) == 1
        stored = []
        for order in candidates:
            try:
                stored.append(orders.get(order.reference).reference)
            except OrderNotFound:
                pass
        assert stored == winners

    def test_the_same_reference_twice_is_reported_as_already_placed(self, stores):
        _, orders = stores
        orders.create_claiming_certificate(an_order(), 2)
        with pytest.raises(OrderAlreadyExists):
            orders.create_claiming_certificate(an_order(), 2)
        register, _ = stores
        assert register.find("k1").kits_claimed == 1

    def test_payment_is_recorded_once_per_event(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        first = paid_once(orders, order.reference)
        assert paid_once(orders, order.reference) is None
        assert (first.state, first.payment, first.payment_intent_id) == (
            OrderState.CONFIRMED,
            PaymentState.PAID,
            "pi_1",
        )
        assert orders.get(order.reference) == first and first.processed_events == {"evt_1"}
        assert first.history[-1] == HistoryEntry(NOW, "stripe", "paid", "evt_1") and first.hold_until is None

    def test_the_one_write_path_and_the_general_path_store_the_same_paid_order(self, stores):
        _, orders = stores
        fast, slow = an_order("TK-AAAAA-00001", "k1"), an_order("TK-AAAAA-00002", "k2")
        orders.create_claiming_certificate(fast, 1)
        orders.create_claiming_certificate(slow, 1)
        by_one_write = paid_once(orders, fast.reference)
        outcome = accept_payment(slow, Money(895), "pi_1", Source("stripe", "evt_1"), NOW)
        orders.save(slow, outcome.order, outcome.effects)
        by_rules = opened(orders, orders.get(slow.reference))
        assert dataclasses.replace(by_rules, reference=fast.reference, certificate_key="k1") == opened(
            orders, by_one_write
        )

    def test_a_payment_that_does_not_match_takes_no_single_write(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        assert paid_once(orders, order.reference, money=Money(895, "eur")) is None
        assert orders.get(order.reference).payment is PaymentState.AWAITING

    def test_a_change_saved_on_a_stale_read_is_refused(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        stale = orders.get(order.reference)
        orders.save(stale, open_checkout(stale, "cs_1", "https://pay/cs_1", NOW, 1, NOW).order)
        with pytest.raises(ConcurrentChange):
            orders.save(stale, open_checkout(stale, "cs_2", "https://pay/cs_2", NOW, 1, NOW).order)
        assert orders.get(order.reference).checkout_session_id == "cs_1"

    def test_saving_a_change_moves_the_claim_with_it(self, stores):
        register, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        expired = expire_checkout(order, None, Source("stripe", "evt_x"), NOW)
        orders.save(order, expired.order, expired.effects)
        assert register.find("k1").kits_claimed == 0
        stored = orders.get(order.reference)
        assert stored.state is OrderState.EXPIRED and stored.processed_events == {"evt_x"}
        late = accept_payment(stored, Money(895), "pi_1", Source("stripe", "evt_y"), NOW)
        orders.save(stored, late.order, late.effects)
        assert register.find("k1").kits_claimed == 1 and orders.get(order.reference).payment is PaymentState.PAID

    def test_every_field_survives_a_save(self, stores):
        _, orders = stores
        order = an_order()
        orders.create_claiming_certificate(order, 1)
        changed = dataclasses.replace(
            order,
            checkout_session_id="cs_1",
            checkout_url="u",
            checkout_expires_at=NOW,
            checkout_attempt=2,
            payment_intent_id="pi_1",
            payment_processing=True,
            refunded_pence=5,
            dispute_status="needs_response",
            payment_flag="flag",
            history=order.history + (HistoryEntry(NOW, "operator:bob", "note", None),),
            processed_events=frozenset({"e1", "e2"}),
        )
        orders.save(order, changed)
        assert opened(orders, orders.get(order.reference)) == dataclasses.replace(changed, version=1)

    def test_release_is_recorded_once(self, stores):
        _, orders = stores
        order = an_order(price=free())
        orders.create_claiming_certificate(order, 1)
        first, second = orders.get(order.reference), orders.get(order.reference)  # two callers, one read each
        orders.save(first, release(first, NOW).order)
        with pytest.raises(ConcurrentChange):
            orders.save(second, release(second, NOW.replace(hour=13)).order)
        assert record_release(orders, order.reference, NOW.replace(hour=14)) is False  # already released
        stored = orders.get(order.reference)
        assert stored.fulfilment is FulfilmentState.RELEASED and stored.released_at == NOW
        assert [e.change for e in stored.history].count("released to the manufacturer") == 1

    def test_only_unpaid_orders_past_their_hold_are_listed_for_the_sweep(self, stores):
        _, orders = stores
        lapsed, fresh, paid = (
            an_order("TK-AAAAA-00001", "k1"),
            an_order("TK-AAAAA-00002", "k2"),
            an_order("TK-AAAAA-00003", "k3"),
        )
        for order in (lapsed, fresh, paid):
            orders.create_claiming_certificate(order, 1)
        orders.save(fresh, dataclasses.replace(fresh, hold_until=NOW + timedelta(hours=2)))
        paid_once(orders, paid.reference)
        assert orders.awaiting_past_hold(NOW + timedelta(hours=1, minutes=30)) == [lapsed.reference]

    def test_rejected_orders_are_supports_work_list_oldest_first_until_erased(self, stores):
        _, orders = stores
        late, early, open_ = (an_order(f"TK-AAAAA-0000{n}", f"k{n}", price=free()) for n in (1, 2, 3))
        for order in (late, early, open_):
            orders.create_claiming_certificate(order, 1)
            record_release(orders, order.reference)
        manufacturer = Source("manufacturer")
        for order, hour in ((late, 15), (early, 13)):
            stored = orders.get(order.reference)
            orders.save(stored, reject(stored, "no such address", manufacturer, NOW.replace(hour=hour)).order)
        assert orders.needing_support() == [
            (early.reference, NOW.replace(hour=13)),
            (late.reference, NOW.replace(hour=15)),
        ]
        stored = orders.get(late.reference)
        orders.save(stored, erase_personal_data(stored, Source("system"), NOW.replace(hour=16), "test").order)
        assert orders.needing_support() == [(early.reference, NOW.replace(hour=13))]


@pytest.fixture(params=["fake", "dynamodb"])
def orders_and_finance(request):
    """(orders, finance's read of them) over one store."""
    if request.param == "fake":
        orders = InMemoryOrders({})
        return orders, InMemoryFinanceOrders(orders)
    settings = request.getfixturevalue("settings")
    models = build_models(tables_for(settings))
    return DynamoOrders(models, sealer(settings), recipient_key=recipient_key(settings)), FinanceOrders(models)


class TestCampaignFactsContract:
    def test_each_order_of_the_period_is_read_with_its_kind_states_refund_and_first_dispatch(self, orders_and_finance):
        orders, finance = orders_and_finance
        paid, sent, unpaid = (
            an_order("TK-AAAAA-00001", "k1"),
            an_order("TK-AAAAA-00002", "k2", free()),
            an_order("TK-AAAAA-00003", "k3"),
        )
        for order in (paid, sent, unpaid):
            orders.create_claiming_certificate(order, 1)
        paid_once(orders, paid.reference)
        stored = orders.get(paid.reference)
        view = MoneyView(paid.reference, "pi_1", STANDARD_PRICE, 300, None)
        orders.save(stored, reconcile_money(stored, view, Source("stripe", "evt_2"), NOW).order)
        record_release(orders, sent.reference)
        stored = orders.get(sent.reference)
        when = NOW + timedelta(hours=30)
        orders.save(
            stored, dispatch(stored, Dispatch("K1", "Royal Mail", "RM1", when), Source("manufacturer"), when).order
        )

        day = Period(NOW.date(), NOW.date() + timedelta(days=1))
        read = sorted(
            (f.free, f.state, f.payment, f.refunded_pence, f.replacements, f.first_dispatched_at, f.created_at)
            for f in finance.campaign_created_in(day)
        )
        assert read == [
            (False, OrderState.CONFIRMED, PaymentState.PARTIALLY_REFUNDED, 300, 0, None, NOW),
            (False, OrderState.PLACED, PaymentState.AWAITING, 0, 0, None, NOW),
            (True, OrderState.CONFIRMED, PaymentState.NOT_REQUIRED, 0, 0, when, NOW),
        ]
        assert list(finance.campaign_created_in(Period(day.end, day.end + timedelta(days=1)))) == []


@pytest.fixture(params=["fake", "sqs"])
def queue_and_reader(request):
    if request.param == "fake":
        fake = InMemoryFulfilmentQueue()
        return fake, fake.receive_all
    settings = request.getfixturevalue("settings")
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)

    def receive_all():
        batch = sqs.receive_message(QueueUrl=settings.fulfilment_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in batch]

    return SqsFulfilmentQueue(sqs, settings.fulfilment_queue_url), receive_all


class TestFulfilmentQueueContract:
    def test_a_message_sent_twice_arrives_once(self, queue_and_reader):
        queue, receive_all = queue_and_reader
        message = fulfilment_message_for(an_order(price=free()), "PMK-1")
        queue.send(message)
        queue.send(message)
        assert receive_all() == [message.to_document()]

    def test_messages_for_different_orders_all_arrive(self, queue_and_reader):
        queue, receive_all = queue_and_reader
        for i in range(3):
            queue.send(fulfilment_message_for(an_order(f"TK-AAAAA-0000{i}", price=free()), "PMK-1"))
        assert sorted(m["order_reference"] for m in receive_all()) == [f"TK-AAAAA-0000{i}" for i in range(3)]

    def test_a_message_that_breaks_its_schema_is_refused_and_never_sent(self, queue_and_reader):
        from chalicelib.domain.errors import FulfilmentMessageRefused
        from chalicelib.domain.lifecycle import ERASED

        queue, receive_all = queue_and_reader
        good = fulfilment_message_for(an_order(price=free()), "PMK-1")
        erased = dataclasses.replace(good, recipient_name=ERASED, town=ERASED, postcode="")
        with pytest.raises(FulfilmentMessageRefused) as refused:
            queue.send(erased)
        assert refused.value.problems == ("recipient.postcode: pattern",)  # the field and rule, not the value
        assert receive_all() == []


def test_a_queue_that_cannot_be_reached_is_reported_as_unavailable(settings):
    from chalicelib.domain.errors import QueueUnavailable

    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    missing = settings.fulfilment_queue_url.replace("fulfilment-queue", "no-such-queue")
    with pytest.raises(QueueUnavailable):
        SqsFulfilmentQueue(sqs, missing).send(fulfilment_message_for(an_order(price=free()), "PMK-1"))


@pytest.fixture(params=["fake", "dynamodb"])
def fulfilment_world(request):
    """(orders, fulfilments) over one store, as the sparse indexes read the orders table."""
    if request.param == "fake":
        orders = InMemoryOrders({})
        return orders, InMemoryFulfilments(orders)
    settings = request.getfixturevalue("settings")
    models = build_models(tables_for(settings))
    fields = sealer(settings)
    return DynamoOrders(models, fields, recipient_key=recipient_key(settings)), FulfilmentQueries(
        models, "PMK-1", fields
    )


def released_order(orders, reference: str, key: str, minutes: int):
    order = an_order(reference, key, price=free())
    order = dataclasses.replace(order, created_at=NOW + timedelta(minutes=minutes))
    orders.create_claiming_certificate(order, 1)
    record_release(orders, reference, NOW + timedelta(minutes=minutes))
    return orders.get(reference)


class TestFulfilmentsContract:
    def test_confirmed_unsent_orders_are_the_relays_work_list(self, fulfilment_world):
        orders, fulfilments = fulfilment_world
        orders.create_claiming_certificate(an_order("TK-AAAAA-00001", "k1", price=free()), 1)
        orders.create_claiming_certificate(an_order("TK-AAAAA-00002", "k2"), 1)  # unpaid: not confirmed
        assert fulfilments.relay_pending() == ["TK-AAAAA-00001"]
        record_release(orders, "TK-AAAAA-00001")
        assert fulfilments.relay_pending() == []

    def test_open_orders_page_oldest_first_with_only_parcel_fields(self, fulfilment_world):
        orders, fulfilments = fulfilment_world
        for i in (3, 1, 2):
            released_order(orders, f"TK-AAAAA-0000{i}", f"k{i}", i)
        first = fulfilments.open_fulfilments(None, 2)
        rest = fulfilments.open_fulfilments(first.next_cursor, 2)
        assert [o.message.order_reference for o in first.items + rest.items] == [
            "TK-AAAAA-00001",
            "TK-AAAAA-00002",
            "TK-AAAAA-00003",
        ]
        assert rest.next_cursor is None
        item = first.items[0]
        assert item.message == fulfilment_message_for(opened(orders, orders.get("TK-AAAAA-00001")), "PMK-1")
        assert item.state is FulfilmentState.RELEASED and item.released_at == NOW + timedelta(minutes=1)

    def test_the_health_checks_list_is_the_ids_of_open_orders_released_before_a_time(self, fulfilment_world):
        orders, fulfilments = fulfilment_world
        for i in (3, 1, 2):
            released_order(orders, f"TK-AAAAA-0000{i}", f"k{i}", i)
        assert fulfilments.released_before(NOW + timedelta(minutes=2, seconds=30)) == ["F-AAAAA-00001", "F-AAAAA-00002"]
        assert fulfilments.released_before(NOW) == []

    def test_dispatched_orders_leave_the_list_and_cancellations_appear_until_acknowledged(self, fulfilment_world):
        orders, fulfilments = fulfilment_world
        gone = released_order(orders, "TK-AAAAA-00001", "k1", 1)
        orders.save(gone, dataclasses.replace(gone, fulfilment=FulfilmentState.DISPATCHED))
        cancelled = released_order(orders, "TK-AAAAA-00002", "k2", 2)
        orders.save(cancelled, dataclasses.replace(cancelled, fulfilment=FulfilmentState.CANCELLED, cancelled_at=NOW))
        assert fulfilments.open_fulfilments(None, 10).items == []
        [listed] = fulfilments.cancellations(None, 10).items
        assert (listed.fulfilment_id, listed.order_reference) == ("F-AAAAA-00002", "TK-AAAAA-00002")
        latest = orders.get("TK-AAAAA-00002")
        orders.save(latest, dataclasses.replace(latest, cancellation_acknowledged=True))
        assert fulfilments.cancellations(None, 10).items == []

    def test_an_amended_address_is_on_the_relays_list_until_sent_and_listed_until_acknowledged(self, fulfilment_world):
        orders, fulfilments = fulfilment_world
        order = released_order(orders, "TK-AAAAA-00001", "k1", 1)
        moved = dataclasses.replace(order.delivery, town="Leeds", postcode="LS1 4AP")
        orders.save(order, dataclasses.replace(order, delivery=moved, amendments_issued=1, amended_at=NOW))
        assert fulfilments.relay_pending() == ["TK-AAAAA-00001"]
        [listed] = fulfilments.amendments(None, 10).items
        document = listed.to_document()
        assert (document["fulfilment_id"], document["amendment"]) == ("F-AAAAA-00001", 1)
        assert (document["recipient"]["town"], document["recipient"]["postcode"]) == ("Leeds", "LS1 4AP")
        latest = orders.get("TK-AAAAA-00001")
        orders.save(latest, dataclasses.replace(latest, amendment_sent=1))
        assert fulfilments.relay_pending() == [] and len(fulfilments.amendments(None, 10).items) == 1
        latest = orders.get("TK-AAAAA-00001")
        orders.save(latest, dataclasses.replace(latest, amendment_acknowledged=1))
        assert fulfilments.amendments(None, 10).items == []


@pytest.fixture(params=["fake", "dynamodb"])
def api_keys(request):
    if request.param == "fake":
        return InMemoryApiKeys()
    settings = request.getfixturevalue("settings")
    return key_store(settings.api_keys_table, settings.region, settings.aws_endpoint_url)


class TestApiKeysContract:
    def test_a_key_is_found_by_id_and_revoked_once(self, api_keys):
        key, token = issue_key(Scope.MANUFACTURER, "Kit Maker", NOW)
        api_keys.add(key)
        assert api_keys.find(key.key_id) == key and read_token(f"Bearer {token}")[2] not in repr(
            api_keys.find(key.key_id)
        )
        revoked = api_keys.revoke(key.key_id, NOW)
        assert revoked.revoked_at == NOW and not api_keys.find(key.key_id).active
        assert api_keys.revoke(key.key_id, NOW + timedelta(hours=1)).revoked_at == NOW
        assert api_keys.find("0000000000000000") is None and api_keys.revoke("0000000000000000", NOW) is None

    def test_all_keys_are_listed_oldest_first(self, api_keys):
        first, _ = issue_key(Scope.MANUFACTURER, "a", NOW)
        second, _ = issue_key(Scope.FINANCE, "b", NOW + timedelta(minutes=1))
        api_keys.add(second)
        api_keys.add(first)
        assert [k.key_id for k in api_keys.all()] == [first.key_id, second.key_id]


@pytest.fixture(params=["fake", "s3"])
def exports(request):
    if request.param == "fake":
        return InMemoryExports()
    from chalicelib.adapters.s3_exports import S3Exports

    settings = request.getfixturevalue("settings")
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    return S3Exports(s3, settings.exports_bucket)


class TestExportsContract:
    def test_a_file_is_written_once_listed_under_its_folder_in_key_order_and_read_back(self, exports):
        assert exports.put_once("reconciliation/2026/12/b.csv", b"second", "text/csv")
        assert exports.put_once("reconciliation/2026/11/a.csv", b"first", "text/csv")
        assert exports.put_once("kit-maker-statement/2026/s.xlsx", b"PK", "application/octet-stream")
        assert not exports.put_once("reconciliation/2026/11/a.csv", b"changed", "text/csv")
        listed = list(exports.listing("reconciliation/"))
        assert [(f.key, f.size) for f in listed] == [
            ("reconciliation/2026/11/a.csv", 5),
            ("reconciliation/2026/12/b.csv", 6),
        ]
        assert all(f.modified.tzinfo is not None for f in listed)
        assert exports.read("reconciliation/2026/11/a.csv") == b"first"
        assert exports.read("reconciliation/none.csv") is None and list(exports.listing("elsewhere/")) == []


@pytest.fixture(params=["fake", "dynamodb"])
def audit_log(request):
    if request.param == "fake":
        return InMemoryAuditLog()
    from chalicelib.adapters.dynamodb_audit import DynamoAuditLog, build_audit_model

    settings = request.getfixturevalue("settings")
    return DynamoAuditLog(build_audit_model(settings.staff.audit_table, settings.region, settings.aws_endpoint_url))


class TestAuditLogContract:
    def test_entries_come_newest_first_filtered_across_days_and_by_order(self, audit_log):
        from chalicelib.domain.audit import new_entry

        made = [
            new_entry(NOW - timedelta(days=1), "ann@example.org", "signin"),
            new_entry(NOW, "ann@example.org", "order.refund", order_reference="TK-AAAAA-AAAAA", reason="damaged"),
            new_entry(NOW + timedelta(minutes=1), "bob@example.org", "order.view", order_reference="TK-AAAAA-AAAAA"),
            new_entry(NOW + timedelta(days=2), "bob@example.org", "signin", detail={"groups": "support"}),
        ]
        for entry in made:
            audit_log.append(entry)
        window = (NOW - timedelta(days=1), NOW + timedelta(days=2))
        assert list(audit_log.between(*window)) == made[2::-1]
        assert list(audit_log.between(*window, actor="ann@example.org", action="signin")) == [made[0]]
        assert list(audit_log.between(*window, order_reference="TK-AAAAA-AAAAA")) == [made[2], made[1]]
        assert list(audit_log.between(NOW + timedelta(days=2), NOW + timedelta(days=3))) == [made[3]]
        assert list(audit_log.between(*window, action="erase")) == []

    def test_an_entry_already_there_is_never_overwritten(self, audit_log):
        from chalicelib.domain.audit import new_entry

        entry = new_entry(NOW, "ann@example.org", "signin")
        audit_log.append(entry)
        with pytest.raises(AuditEntryExists):
            audit_log.append(dataclasses.replace(entry, action="signout"))
        assert [e.action for e in audit_log.between(NOW, NOW + timedelta(seconds=1))] == ["signin"]


@pytest.fixture(params=["fake", "dynamodb"])
def contacts(request):
    if request.param == "fake":
        return InMemoryContacts()
    settings = request.getfixturevalue("settings")
    model = build_contact_model(settings.contacts_table, settings.region, settings.aws_endpoint_url)
    return DynamoContacts(model, sealer(settings))


def confirm_link(token: str, certificate: str, email: str, at=NOW) -> ContactLink:
    return ContactLink(token, CONFIRM, f"key:{email.lower()}", at + timedelta(hours=24), certificate, email, at)


def confirmed(contacts, token: str, certificate: str, email: str, at=NOW):
    """A confirm link stored, then followed at `at`, as the service does."""
    contacts.add_link(confirm_link(token, certificate, email, at))
    link = contacts.link(token)
    contacts.confirm(link, confirm_contact(link, contacts.contact(certificate), at), at)
    return link


class TestContactsContract:
    def test_a_confirm_link_round_trips_with_its_address_sealed_and_opened(self, contacts):
        contacts.add_link(confirm_link("h1", "cert-1", "Sam@Example.com"))
        link = contacts.link("h1")
        assert (link.purpose, link.certificate_key, link.email_key, link.consented_at) == (
            CONFIRM,
            "cert-1",
            "key:sam@example.com",
            NOW,
        )
        assert link.email != "Sam@Example.com" and contacts.email_of("cert-1", link.email) == "Sam@Example.com"
        assert link.used_at is None and contacts.link("unknown") is None

    def test_confirming_makes_the_one_contact_and_uses_the_link_once(self, contacts):
        link = confirmed(contacts, "h1", "cert-1", "sam@example.com")
        contact = contacts.contact("cert-1")
        assert (contact.email_key, contact.consented_at, contact.confirmed_at) == ("key:sam@example.com", NOW, NOW)
        assert contacts.link("h1").used_at == NOW
        with pytest.raises(ContactLinkNotUsable):
            contacts.confirm(link, confirm_contact(link, contact, NOW), NOW)  # the same link again
        assert [(email, c.certificate_key) for email, c in contacts.confirmed()] == [("sam@example.com", "cert-1")]
        assert contacts.registered_at("key:sam@example.com") and not contacts.registered_at("key:jo@example.com")

    def test_a_new_address_replaces_the_old_and_holds_it_for_its_notice(self, contacts):
        confirmed(contacts, "h1", "cert-1", "old@example.com")
        confirmed(contacts, "h2", "cert-1", "new@example.com", at=NOW + timedelta(hours=1))
        assert [email for email, _ in contacts.confirmed()] == ["new@example.com"]
        assert contacts.notices_due() == ["cert-1"] and contacts.replaced_address("cert-1") == "old@example.com"
        contacts.end_notice("cert-1")
        contacts.end_notice("cert-1")  # idempotent
        assert contacts.notices_due() == [] and contacts.replaced_address("cert-1") is None
        assert [email for email, _ in contacts.confirmed()] == ["new@example.com"]  # the contact stays

    def test_a_confirmation_read_before_another_landed_is_refused_and_uses_nothing(self, contacts):
        contacts.add_link(confirm_link("h1", "cert-1", "one@example.com"))
        stale = confirm_contact(contacts.link("h1"), None, NOW)  # read: no contact yet
        confirmed(contacts, "h2", "cert-1", "two@example.com")
        with pytest.raises(ConcurrentChange):
            contacts.confirm(contacts.link("h1"), stale, NOW)
        assert contacts.link("h1").used_at is None  # all or nothing: the link still works
        assert [email for email, _ in contacts.confirmed()] == ["two@example.com"]

    def test_a_withdrawal_removes_every_registration_of_its_address_and_no_other(self, contacts):
        confirmed(contacts, "h1", "cert-1", "sam@example.com")
        confirmed(contacts, "h2", "cert-2", "sam@example.com")
        confirmed(contacts, "h3", "cert-3", "jo@example.com")
        contacts.add_link(ContactLink("w1", WITHDRAW, "key:sam@example.com", NOW + timedelta(days=365)))
        assert contacts.withdraw(contacts.link("w1"), NOW) == 2
        assert [c.certificate_key for _, c in contacts.confirmed()] == ["cert-3"]
        assert contacts.link("w1").used_at == NOW
        with pytest.raises(ContactLinkNotUsable):
            contacts.withdraw(contacts.link("w1"), NOW)

    def test_removing_certificates_removes_their_contacts_idempotently(self, contacts):
        confirmed(contacts, "h1", "cert-1", "sam@example.com")
        confirmed(contacts, "h2", "cert-2", "jo@example.com")
        assert sorted(contacts.certificate_keys()) == ["cert-1", "cert-2"]
        contacts.remove(["cert-1", "cert-9"])
        contacts.remove(["cert-1"])
        assert list(contacts.certificate_keys()) == ["cert-2"] and contacts.contact("cert-1") is None

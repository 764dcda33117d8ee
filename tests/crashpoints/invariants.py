"""What must be true after a run has recovered, whatever fault it met: the promises of the
table of guarantees in docs/architecture.md, checked against what moto, SES and the Stripe emulator hold."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import boto3
import stripe
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.domain.orders import FulfilmentState, Order, OrderState, PaymentState
from tests.conftest import REGION, TEST_SECRETS
from tests.crashpoints.faults import DIE, LOST, Point
from tests.crashpoints.world import World

FULFILMENT_RANK = {
    FulfilmentState.NOT_RELEASED: 0,
    FulfilmentState.RELEASED: 1,
    FulfilmentState.ACCEPTED: 2,
    FulfilmentState.DISPATCHED: 3,
    FulfilmentState.REJECTED: 4,
    FulfilmentState.CANCELLED: 4,
    FulfilmentState.RETURNED: 4,  # only ever after DISPATCHED
}
LIVE = (OrderState.PLACED, OrderState.CONFIRMED)  # the states in which an order holds its certificate's claim
# by subject, most specific first
EMAIL_KINDS = {
    "not sending a replacement": "replacement_declined",
    "A replacement": "replacement_approved",
    "has not arrived": "replacement_requested",
    "came back": "returned",
    "could not send": "rejected",
    "kit again": "sending_again",
    "is on its way": "dispatch",
    "is cancelled": "cancellation",
    "was changed": "address_changed",
    "order": "confirmation",
}


@dataclass(frozen=True)
class Snapshot:
    """Everything the invariants look at, read once."""

    orders: dict[str, Order]
    claims: dict[str, int]
    messages: Counter  # fulfilment id -> messages on the queue
    emails: Counter  # (order reference, kind) -> emails sent
    money_held: dict[str, int]  # order reference -> pence Stripe holds for it (charged less refunded)
    open_fulfilments: set[str]


def snapshot(w: World) -> Snapshot:
    with w.faults.quiet():
        return Snapshot(
            orders=_orders(w),
            claims=_claims(w),
            messages=_messages(w),
            emails=_emails(),
            money_held=_money_held(w),
            open_fulfilments=_open_fulfilments(w),
        )


def orders_now(w: World) -> dict[str, Order]:
    with w.faults.quiet():
        return _orders(w)


def violations(w: World, seen: list[dict[str, Order]], point: Point | None, fired: str | None) -> list[str]:
    """Every broken promise, in words; empty when the run converged."""
    s = snapshot(w)
    found: list[str] = []
    for ref, order in s.orders.items():
        open_ = order.state is OrderState.CONFIRMED and order.fulfilment is not FulfilmentState.CANCELLED
        sent = s.messages[order.fulfilment_id]
        if open_ and sent != 1:
            found.append(f"{ref}: confirmed, {sent} fulfilment messages on the queue (want 1)")
        if not open_ and order.fulfilment_id in s.open_fulfilments:
            found.append(f"{ref}: {order.state.value}/{order.fulfilment.value} but still open to the kit maker")
        if order.state is not OrderState.CONFIRMED and order.fulfilment is FulfilmentState.NOT_RELEASED and sent:
            found.append(f"{ref}: never confirmed, yet {sent} fulfilment messages")
        held = s.money_held.get(ref, 0)
        if (
            held
            and order.payment not in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.DISPUTED)
            and not order.payment_flag
        ):
            found.append(f"{ref}: Stripe holds {held}p, tracekit shows {order.payment.value} and no flag")
        found += _amendment_violations(ref, order, s.messages)
        found += _email_violations(ref, order, s.emails, point, fired)
        found += _history_violations(ref, order)
    for key, kits in _claims_by_orders(s.orders).items():
        if s.claims.get(key, 0) != kits:
            found.append(f"certificate claim count {s.claims.get(key, 0)}, live orders {kits}")
    found += _went_backwards(seen + [s.orders])
    return found


def outcome(w: World) -> list[tuple]:
    """What a holder, the kit maker and finance would see in the end: compared with the run that met
    no fault, so that every run is shown to converge on the same result, not merely a valid one."""
    s = snapshot(w)
    lasting = [o for o in s.orders.values() if not _abandoned_before_payment(o)]
    return sorted(
        (
            o.state.value,
            o.payment.value,
            o.fulfilment.value,
            o.refunded_pence,
            s.messages[o.fulfilment_id],
            None if _ended_by_erasure(o) else s.emails[(o.reference, "confirmation")] > 0,
            s.emails[(o.reference, "dispatch")] > 0,
            s.emails[(o.reference, "returned")] > 0,
            s.money_held.get(o.reference, 0),
            o.erased_at is not None,
        )
        for o in lasting
    )


def _ended_by_erasure(order: Order) -> bool:
    """Erased before its kit went out: its confirmation email went if it went before the erasure."""
    return order.erased_at is not None and order.fulfilment is FulfilmentState.CANCELLED


def _abandoned_before_payment(order: Order) -> bool:
    """An order given up because Stripe could not be reached: the holder's retry ordered afresh."""
    return order.state is OrderState.CANCELLED and order.payment is PaymentState.NOT_TAKEN and not order.released_at


def _amendment_violations(ref: str, order: Order, messages: Counter) -> list[str]:
    """Every amendment issued to an open fulfilment is sent (recorded, and its latest on the queue)."""
    if not order.open_for_manufacturer or not order.amendments_issued:
        return []
    latest = messages[f"{order.fulfilment_id}:amendment:{order.amendments_issued}"]
    if order.amendment_sent != order.amendments_issued or latest != 1:
        return [
            f"{ref}: amendment {order.amendments_issued} issued, {order.amendment_sent} recorded sent, {latest} queued"
        ]
    return []


def _email_violations(ref: str, order: Order, emails: Counter, point: Point | None, fired: str | None) -> list[str]:
    found = []
    expected = {
        "confirmation": order.released_at is not None or bool(order.earlier_fulfilments),
        "dispatch": order.dispatch is not None or any(e.dispatch for e in order.earlier_fulfilments),
        "cancellation": order.cancelled_by_holder or order.cancelled_by_support,
        "returned": order.returned_at is not None,
        "rejected": _rejected_by_the_kit_maker(order),
        "replacement_requested": order.replacement_requested_at is not None,
        "replacement_approved": order.replacements_approved > 0,
        "replacement_declined": order.replacement_decline_reason is not None,
        "sending_again": any(e.reason in ("rejected", "returned") for e in order.earlier_fulfilments),
        "address_changed": any(e.change.startswith("delivery address changed") for e in order.history),
    }
    if not order.delivery.email and order.erased_at is None:  # no address given: no email at all
        expected = dict.fromkeys(expected, False)
    twice_allowed = _in_the_at_least_once_window(point, fired)
    for kind, wanted in expected.items():
        count = emails[(ref, kind)]
        if kind == "confirmation" and _ended_by_erasure(order):
            # an email still due when the erasure came has no address left: dropped, not owed
            wanted = count > 0
        resent = _resends(order, kind)
        if wanted and count == 0:
            found.append(f"{ref}: {kind} email never sent")
        elif not wanted and count:
            found.append(f"{ref}: {kind} email sent {count} times, none was due")
        elif wanted and count < 1 + resent:
            found.append(f"{ref}: {kind} email sent {count} times, resent {resent} times by support")
        elif count > resent + (2 if twice_allowed else 1):
            found.append(f"{ref}: {kind} email sent {count} times")
    return found


def _rejected_by_the_kit_maker(order: Order) -> bool:
    """The kit maker's rejection emails the holder; tracekit's own refusal to send (withhold_release) does not."""
    return any(e.change.startswith("rejected by the manufacturer") for e in order.history)


def _resends(order: Order, kind: str) -> int:
    """How many times support asked for this email again (lifecycle.resend_email's log lines)."""
    return sum(1 for e in order.history if e.change.startswith(f"{kind} email resent:"))


def _in_the_at_least_once_window(point: Point | None, fired: str | None) -> bool:
    """The one window in which an email may go twice (docs/architecture.md, the guarantees): SES took it and the
    outbox was not told, because the process died straight after the send, or SES's answer was
    lost, or the outbox's write after it failed; the outbox sends it again once its lease ends."""
    if point is None or fired is None:
        return False
    return (point.mode in (DIE, LOST) and fired.endswith("ses.SendEmail")) or " end_retry -> " in fired


def _history_violations(ref: str, order: Order) -> list[str]:
    entries = Counter((e.actor, e.change, e.stripe_event_id) for e in order.history)
    return [
        f"{ref}: history has {n} entries for one change: {change!r}" for (_, change, _), n in entries.items() if n > 1
    ]


def _went_backwards(seen: list[dict[str, Order]]) -> list[str]:
    found = []
    for before, after in zip(seen, seen[1:], strict=False):
        for ref, old in before.items():
            new = after.get(ref)
            if new is None:
                found.append(f"{ref}: the order disappeared")
            elif new.version < old.version or _progress(new) < _progress(old):
                found.append(
                    f"{ref}: went back from {old.fulfilment.value} v{old.version}"
                    f" to {new.fulfilment.value} v{new.version}"
                )
            elif new.history[: len(old.history)] != old.history or new.refunded_pence < old.refunded_pence:
                found.append(f"{ref}: its history or refunds were rewritten")
    return found


def _progress(order: Order) -> tuple[int, int]:
    """How far the order's fulfilment has come: a replacement's attempt starts again from not released."""
    return order.fulfilment_attempt, FULFILMENT_RANK[order.fulfilment]


def _claims_by_orders(orders: dict[str, Order]) -> Counter:
    return Counter(o.certificate_key for o in orders.values() if o.state in LIVE)


def _orders(w: World) -> dict[str, Order]:
    table = boto3.resource("dynamodb", endpoint_url=w.moto_url, region_name=REGION).Table(w.settings.orders_table)
    refs = [item["order_ref"] for item in table.scan(ProjectionExpression="order_ref")["Items"]]
    return {ref: w.deps.orders.get(ref) for ref in refs}


def _claims(w: World) -> dict[str, int]:
    table = boto3.resource("dynamodb", endpoint_url=w.moto_url, region_name=REGION).Table(w.settings.claims_table)
    return {str(item[_key(table)]): int(item.get("kits", 0)) for item in table.scan()["Items"]}


def _key(table) -> str:
    return next(k["AttributeName"] for k in table.key_schema if k["KeyType"] == "HASH")


def _messages(w: World) -> Counter:
    sqs = boto3.client("sqs", endpoint_url=w.moto_url, region_name=REGION)
    counts: Counter = Counter()
    while True:  # read and delete: the sweep looks once, at the end
        batch = sqs.receive_message(QueueUrl=w.settings.fulfilment_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not batch:
            return counts
        for message in batch:
            body = json.loads(message["Body"])
            if body.get("kind") == "address_amendment":  # counted by amendment: fulfilment id:amendment:n
                counts[f"{body['fulfilment_id']}:amendment:{body['amendment']}"] += 1
            else:
                counts[body["fulfilment_id"]] += 1
            sqs.delete_message(QueueUrl=w.settings.fulfilment_queue_url, ReceiptHandle=message["ReceiptHandle"])


def _emails() -> Counter:
    counts: Counter = Counter()
    for message in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages:
        references = [word.strip("()") for word in message.subject.split() if word.strip("()").startswith("TK-")]
        if not references:  # the contact register's emails name no order (the journeys' own checks count them)
            continue
        reference = references[0]
        kind = next(kind for phrase, kind in EMAIL_KINDS.items() if phrase in message.subject)
        counts[(reference, kind)] += 1
    return counts


def _money_held(w: World) -> dict[str, int]:
    sdk = stripe.StripeClient(TEST_SECRETS["STRIPE_SECRET_KEY"], base_addresses={"api": w.emulator.base_url})
    held: dict[str, int] = {}
    for charge in sdk.v1.charges.list().auto_paging_iter():
        if charge.status != "succeeded" or not charge.paid:
            continue
        intent = sdk.v1.payment_intents.retrieve(charge.payment_intent)
        reference = intent.metadata.to_dict().get("order_reference")
        held[reference] = held.get(reference, 0) + charge.amount - charge.amount_refunded
    return {ref: pence for ref, pence in held.items() if pence}


def _open_fulfilments(w: World) -> set[str]:
    found, cursor = set(), None
    while True:
        page = w.deps.fulfilments.open_fulfilments(cursor, 100)
        found |= {item.message.fulfilment_id for item in page.items}
        cursor = page.next_cursor
        if cursor is None:
            return found

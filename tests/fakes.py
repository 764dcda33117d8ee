"""In-memory fakes of every port. The contract suites in tests/integration run against these and
the real adapters alike, so a fake cannot drift from what it stands in for."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta, timezone

from chalicelib import safejson
from chalicelib.domain.changes import Effect, emails_owed
from chalicelib.domain.contacts import Contact, ContactLink
from chalicelib.domain.dashboard import CampaignFacts
from chalicelib.domain.delivery import recipient_lookup_text
from chalicelib.domain.eligibility import EligibilityReason
from chalicelib.domain.errors import (
    AuditEntryExists,
    MailUnavailable,
    CertificateAlreadyClaimed,
    ConcurrentChange,
    ContactLinkNotUsable,
    InvalidWebhook,
    OrderAlreadyExists,
    OrderNotFound,
    PaymentServiceUnavailable,
    RegisterChanged,
)
from chalicelib.domain.fulfilment import (
    AddressAmendment,
    Cancellation,
    FulfilmentMessage,
    OpenFulfilment,
    Page,
    address_amendment,
    fulfilment_message_for,
)
from chalicelib.adapters.message_schema import check_amendment_message, check_fulfilment_message
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order
from chalicelib.domain.payments import MoneyView
from chalicelib.domain.kit_statement import KitFacts, earlier_dispatches, earlier_returned
from chalicelib.domain.reconciliation import OrderFacts
from chalicelib.domain.register import RegisterEntry, RegisterState
from chalicelib.ports import ExportedFile
from chalicelib.ports import CertificateLookup, CheckoutSession, PaymentEvent


class InMemoryRegister:
    """Generations of entries and a pointer, as DynamoRegister keeps them; each pointer change is
    one step, as one conditional write is."""

    def __init__(self, claims: dict[str, int] | None = None):
        self.generations: dict[int, dict[str, RegisterEntry]] = {}
        self.pointer = RegisterState()
        self.claims = claims if claims is not None else {}

    @property
    def entries_live(self) -> dict[str, RegisterEntry]:
        return self.generations.get(self.pointer.live, {}) if self.pointer.live is not None else {}

    def find(self, reference_key):
        return CertificateLookup(self.entries_live.get(reference_key), self.claims.get(reference_key, 0))

    def state(self):
        return self.pointer

    def entries(self, generation):
        return iter(list(self.generations.get(generation, {}).values()))

    def start_generation(self):
        number = self.pointer.started + 1
        self.pointer = dataclasses.replace(
            self.pointer, started=number, generations=self.pointer.generations | {number}
        )
        return number

    def save_all(self, generation, entries):
        written = 0
        stored = self.generations.setdefault(generation, {})
        for entry in entries:
            stored[entry.reference_key] = entry
            written += 1
        return written

    def switch(self, generation, expected, entries, at):
        if self.pointer.started != generation or not self._is_still(expected):
            raise RegisterChanged()
        after = expected.switched_to(generation, entries, at)
        self.pointer = dataclasses.replace(after, started=self.pointer.started, generations=self.pointer.generations)
        return self.pointer

    def roll_back(self, expected, at):
        after = expected.rolled_back(at)
        if not self._is_still(expected):
            raise RegisterChanged()
        self.pointer = dataclasses.replace(after, started=self.pointer.started, generations=self.pointer.generations)
        return self.pointer

    def delete_generation(self, generation):
        deleted = len(self.generations.pop(generation, {}))
        self.pointer = dataclasses.replace(self.pointer, generations=self.pointer.generations - {generation})
        return deleted

    def _is_still(self, expected):
        return (self.pointer.live, self.pointer.previous) == (expected.live, expected.previous)


class InMemoryAttempts:
    """Counters as DynamoAttempts keeps them: key -> (reserved, expiry); a reservation is all or
    nothing, under one lock, as one transaction is."""

    def __init__(self):
        self.counters: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    def reserve(self, reservation):
        with self._lock:
            count = lambda key: self.counters.get(key, (0, None))[0]  # noqa: E731
            if any(count(p.key) >= p.limit for p in reservation.places) or any(
                count(c.key) >= c.limit for c in reservation.checks
            ):
                return False
            for place in reservation.places:
                self.counters[place.key] = (count(place.key) + 1, place.expires)
            return True

    def sweep(self, now):
        with self._lock:
            expired = [key for key, (_, expires) in self.counters.items() if expires < now]
            for key in expired:
                del self.counters[key]
            return len(expired)


class InMemoryOrders:
    def __init__(self, claims: dict[str, int] | None = None):
        self.orders: dict[str, Order] = {}
        self.claims = claims if claims is not None else {}
        self.mail_retry: dict[str, dict] = {}  # reference -> kinds, attempts, after
        self._lock = threading.RLock()

    def create_claiming_certificate(self, order, kits_per_certificate):
        with self._lock:
            if order.reference in self.orders:
                raise OrderAlreadyExists(order.reference)
            if self.claims.get(order.certificate_key, 0) >= kits_per_certificate:
                raise CertificateAlreadyClaimed()
            self.claims[order.certificate_key] = self.claims.get(order.certificate_key, 0) + 1
            self.orders[order.reference] = order

    def get(self, reference):
        try:
            return self.orders[reference]
        except KeyError:
            raise OrderNotFound(reference) from None

    def delivery_of(self, order):
        """The fake keeps orders in clear; the real store seals them (tests/integration)."""
        return order.delivery

    def apply_guarded(self, reference, change):
        with self._lock:
            order = self.get(reference)
            if change.entry.stripe_event_id in order.processed_events:
                return None
            if not change.met_by(order):
                return None
            self.orders[reference] = dataclasses.replace(change.applied_to(order).order, version=order.version + 1)
            return self.orders[reference]

    def save(self, before, after, effects=frozenset(), mail_held_until=None):
        with self._lock:
            if self.get(before.reference).version != before.version:
                raise ConcurrentChange(before.reference)
            if Effect.RELEASE_CLAIM in effects:
                if self.claims.get(after.certificate_key, 0) <= 0:
                    raise ConcurrentChange(before.reference)
                self.claims[after.certificate_key] -= 1
            if Effect.RECLAIM in effects:
                self.claims[after.certificate_key] = self.claims.get(after.certificate_key, 0) + 1
            self.orders[after.reference] = dataclasses.replace(after, version=before.version + 1)
            emails = emails_owed(effects)
            if emails:
                self._add_to_outbox(after.reference, emails, mail_held_until or after.history[-1].at)

    def _add_to_outbox(self, reference, kinds, due):
        outbox = self.mail_retry.setdefault(reference, {"kinds": set(), "attempts": 0})
        outbox["kinds"] |= kinds
        outbox["after"] = due

    def find_by_recipient(self, surname, postcode):
        wanted = recipient_lookup_text(surname, postcode)
        found = [
            o.reference
            for o in self.orders.values()
            if wanted
            and o.erased_at is None
            and recipient_lookup_text(o.delivery.full_name, o.delivery.postcode) == wanted
        ]
        return sorted(found)

    def erasure_due(self, now, retention=timedelta(days=30)):
        due = [o for o in self.orders.values() if (o.personal_data_until(retention) or now) < now]
        return sorted(o.reference for o in due)

    def claim_due_notifications(self, reference, now, until):
        with self._lock:
            outbox = self.mail_retry.get(reference)
            if outbox is None or outbox["after"] > now:
                return None
            outbox["after"] = until
            return self.get(reference), frozenset(outbox["kinds"]), outbox["attempts"]

    def defer_notification(self, reference, kind, retry_after):
        retry = self.mail_retry.setdefault(reference, {"kinds": set(), "attempts": 0})
        retry["kinds"].add(kind)
        retry["attempts"] += 1
        retry["after"] = retry_after

    def notifications_due(self, now):
        due = sorted((r["after"], ref) for ref, r in self.mail_retry.items() if r["after"] <= now)
        return [(ref, frozenset(self.mail_retry[ref]["kinds"]), self.mail_retry[ref]["attempts"]) for _, ref in due]

    def end_retry(self, reference, kind):
        retry = self.mail_retry.get(reference)
        if retry is None:
            return
        retry["kinds"].discard(kind)
        if not retry["kinds"]:
            del self.mail_retry[reference]

    def needing_support(self):
        rows = sorted((o.support_since, o.reference) for o in self.orders.values() if o.support_since is not None)
        return [(reference, since) for since, reference in rows]

    def awaiting_past_hold(self, now):
        return sorted(ref for ref, o in self.orders.items() if o.awaits_payment and o.hold_until and o.hold_until < now)


class FakePayments:
    """Stands in for Stripe: sessions by idempotency key, payments, refunds, and webhooks signed
    as Stripe signs them."""

    def __init__(self, webhook_secret: str = "whsec_fake"):
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, dict] = {}
        self.intents: dict[str, dict] = {}
        self.refund_keys: dict[str, str] = {}
        self.unavailable = False

    def start_checkout(self, order, success_url, cancel_url, expires_at, attempt=1):
        self._reachable()
        key = f"order-{order.reference}" if attempt <= 1 else f"order-{order.reference}-{attempt}"
        if key not in self.sessions:
            number = len(self.sessions) + 1
            self.sessions[key] = {
                "id": f"cs_fake_{number}",
                "object": "checkout.session",
                "status": "open",
                "client_reference_id": order.reference,
                "amount_total": order.amount.pence,
                "currency": order.amount.currency,
                "payment_status": "unpaid",
                "payment_intent": None,
            }
        session = self.sessions[key]
        return CheckoutSession(session["id"], f"https://pay.example/{session['id']}")

    def session(self, session_id: str) -> dict:
        return next(s for s in self.sessions.values() if s["id"] == session_id)

    def pay(self, session_id: str, amount: int | None = None, paid: bool = True) -> dict:
        """The buyer pays (or, with paid=False, starts a payment that confirms later)."""
        session = self.session(session_id)
        intent_id = f"pi_fake_{len(self.intents) + 1}"
        self.intents[intent_id] = {
            "order_reference": session["client_reference_id"],
            "amount": amount or session["amount_total"],
            "currency": session["currency"],
            "refunded": 0,
            "dispute": None,
        }
        session.update(status="complete", payment_status="paid" if paid else "unpaid", payment_intent=intent_id)
        if amount is not None:
            session["amount_total"] = amount
        return session

    def read_checkout(self, session_id):
        self._reachable()
        session = self.session(session_id)
        kind = "completed" if session["status"] == "complete" else session["status"]
        return _session_event(f"checkout:{session_id}", f"checkout.session.{kind}", session)

    def expire_checkout(self, session_id):
        session = self.session(session_id)
        if session["status"] == "open":
            session["status"] = "expired"

    def money_view(self, payment_intent_id):
        self._reachable()
        intent = self.intents[payment_intent_id]
        return MoneyView(
            intent["order_reference"],
            payment_intent_id,
            Money(intent["amount"], intent["currency"]),
            intent["refunded"],
            intent["dispute"],
        )

    def refund(self, payment_intent_id, amount_pence, idempotency_key, order_reference):
        self._reachable()
        if idempotency_key not in self.refund_keys:
            self.intents[payment_intent_id]["refunded"] += amount_pence
            self.refund_keys[idempotency_key] = f"re_fake_{len(self.refund_keys) + 1}"
        return self.refund_keys[idempotency_key]

    def event(self, event_type: str, obj: dict, event_id: str = "evt_1") -> tuple[bytes, str]:
        """A signed webhook delivery: (raw body, Stripe-Signature header)."""
        body = json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}).encode()
        return body, self.sign(body)

    def completed_event(
        self,
        reference: str,
        event_id: str = "evt_1",
        amount: int = 895,
        currency: str = "gbp",
        payment_status: str = "paid",
        payment_intent: str | None = "pi_fake_x",
    ) -> tuple[bytes, str]:
        return self.event(
            "checkout.session.completed",
            {
                "object": "checkout.session",
                "id": "cs_fake",
                "client_reference_id": reference,
                "amount_total": amount,
                "currency": currency,
                "payment_status": payment_status,
                "payment_intent": payment_intent,
            },
            event_id,
        )

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        t = int(datetime.now().timestamp()) if timestamp is None else timestamp
        mac = hmac.new(self.webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def parse_webhook(self, payload, signature_header):
        try:
            parts = dict(p.split("=", 1) for p in signature_header.split(","))
            expected = hmac.new(
                self.webhook_secret.encode(), f"{parts['t']}.".encode() + payload, hashlib.sha256
            ).hexdigest()
            if (
                not hmac.compare_digest(expected, parts["v1"])
                or abs(datetime.now().timestamp() - int(parts["t"])) > 300
            ):
                raise ValueError
            event = safejson.loads(payload, safejson.STRIPE_EVENT_DEPTH)
            obj = event["data"]["object"]
            if obj.get("object") == "checkout.session":
                return _session_event(event["id"], event["type"], obj)
            return PaymentEvent(event["id"], event["type"], payment_intent_id=obj.get("payment_intent"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidWebhook("bad signature or shape") from None

    def _reachable(self):
        if self.unavailable:
            raise PaymentServiceUnavailable("fake outage")


def _session_event(event_id: str, event_type: str, session: dict) -> PaymentEvent:
    return PaymentEvent(
        event_id,
        event_type,
        session.get("client_reference_id"),
        session.get("id"),
        session.get("payment_status"),
        Money(session["amount_total"], session["currency"]),
        session.get("payment_intent"),
    )


class InMemoryFulfilmentQueue:
    """Deduplicates per order, as the FIFO queue does within its window."""

    def __init__(self):
        self.messages: list[dict] = []
        self._seen: set[str] = set()

    def send(self, message: FulfilmentMessage):
        check_fulfilment_message(message.to_document())  # the real queue's own check
        if message.deduplication_id not in self._seen:
            self._seen.add(message.deduplication_id)
            self.messages.append(message.to_document())

    def send_amendment(self, amendment: AddressAmendment):
        check_amendment_message(amendment.to_document())  # the real queue's own check
        if amendment.deduplication_id not in self._seen:
            self._seen.add(amendment.deduplication_id)
            self.messages.append(amendment.to_document())

    def receive_all(self) -> list[dict]:
        return list(self.messages)

    def dead_letter_depth(self) -> int:
        return 0


class InMemoryFulfilments:
    """The manufacturer's lists, read from the in-memory orders as the sparse indexes would."""

    def __init__(self, orders: "InMemoryOrders", product_code: str = "PMK-1"):
        self._orders = orders
        self._product_code = product_code

    def relay_pending(self, limit=100):
        pending = [o for o in self._orders.orders.values() if o.awaits_release or o.amendment_unsent]
        return [o.reference for o in sorted(pending, key=lambda o: o.confirmed_at)][:limit]

    def open_fulfilments(self, cursor, limit):
        rows = sorted(
            (o for o in self._orders.orders.values() if o.open_for_manufacturer),
            key=lambda o: (o.released_at, o.reference),
        )
        start = int(cursor) if cursor else 0
        items = [
            OpenFulfilment(fulfilment_message_for(o, self._product_code), o.fulfilment, o.released_at)
            for o in rows[start : start + limit]
        ]
        return Page(items, str(start + limit) if start + limit < len(rows) else None)

    def released_before(self, cutoff):
        rows = sorted((o.released_at, o.fulfilment_id) for o in self._orders.orders.values() if o.open_for_manufacturer)
        return [fulfilment_id for released_at, fulfilment_id in rows if released_at < cutoff]

    def cancellations(self, cursor, limit):
        rows = sorted(
            (o for o in self._orders.orders.values() if o.cancellation_to_tell),
            key=lambda o: (o.cancelled_at, o.reference),
        )
        start = int(cursor) if cursor else 0
        items = [Cancellation(o.fulfilment_id, o.reference, o.cancelled_at) for o in rows[start : start + limit]]
        return Page(items, str(start + limit) if start + limit < len(rows) else None)

    def amendments(self, cursor, limit):
        rows = sorted(
            (o for o in self._orders.orders.values() if o.amendment_to_tell),
            key=lambda o: (o.amended_at, o.reference),
        )
        start = int(cursor) if cursor else 0
        items = [
            address_amendment(o.reference, o.delivery, o.amendments_issued, o.amended_at, self._product_code)
            for o in rows[start : start + limit]
        ]
        return Page(items, str(start + limit) if start + limit < len(rows) else None)


class InMemoryApiKeys:
    def __init__(self):
        self.keys: dict[str, object] = {}

    def find(self, key_id):
        return self.keys.get(key_id)

    def add(self, key):
        self.keys[key.key_id] = key

    def revoke(self, key_id, now):
        key = self.keys.get(key_id)
        if key is not None and key.active:
            self.keys[key_id] = dataclasses.replace(key, revoked_at=now)
        return self.keys.get(key_id)

    def all(self):
        return sorted(self.keys.values(), key=lambda k: k.created_at)


class RecordedMetrics:
    def __init__(self):
        self.reports: list[dict[str, int]] = []

    def report(self, values, unit="Count"):
        self.reports.append(dict(values))


class FakeLedger:
    """Stripe's ledger as a list: entries, payouts (with the ids they hold), charges by intent."""

    def __init__(self):
        self.entries_list: list = []
        self.payout_list: list = []
        self.charged_intents: set[str] = set()

    def entries(self, period):
        start, end = (datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in (period.start, period.end))
        return iter([e for e in self.entries_list if start <= e.created < end])

    def payouts(self, period):
        return iter(self.payout_list)

    def has_charge(self, payment_intent_id):
        return payment_intent_id in self.charged_intents


class InMemoryFinanceOrders:
    def __init__(self, orders: "InMemoryOrders"):
        self._orders = orders

    def created_in(self, period):
        rows = [o for o in self._orders.orders.values() if period.start <= o.created_at.date() < period.end]
        return iter([_facts(o) for o in sorted(rows, key=lambda o: (o.created_at, o.reference))])

    def facts(self, references):
        return {r: _facts(self._orders.orders[r]) for r in set(references) if r in self._orders.orders}

    def campaign_created_in(self, period):
        rows = [o for o in self._orders.orders.values() if period.start <= o.created_at.date() < period.end]
        for o in sorted(rows, key=lambda o: (o.created_at, o.reference)):
            dispatches = [at for _, at in earlier_dispatches(o.earlier_fulfilments)]
            dispatches += [o.dispatch.dispatched_at] if o.dispatch else []
            yield CampaignFacts(
                o.created_at,
                o.eligibility_reason != EligibilityReason.STANDARD_PRICE.value,
                o.state,
                o.payment,
                o.refunded_pence,
                len(o.earlier_fulfilments),
                dispatches[0] if dispatches else None,
            )

    def kits_created_in(self, period):
        rows = [o for o in self._orders.orders.values() if period.start <= o.created_at.date() < period.end]
        for o in sorted(rows, key=lambda o: (o.created_at, o.reference)):
            dispatched = o.dispatch.dispatched_at if o.dispatch else None
            yield KitFacts(
                o.fulfilment_id,
                o.eligibility_reason,
                o.fulfilment,
                o.released_at,
                dispatched,
                o.cancelled_at,
                earlier_dispatches(o.earlier_fulfilments),
                earlier_returned(o.earlier_fulfilments),
            )


def _facts(order):
    return OrderFacts(
        order.reference,
        order.created_at,
        order.state,
        order.payment,
        order.fulfilment,
        order.amount.pence,
        order.amount.currency,
        order.payment_intent_id,
        order.refunded_pence,
        order.dispute_status,
        order.released_at,
        order.cancelled_by_holder,
        order.fulfilment_attempt,
        order.earlier_fulfilments,
    )


class InMemoryExports:
    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.modified: dict[str, datetime] = {}

    def exists(self, key):
        return key in self.objects

    def put_once(self, key, body, content_type):
        if key in self.objects:
            return False
        self.objects[key] = body
        self.modified[key] = datetime.now(timezone.utc)
        return True

    def listing(self, prefix=""):
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            yield ExportedFile(key, len(self.objects[key]), self.modified[key])

    def read(self, key):
        return self.objects.get(key)


class SentMail:
    """Keeps what would have been emailed; `fail` makes the next sends raise MailUnavailable."""

    def __init__(self):
        self.sent: list[tuple[str, str, str]] = []
        self.fail = 0

    def send(self, to, subject, body):
        if self.fail:
            self.fail -= 1
            raise MailUnavailable("down")
        self.sent.append((to, subject, body))


class InMemoryAuditLog:
    """The audit log's fake: entries kept in a list, only ever added."""

    def __init__(self):
        self.entries: list = []

    def append(self, entry):
        if any(e.entry_id == entry.entry_id and e.at == entry.at for e in self.entries):
            raise AuditEntryExists(entry.entry_id)
        self.entries.append(entry)

    def between(self, start, end, *, actor=None, action=None, order_reference=None):
        wanted = {"actor": actor, "action": action, "order_reference": order_reference}
        found = [
            e
            for e in self.entries
            if start <= e.at < end and all(v is None or getattr(e, k) == v for k, v in wanted.items())
        ]
        yield from sorted(found, key=lambda e: (e.at, e.entry_id), reverse=True)


class InMemoryContacts:
    """The contact register as DynamoContacts keeps it: links by hash, contacts by certificate;
    `confirm` and `withdraw` are all or nothing under one lock, as one transaction is. Addresses
    are "sealed" by a visible wrapping, so a test can tell a stored value from an opened one."""

    def __init__(self):
        self.links: dict[str, ContactLink] = {}
        self.contacts: dict[str, Contact] = {}
        self.notices: dict[str, str] = {}  # certificate key -> replaced address (sealed)
        self._lock = threading.Lock()

    def add_link(self, link):
        with self._lock:
            assert link.token_hash not in self.links
            email = _fake_seal(link.email) if link.email is not None else None
            self.links[link.token_hash] = dataclasses.replace(link, email=email)

    def link(self, token_hash):
        return self.links.get(token_hash)

    def contact(self, certificate_key):
        return self.contacts.get(certificate_key)

    def confirm(self, link, confirmation, now):
        with self._lock:
            contact, replaced = confirmation.contact, confirmation.replaced
            stored = self.links.get(link.token_hash)
            if stored is None or stored.used_at is not None:
                raise ContactLinkNotUsable("used", link.purpose)
            current = self.contacts.get(contact.certificate_key)
            expected = replaced.email_key if replaced else contact.email_key
            if current is not None and current.email_key != expected:
                raise ConcurrentChange(contact.certificate_key)
            self.contacts[contact.certificate_key] = contact
            self.notices.pop(contact.certificate_key, None)
            if replaced is not None:
                self.notices[contact.certificate_key] = replaced.email
            self.links[link.token_hash] = dataclasses.replace(stored, used_at=now)

    def withdraw(self, link, now):
        with self._lock:
            stored = self.links.get(link.token_hash)
            if stored is None or stored.used_at is not None:
                raise ContactLinkNotUsable("used", link.purpose)
            gone = [key for key, c in self.contacts.items() if c.email_key == link.email_key]
            for key in gone:
                del self.contacts[key]
                self.notices.pop(key, None)
            self.links[link.token_hash] = dataclasses.replace(stored, used_at=now)
            return len(gone)

    def registered_at(self, email_key):
        return any(c.email_key == email_key for c in self.contacts.values())

    def email_of(self, certificate_key, stored):
        assert stored.startswith("sealed:"), "an address is opened from its stored form"
        return stored.removeprefix("sealed:")

    def notices_due(self):
        return sorted(key for key in self.notices if key in self.contacts)

    def replaced_address(self, certificate_key):
        stored = self.notices.get(certificate_key) if certificate_key in self.contacts else None
        return self.email_of(certificate_key, stored) if stored else None

    def end_notice(self, certificate_key):
        self.notices.pop(certificate_key, None)

    def confirmed(self):
        return [(self.email_of(key, c.email), c) for key, c in list(self.contacts.items())]

    def certificate_keys(self):
        return list(self.contacts)

    def remove(self, certificate_keys):
        removed = 0
        for key in list(certificate_keys):
            self.contacts.pop(key, None)
            self.notices.pop(key, None)
            removed += 1
        return removed


def _fake_seal(email: str) -> str:
    return "sealed:" + email

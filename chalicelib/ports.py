"""The ports: what the service layer needs from the outside world, in domain terms.

Each has a real adapter (chalicelib.adapters) and an in-memory fake (tests/fakes.py); one
contract suite runs against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Iterable, Iterator, Protocol

from .domain.contacts import Confirmation, Contact, ContactLink
from .domain.credentials import ApiKey
from .domain.dashboard import CampaignFacts
from .domain.delivery import DeliveryDetails
from .domain.fulfilment import AddressAmendment, FulfilmentMessage, Page
from .domain.money import Money
from .domain.orders import Order
from .domain.changes import Effect, GuardedChange
from .domain.payments import MoneyView
from .domain.kit_statement import KitFacts, Statement
from .domain.reconciliation import Finding, LedgerEntry, OrderFacts, Payout, Period
from .domain.register import RegisterEntry, RegisterState
from .domain.staff import Challenge, Group, SignInStep, StaffAccount, StaffSession
from .domain.audit import AuditEntry
from .domain.throttle import Reservation


@dataclass(frozen=True)
class CertificateLookup:
    entry: RegisterEntry | None
    kits_claimed: int


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified Stripe event (or a Checkout Session read back from Stripe), reduced to what
    tracekit acts on."""

    id: str
    type: str
    order_reference: str | None = None
    session_id: str | None = None
    payment_status: str | None = None
    paid: Money | None = None
    payment_intent_id: str | None = None


class Register(Protocol):
    def find(self, reference_key: str) -> CertificateLookup:
        """The live generation's entry and how many kits it has claimed, read together in one
        round trip (two on a container's first read after a switch)."""

    def state(self) -> RegisterState:
        """Which generation is live, which is previous, and which may still hold entries."""

    def entries(self, generation: int) -> Iterator[RegisterEntry]:
        """Every entry of one generation."""

    def start_generation(self) -> int:
        """A new generation's number, never handed out before; no import that started earlier
        can switch after this (it is no longer the last started)."""

    def save_all(self, generation: int, entries: Iterable[RegisterEntry]) -> int:
        """Write entries into a generation in batches; returns how many were written."""

    def switch(self, generation: int, expected: RegisterState, entries: int, at: datetime) -> RegisterState:
        """Make the generation live in one write, the live one becoming previous, if the register
        is still as `expected` and the generation is the last started; else RegisterChanged."""

    def roll_back(self, expected: RegisterState, at: datetime) -> RegisterState:
        """Swap live and previous in one write, if the register is still as `expected`; else
        RegisterChanged (NothingToRollBack if it has no previous generation)."""

    def delete_generation(self, generation: int) -> int:
        """Delete a generation's entries and forget it; returns how many. Idempotent."""


class Attempts(Protocol):
    """The certificate check's attempt counters (chalicelib.domain.throttle)."""

    def reserve(self, reservation: Reservation) -> bool:
        """In one round trip, all or nothing: add one to each of the reservation's places (creating
        it, with its expiry) if each is under its limit and each check's counter is under its own.
        False, and nothing changed, if any is at its limit (or another attempt on the same counter
        is being written at that instant)."""

    def sweep(self, now: datetime) -> int:
        """Delete counters past their expiry; returns how many."""


class Orders(Protocol):
    def create_claiming_certificate(self, order: Order, kits_per_certificate: int) -> None:
        """Store a new order and claim a kit for its certificate atomically.

        Raises OrderAlreadyExists (same reference) or CertificateAlreadyClaimed (no kits left)."""

    def get(self, reference: str) -> Order:
        """The order, its personal fields as stored (sealed: opaque text). Raises OrderNotFound."""

    def delivery_of(self, order: Order) -> DeliveryDetails:
        """The order's delivery details in clear, for the readers that must see them (the release
        to the kit maker, the emails, the holder's status check); the store's key opens them."""

    def apply_guarded(self, reference: str, change: GuardedChange) -> Order | None:
        """The change in one write if the order meets its requirements and has not seen its event:
        the order as it now is; otherwise None, and nothing written (the caller reads the order
        and applies the lifecycle's general rule)."""

    def save(
        self,
        before: Order,
        after: Order,
        effects: frozenset[Effect] = frozenset(),
        mail_held_until: datetime | None = None,
    ) -> None:
        """Store `after` if the order is still as `before` was read, carrying out in the same write
        the effects that are the store's: the certificate's claim moves (RELEASE_CLAIM, RECLAIM)
        and emails owed join the order's mail outbox, held until `mail_held_until` for the caller
        who will send them (else due at once). Raises ConcurrentChange otherwise."""

    def awaiting_past_hold(self, now: datetime) -> list[str]:
        """Unpaid orders still holding a claim after their hold ran out."""

    def erasure_due(self, now: datetime) -> list[str]:
        """Orders whose recipient's personal data is due to be erased."""

    def find_by_recipient(self, surname: str, postcode: str) -> list[str]:
        """References of the orders whose recipient has this surname (the name's last word) and
        this delivery postcode, ignoring case, spaces and punctuation (delivery.recipient_lookup_text),
        sorted; an erased order is never found."""

    def needing_support(self) -> list[tuple[str, datetime]]:
        """(reference, since when) of orders that need a person (Order.needs_support), oldest first."""

    def claim_due_notifications(
        self, reference: str, now: datetime, until: datetime
    ) -> tuple[Order, frozenset[str], int] | None:
        """If the order's mail outbox is due by `now`, it is the caller's until `until` (no one else
        can claim it before then): (the order, the kinds in it, failures so far). Else None."""

    def defer_notification(self, reference: str, kind: str, retry_after: datetime) -> None:
        """A send of this kind failed: it stays in the outbox, one more failure, due at the time."""

    def notifications_due(self, now: datetime) -> list[tuple[str, frozenset[str], int]]:
        """(reference, kinds, failures so far) of orders whose mail outbox is due by now."""

    def end_retry(self, reference: str, kind: str) -> None:
        """This kind leaves the outbox (sent, or given up); idempotent."""


class Contacts(Protocol):
    """The Firearms Enquiry Team's contact register (chalicelib.domain.contacts): links by the hash
    of their token, one confirmed address per certificate. Addresses are given in clear and kept
    sealed; `email_of` opens one."""

    def add_link(self, link: ContactLink) -> None:
        """Store a new link (a confirm link's address is sealed by the store)."""

    def link(self, token_hash: str) -> ContactLink | None:
        """The link stored under this hash, used or not, expired or not; None if there is none."""

    def contact(self, certificate_key: str) -> Contact | None:
        """The certificate's confirmed contact, or None."""

    def confirm(self, link: ContactLink, confirmation: Confirmation, now: datetime) -> None:
        """All or nothing: the link is used and the certificate's contact becomes
        `confirmation.contact`, the replaced address held for its notice. Raises
        ContactLinkNotUsable (used) if the link was used meanwhile, ConcurrentChange if the
        certificate's contact changed since it was read."""

    def withdraw(self, link: ContactLink, now: datetime) -> int:
        """All or nothing: the link is used and every contact at its address goes; how many.
        Raises ContactLinkNotUsable (used) if the link was used meanwhile."""

    def registered_at(self, email_key: str) -> bool:
        """Whether any certificate's contact is at this address."""

    def email_of(self, certificate_key: str, stored: str) -> str:
        """A contact's (or a confirm link's) address, opened."""

    def notices_due(self) -> list[str]:
        """Certificates whose contact still has a replaced address to tell."""

    def replaced_address(self, certificate_key: str) -> str | None:
        """The replaced address still to be told, in clear, or None."""

    def end_notice(self, certificate_key: str) -> None:
        """The replaced address was told: it goes. Idempotent."""

    def confirmed(self) -> Iterable[tuple[str, Contact]]:
        """(address in clear, contact) of every confirmed contact."""

    def certificate_keys(self) -> Iterable[str]:
        """The certificate of every contact."""

    def remove(self, certificate_keys: Iterable[str]) -> int:
        """These certificates' contacts go; idempotent."""


class Payments(Protocol):
    def start_checkout(
        self, order: Order, success_url: str, cancel_url: str, expires_at: datetime, attempt: int
    ) -> CheckoutSession:
        """Idempotent per order and attempt: a retry returns the same session."""

    def parse_webhook(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """Verify the signature over the raw bytes; raises InvalidWebhook."""

    def read_checkout(self, session_id: str) -> PaymentEvent:
        """The session as Stripe has it now, shaped as a checkout.session.completed fact."""

    def expire_checkout(self, session_id: str) -> None:
        """Close an open session so it cannot be paid; no error if it is already closed."""

    def money_view(self, payment_intent_id: str) -> MoneyView:
        """Stripe's current view of a payment: refunded amount and dispute status."""

    def refund(self, payment_intent_id: str, amount_pence: int, idempotency_key: str, order_reference: str) -> str:
        """Refund part or all of a payment; returns Stripe's refund id."""


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None:
        """A plain-text email from the service's own address; MailUnavailable if it cannot go."""


class EmailRenderer(Protocol):
    def render(self, kind: str, order: Order) -> tuple[str, str]:
        """(subject, body) in plain text of the holder's email of this kind (a domain email kind)."""

    def render_contact(self, kind: str, **links: str) -> tuple[str, str]:
        """(subject, body) of a contact register email (templates/email/contact_<kind>.txt), with
        its links; it names no order and no certificate."""


class FulfilmentQueue(Protocol):
    def send(self, message: FulfilmentMessage) -> None:
        """At-least-once, deduplicated per fulfilment id. Raises QueueUnavailable, or
        FulfilmentMessageRefused (not sent) for a message that breaks its schema."""

    def send_amendment(self, amendment: AddressAmendment) -> None:
        """At-least-once, in the fulfilment's message group, deduplicated per amendment. Raises
        QueueUnavailable, or FulfilmentMessageRefused (not sent) if it breaks its schema."""

    def dead_letter_depth(self) -> int:
        """How many messages the consumer gave up on."""


class Fulfilments(Protocol):
    """Read models on sparse indexes: never a scan."""

    def relay_pending(self, limit: int = 100) -> list[str]:
        """References of confirmed orders whose message has not been sent (the outbox)."""

    def open_fulfilments(self, cursor: str | None, limit: int) -> Page:
        """Released or accepted fulfilment orders, oldest first. Raises InvalidInput for a bad cursor."""

    def cancellations(self, cursor: str | None, limit: int) -> Page:
        """Fulfilments cancelled after release and not yet acknowledged."""

    def amendments(self, cursor: str | None, limit: int) -> Page:
        """Open fulfilments whose latest address amendment the kit maker has not acknowledged,
        oldest amendment first (AddressAmendment, the current recipient). InvalidInput: bad cursor."""

    def released_before(self, cutoff: datetime) -> list[str]:
        """Fulfilment ids of open orders released before `cutoff`, oldest first (no recipient read)."""


class ApiKeys(Protocol):
    def find(self, key_id: str) -> ApiKey | None: ...

    def add(self, key: ApiKey) -> None: ...

    def revoke(self, key_id: str, now: datetime) -> ApiKey | None: ...

    def all(self) -> list[ApiKey]: ...


class Metrics(Protocol):
    def report(self, values: dict[str, int], unit: str = "Count") -> None:
        """Publish named values for alarms to watch."""


class Ledger(Protocol):
    """Stripe's balance transactions and payouts, streamed."""

    def entries(self, period: Period) -> Iterator[LedgerEntry]: ...

    def payouts(self, period: Period) -> Iterator[tuple[Payout, list[str]]]:
        """Payouts that may hold the period's transactions, with the ids of those they hold."""

    def has_charge(self, payment_intent_id: str | None) -> bool: ...


class FinanceOrders(Protocol):
    """Orders as finance sees them: `OrderFacts`, never a name or an address."""

    def created_in(self, period: Period) -> Iterator[OrderFacts]:
        """Oldest first, by a query on the creation-day index, never a scan."""

    def facts(self, references: Iterable[str]) -> dict[str, OrderFacts]: ...

    def campaign_created_in(self, period: Period) -> Iterator[CampaignFacts]:
        """Orders created in the period as the campaign dashboard reads them, oldest first."""

    def kits_created_in(self, period: Period) -> Iterator[KitFacts]:
        """Each order's fulfilment as the kit maker's statement needs it, by the same index."""


class Report(Protocol):
    """Finance's file over a binary stream, written as rows come (chalicelib.reports)."""

    rows: int

    def row(self, values: dict) -> None: ...

    def finish(self, findings: list[Finding], summary: list[tuple[str, int | str]]) -> None: ...


class Reports(Protocol):
    def __call__(self, fmt: str, stream: BinaryIO) -> Report:
        """A writer for 'csv' or 'xlsx' over the stream; the caller owns (and closes) the stream."""


class StatementFiles(Protocol):
    def __call__(self, fmt: str, stream: BinaryIO, result: Statement) -> None:
        """The kit maker's statement as 'csv' or 'xlsx' into the stream; the caller owns the stream."""


@dataclass(frozen=True)
class ExportedFile:
    key: str
    size: int  # bytes
    modified: datetime


class Exports(Protocol):
    def exists(self, key: str) -> bool: ...

    def put_once(self, key: str, body: bytes, content_type: str) -> bool:
        """Write unless the key exists; False when it did."""

    def listing(self, prefix: str = "") -> Iterator[ExportedFile]:
        """The files under the prefix, in key order."""

    def read(self, key: str) -> bytes | None:
        """A file's bytes; None when there is no such key."""


class StaffDirectory(Protocol):
    """The staff user pool (Amazon Cognito): who may sign in to the console, and their groups."""

    def sign_in(self, username: str, password: str) -> SignInStep:
        """A password checked; signed in, asked for more (a code, a new password), or refused."""

    def answer(self, challenge: Challenge, answer: str) -> SignInStep:
        """The code from the authenticator app, or the new password, for the challenge."""

    def set_up_authenticator(self, challenge: Challenge) -> tuple[str, Challenge]:
        """For MFA_SETUP: the new secret to add to an authenticator app, and the step that waits
        for its first code (answered through `answer`)."""

    def accounts(self) -> list[StaffAccount]:
        """Every user of the pool with their groups, ordered by email."""

    def account(self, sub: str) -> StaffAccount | None: ...

    def invite(self, email: str, groups: frozenset[Group]) -> StaffAccount:
        """A new user, emailed a temporary password by Cognito (never seen here), in the groups.
        Raises StaffAccountExists when the email already has an account."""

    def set_groups(self, account: StaffAccount, groups: frozenset[Group]) -> None: ...

    def set_enabled(self, account: StaffAccount, enabled: bool) -> None: ...


class StaffSessions(Protocol):
    """The console's sessions, server-side, so that signing out (or a timeout) ends them at once."""

    def start(self, session: StaffSession) -> None:
        """Store a new session (its key never seen before)."""

    def touch(self, key: str, now: datetime) -> StaffSession | None:
        """The live session with this key, its idle clock restarted; None when there is none or it
        has timed out (idle or absolute), in one conditional write."""

    def end(self, key: str) -> None:
        """Gone, whether or not it was there."""


class AuditLog(Protocol):
    """Staff actions, append-only."""

    def append(self, entry: AuditEntry) -> None:
        """Add the entry; never overwrites one already there (a conditional put)."""

    def between(
        self,
        start: datetime,
        end: datetime,
        *,
        actor: str | None = None,
        action: str | None = None,
        order_reference: str | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries from start (inclusive) to end (exclusive), newest first, filtered; one order's
        entries come from an index on the order reference, never a scan."""

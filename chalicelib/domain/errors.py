"""The handful of domain errors. They become HTTP in one place, chalicelib.web.errors: one table for
the holder's pages, one for the partner API, one for Stripe's webhook."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """Base class: an expected refusal, never a bug."""


class InvalidInput(DomainError):
    """One or more form fields are wrong. `errors` maps field name to a message for people."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("invalid input: " + ", ".join(sorted(errors)))
        self.errors = errors


class CertificateNotAccepted(DomainError):
    """The certificate check failed. Deliberately says nothing about why."""


class CertificateAlreadyClaimed(DomainError):
    """The certificate has used up its kits for the campaign."""


class OrderNotFound(DomainError):
    """No order with that reference."""


class AuditEntryExists(DomainError):
    """An audit entry with that time and id is already there: the log is never overwritten."""


class StaffAccountExists(DomainError):
    """That email address already has a staff account."""


class StaffAccountNotFound(DomainError):
    """No staff account with that id."""


class KeyNotFound(DomainError):
    """No partner API key with that id."""


class ExportNotFound(DomainError):
    """No scheduled export under that key (or a key outside the export folders)."""


class InvalidWebhook(DomainError):
    """A webhook whose signature or body cannot be trusted."""


class PaymentServiceUnavailable(DomainError):
    """The payment provider could not be reached after retries."""


class QueueUnavailable(DomainError):
    """The fulfilment queue could not take a message; the order stays confirmed and unreleased."""


class FulfilmentMessageRefused(DomainError):
    """A fulfilment message that breaks its schema (schemas/fulfilment-message.v1.json), refused
    before it was sent. `problems` names the fields and the rules they break, never their values
    (which are the recipient's personal data)."""

    def __init__(self, problems: tuple[str, ...]):
        super().__init__("fulfilment message breaks its schema: " + ", ".join(problems))
        self.problems = problems


class OrderAlreadyExists(DomainError):
    """An order with this reference was already placed (a second click on the same confirmation)."""


class ConcurrentChange(DomainError):
    """The order changed between reading and writing it; read it again and retry."""


class RefundRefused(DomainError):
    """A refund that cannot be made (nothing paid, or more than is left)."""


class FulfilmentConflict(DomainError):
    """A manufacturer's call that contradicts what already happened (dispatch after cancellation)."""


class ReplacementRefused(FulfilmentConflict):
    """The holder reports a kit missing that cannot be: not posted, ended, or already decided on."""


class ReplacementTooEarly(ReplacementRefused):
    """The holder reports a kit missing before the configured days after its dispatch."""

    def __init__(self, allowed_from: datetime):
        super().__init__(f"a kit can be reported missing from {allowed_from.isoformat()}")
        self.allowed_from = allowed_from


class AddressNotChangeable(FulfilmentConflict):
    """The holder asked to change the delivery address once the kit maker had accepted the order
    (or it had ended): the holder's page gives the campaign's contact instead."""


class OrderNotMatched(DomainError):
    """The order reference and postcode do not match an order. Deliberately says nothing about why."""


class NothingToResend(DomainError):
    """Support asked for an email the order cannot have (no address, or not yet due)."""


class NothingToResolve(DomainError):
    """Support asked to resolve an order that is not waiting for it (not rejected or returned)."""


class MailUnavailable(Exception):
    """The mail service refused or could not be reached; the message names no recipient."""


class RegisterChanged(DomainError):
    """Another import, a rollback or a prune changed the register while this import ran: it did
    not switch (import again)."""


class NothingToRollBack(DomainError):
    """The register has no previous generation to restore."""


class ExportChanged(DomainError):
    """The register file read for writing is not the one that was checked (it changed on disk in
    between): nothing switched (import again)."""


class ContactLinkNotUsable(DomainError):
    """A contact register link that cannot be used: `state` is unknown, used or expired, `purpose`
    confirm or withdraw. The page says which, and what to do next."""

    def __init__(self, state: str, purpose: str):
        super().__init__(f"contact link {state}")
        self.state = state
        self.purpose = purpose

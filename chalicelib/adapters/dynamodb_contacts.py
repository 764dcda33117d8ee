"""The contact register in DynamoDB (chalicelib.domain.contacts): one table of two kinds of item.

- `contact#<certificate key>`: the certificate's confirmed address, sealed, with its keyed hash
  (`email_key`, the sparse `by-email` index: how a withdrawal finds an address's registrations),
  and, while an address it replaced has still to be told, that address sealed (`notice_email`, the
  sparse `notices-due` index).
- `link#<token hash>`: a link's stored half (never the token), expiring by DynamoDB's TTL.

The address is sealed under the certificate's contact (`contact:<certificate key>`, field `email`),
so a confirm link's sealed address moves to the contact as it is, and opens nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..domain.contacts import Confirmation, Contact, ContactLink, LinkState
from ..domain.errors import ConcurrentChange, ContactLinkNotUsable
from ..domain.times import from_iso, to_iso
from .dynamodb import model_meta
from .dynamodb_writes import failed_conditions, is_condition_failure

CONTACT, LINK, YES = "contact#", "link#", "yes"
KEPT_AFTER_EXPIRY = timedelta(days=7)  # a used or expired link still says so for a week, then goes
TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems


class ByEmailIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-email"
        projection = KeysOnlyProjection()

    email_key = UnicodeAttribute(hash_key=True)


class NoticesDueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "notices-due"
        projection = KeysOnlyProjection()

    notice_due = UnicodeAttribute(hash_key=True)


class ContactFields(Model):
    key = UnicodeAttribute(hash_key=True)
    email_key = UnicodeAttribute(null=True)  # contacts only: links keep theirs as link_email_key
    email = UnicodeAttribute(null=True)
    consented_at = UnicodeAttribute(null=True)
    confirmed_at = UnicodeAttribute(null=True)
    notice_email = UnicodeAttribute(null=True)
    notice_due = UnicodeAttribute(null=True)
    purpose = UnicodeAttribute(null=True)
    link_email_key = UnicodeAttribute(null=True)
    certificate_key = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)
    used_at = UnicodeAttribute(null=True)
    ttl = NumberAttribute(null=True)  # DynamoDB's TTL: links only
    by_email = ByEmailIndex()
    notices_due_index = NoticesDueIndex()


def build_contact_model(table_name: str, region: str, host: str | None) -> type[ContactFields]:
    class ContactRecord(ContactFields):
        Meta = model_meta(table_name, region, host)

    return ContactRecord


def sealed_under(certificate_key: str) -> str:
    """The reference a contact's address is sealed under."""
    return f"contact:{certificate_key}"


class DynamoContacts:
    def __init__(self, model: type[ContactFields], fields):
        self._model, self._fields = model, fields  # fields: the sealer (None where nothing is opened)
        self._connection = Connection(region=model.Meta.region, host=model.Meta.host)  # for transactions

    def add_link(self, link: ContactLink) -> None:
        """A new link; a confirm link's address (given in clear) is sealed here."""
        email = None
        if link.email is not None and link.certificate_key is not None:
            email = self._fields.seal(sealed_under(link.certificate_key), "email", link.email)
        self._model(
            LINK + link.token_hash,
            purpose=link.purpose,
            link_email_key=link.email_key,
            certificate_key=link.certificate_key,
            email=email,
            consented_at=to_iso(link.consented_at) if link.consented_at else None,
            expires_at=to_iso(link.expires_at),
            ttl=int((link.expires_at + KEPT_AFTER_EXPIRY).timestamp()),
        ).save(condition=self._model.key.does_not_exist())

    def link(self, token_hash: str) -> ContactLink | None:
        record = self._get(LINK + token_hash)
        if record is None:
            return None
        return ContactLink(
            token_hash=token_hash,
            purpose=record.purpose or "",
            email_key=record.link_email_key or "",
            expires_at=from_iso(record.expires_at),
            certificate_key=record.certificate_key,
            email=record.email,
            consented_at=from_iso(record.consented_at) if record.consented_at else None,
            used_at=from_iso(record.used_at) if record.used_at else None,
        )

    def contact(self, certificate_key: str) -> Contact | None:
        record = self._get(CONTACT + certificate_key)
        return _contact(record) if record is not None and record.email_key else None

    def confirm(self, link: ContactLink, confirmation: Confirmation, now: datetime) -> None:
        """One TransactWriteItems: the link used (if it still was not), the certificate's contact
        written (if it is still the one read: `confirmation.replaced`, or the same address, or none),
        with the replaced address held for its notice."""
        model, contact, replaced = self._model, confirmation.contact, confirmation.replaced
        record = model(
            CONTACT + contact.certificate_key,
            email_key=contact.email_key,
            email=contact.email,
            consented_at=to_iso(contact.consented_at),
            confirmed_at=to_iso(contact.confirmed_at),
            notice_email=replaced.email if replaced else None,
            notice_due=YES if replaced else None,
        )
        expected = replaced.email_key if replaced else contact.email_key
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(record, condition=model.key.does_not_exist() | (model.email_key == expected))
                transaction.update(
                    model(LINK + link.token_hash),
                    actions=[model.used_at.set(to_iso(now))],
                    condition=model.key.exists() & model.used_at.does_not_exist(),
                )
        except TransactWriteError as exc:
            changed, used = (failed_conditions(exc) + [False, False])[:2]
            if used:
                raise ContactLinkNotUsable(LinkState.USED.value, link.purpose) from None
            if changed:
                raise ConcurrentChange(contact.certificate_key) from None
            raise

    def withdraw(self, link: ContactLink, now: datetime) -> int:
        """One TransactWriteItems: the link used (if it still was not) and every contact at its
        address deleted. Returns how many went."""
        model = self._model
        keys = [r.key for r in model.by_email.query(link.email_key)][: TRANSACTION_ITEMS - 1]
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for key in keys:
                    transaction.delete(model(key), condition=model.email_key == link.email_key)
                transaction.update(
                    model(LINK + link.token_hash),
                    actions=[model.used_at.set(to_iso(now))],
                    condition=model.key.exists() & model.used_at.does_not_exist(),
                )
        except TransactWriteError as exc:
            failed = failed_conditions(exc) + [False] * (len(keys) + 1)
            if failed[len(keys)]:
                raise ContactLinkNotUsable(LinkState.USED.value, link.purpose) from None
            if any(failed[: len(keys)]):
                raise ConcurrentChange("contact") from None  # one changed address since the query: try again
            raise
        return len(keys)

    def registered_at(self, email_key: str) -> bool:
        return any(True for _ in self._model.by_email.query(email_key, limit=1))

    def email_of(self, certificate_key: str, stored: str) -> str:
        return self._fields.open(sealed_under(certificate_key), "email", stored)

    def notices_due(self) -> list[str]:
        """Certificate keys whose contact still has a replaced address to tell."""
        return [r.key.removeprefix(CONTACT) for r in self._model.notices_due_index.query(YES)]

    def replaced_address(self, certificate_key: str) -> str | None:
        """The replaced address still to be told, in clear, or None."""
        record = self._get(CONTACT + certificate_key)
        if record is None or not record.notice_email:
            return None
        return self.email_of(certificate_key, record.notice_email)

    def end_notice(self, certificate_key: str) -> None:
        """The replaced address was told (or is past telling): it goes. Idempotent."""
        model = self._model
        try:
            model(CONTACT + certificate_key).update(
                actions=[model.notice_email.remove(), model.notice_due.remove()],
                condition=model.key.exists(),
            )
        except UpdateError as exc:
            if not is_condition_failure(exc):  # only "no such contact any more" is expected
                raise

    def confirmed(self) -> Iterator[tuple[str, Contact]]:
        """(address in clear, contact) of every confirmed contact: a Scan, for the team's export."""
        for record in self._model.scan(self._model.key.startswith(CONTACT)):
            if record.email_key:
                contact = _contact(record)
                yield self.email_of(contact.certificate_key, contact.email), contact

    def certificate_keys(self) -> Iterator[str]:
        """The certificate of every contact (keys only)."""
        for record in self._model.scan(self._model.key.startswith(CONTACT), attributes_to_get=["key"]):
            yield record.key.removeprefix(CONTACT)

    def remove(self, certificate_keys: Iterable[str]) -> int:
        """These certificates' contacts go (batched deletes; idempotent). Returns how many keys."""
        removed = 0
        with self._model.batch_write() as batch:
            for certificate_key in certificate_keys:
                batch.delete(self._model(CONTACT + certificate_key))
                removed += 1
        return removed

    def _get(self, key: str):
        try:
            return self._model.get(key, consistent_read=True)
        except self._model.DoesNotExist:
            return None


def _contact(record) -> Contact:
    return Contact(
        certificate_key=record.key.removeprefix(CONTACT),
        email_key=record.email_key,
        email=record.email,
        consented_at=from_iso(record.consented_at),
        confirmed_at=from_iso(record.confirmed_at),
    )

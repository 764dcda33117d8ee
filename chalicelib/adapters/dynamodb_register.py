"""The holder register in DynamoDB, keyed by HMAC of the certificate reference (the certificate
check's attempt counters are dynamodb_attempts.py's)."""

from __future__ import annotations

from datetime import date
from typing import Iterable, Iterator

from pynamodb.models import Model
from pynamodb.transactions import TransactGet

from ..domain.register import CertificateStatus, RegisterEntry
from ..ports import CertificateLookup
from .dynamodb import Models, RegisterFields


class DynamoRegister:
    """The holder register, keyed by HMAC of the certificate reference."""

    def __init__(self, models: Models):
        self._models = models

    def find(self, reference_key: str) -> CertificateLookup:
        """One TransactGetItems request reads the entry and its claim."""
        register, claims = self._models.register, self._models.claims
        with TransactGet(connection=self._models.connection) as transaction:
            entry_future = transaction.get(register, reference_key)
            claim_future = transaction.get(claims, reference_key)
        return CertificateLookup(_entry_or_none(entry_future, register), _kits_claimed(claim_future, claims))

    def save_all(self, entries: Iterable[RegisterEntry]) -> int:
        """BatchWriteItem, 25 items a request (PynamoDB chunks and retries unprocessed items)."""
        written = 0
        with self._models.register.batch_write() as batch:
            for entry in entries:
                batch.save(self._record(entry))
                written += 1
        return written

    def all_keys(self) -> Iterator[str]:
        """Every reference key, for replacing the register wholesale (an operator's batch job: a
        keys-only scan of the register, never of orders)."""
        for record in self._models.register.scan(attributes_to_get=["reference_key"]):
            yield record.reference_key

    def delete_all(self, reference_keys: Iterable[str]) -> int:
        deleted = 0
        with self._models.register.batch_write() as batch:
            for key in reference_keys:
                batch.delete(self._models.register(key))
                deleted += 1
        return deleted

    def _record(self, entry: RegisterEntry) -> RegisterFields:
        return self._models.register(
            entry.reference_key,
            postcode_mac=entry.postcode_mac,
            status=entry.status.value,
            expires_on=entry.expires_on.isoformat(),
            free_kit=entry.free_kit,
        )


def _entry_or_none(future, model: type[Model]) -> RegisterEntry | None:
    try:
        record = future.get()
    except model.DoesNotExist:
        return None
    return RegisterEntry(
        reference_key=record.reference_key,
        postcode_mac=record.postcode_mac,
        status=CertificateStatus(record.status),
        expires_on=date.fromisoformat(record.expires_on),
        free_kit=bool(record.free_kit),
    )


def _kits_claimed(future, model: type[Model]) -> int:
    try:
        return int(future.get().kits or 0)
    except model.DoesNotExist:
        return 0

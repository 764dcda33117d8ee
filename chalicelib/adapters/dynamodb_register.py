"""The holder register in DynamoDB, keyed by HMAC of the certificate reference, with the
certificate check's attempt counters beside it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Iterable, Iterator

from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from ..domain.register import CertificateStatus, RegisterEntry
from ..ports import CertificateLookup
from .dynamodb import SWEEP_GROUP, Models, RegisterFields


class DynamoRegister:
    """The holder register, keyed by HMAC of the certificate reference."""

    def __init__(self, models: Models):
        self._models = models

    def find(self, reference_key: str, attempt_keys: tuple[str, ...] = ()) -> CertificateLookup:
        """One TransactGetItems request reads the entry, its claim and the attempt counters."""
        register, claims, attempts = self._models.register, self._models.claims, self._models.attempts
        with TransactGet(connection=self._models.connection) as transaction:
            entry_future = transaction.get(register, reference_key)
            claim_future = transaction.get(claims, reference_key)
            counter_futures = {key: transaction.get(attempts, key) for key in attempt_keys}
        failures = {key: _failures(future, attempts) for key, future in counter_futures.items()}
        return CertificateLookup(_entry_or_none(entry_future, register), _kits_claimed(claim_future, claims), failures)

    def record_failures(self, increments: list[tuple[str, datetime]]) -> None:
        """One TransactWriteItems: each counter gains one, atomically (no read-then-write race)."""
        attempts = self._models.attempts
        with TransactWrite(connection=self._models.connection) as transaction:
            for key, expires in increments:
                transaction.update(
                    attempts(key),
                    actions=[
                        attempts.failures.add(1),
                        attempts.expires_at.set(int(expires.timestamp())),
                        attempts.sweep_group.set(SWEEP_GROUP),
                    ],
                )

    def sweep_attempts(self, now: datetime) -> int:
        """Delete counters past their expiry, found on the expiry index (never a scan)."""
        attempts = self._models.attempts
        expired = [
            r.attempt_key
            for r in attempts.expiry_index.query(
                SWEEP_GROUP, range_key_condition=attempts.expires_at < int(now.timestamp())
            )
        ]
        with attempts.batch_write() as batch:
            for key in expired:
                batch.delete(attempts(key))
        return len(expired)

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


def _failures(future, model: type[Model]) -> int:
    try:
        return int(future.get().failures or 0)
    except model.DoesNotExist:
        return 0


def _kits_claimed(future, model: type[Model]) -> int:
    try:
        return int(future.get().kits or 0)
    except model.DoesNotExist:
        return 0

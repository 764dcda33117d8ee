"""The holder register in DynamoDB, keyed by HMAC of the certificate reference (the certificate
check's attempt counters are dynamodb_attempts.py's).

The register is kept in generations: an import writes a whole new one, then one conditional write
to the pointer item makes it live. A check reads the pointer, the entry under the generation this
container last saw live, and the claim in one TransactGetItems, so what it reads is one consistent
snapshot; when the pointer names another generation (the first check in a container, or the
first after a switch) it reads again under that one.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime
from typing import Iterable, Iterator

from pynamodb.attributes import Attribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactGet

from ..domain.errors import RegisterChanged
from ..domain.register import CertificateStatus, RegisterEntry, RegisterState
from ..ports import CertificateLookup
from .dynamodb import Models, RegisterFields, RegisterPointerFields

# Partition keys per generation. An import writes one batch at a time, about 2,000 items a second;
# 8 keys take 8,000 (1,000 each), and reading a generation is 8 queries (a page each up to about
# 40,000 entries). moto's query sorts the whole table for every request, so fewer is faster there.
SHARDS = 8
POINTER = "register"  # the pointer item's hash and range key (an entry's bucket always has a '#')
READS = 3  # a check's reads at most: a guess, the generation the pointer named, and once more if it moved again


def bucket(generation: int, reference_key: str) -> str:
    """An entry's hash key: its generation and one of SHARDS shards, chosen from its key."""
    return f"{generation}#{zlib.crc32(reference_key.encode()) % SHARDS:x}"


def buckets(generation: int) -> list[str]:
    return [f"{generation}#{shard:x}" for shard in range(SHARDS)]


class DynamoRegister:
    """The holder register, keyed by generation and HMAC of the certificate reference."""

    def __init__(self, models: Models):
        self._models = models
        # The generation this container last saw live: only a guess, which every read checks.
        self._live: int | None = None

    def find(self, reference_key: str) -> CertificateLookup:
        """One TransactGetItems request reads the pointer, the entry under the generation last
        seen live, and its claim; a second only if the pointer has moved."""
        lookup = CertificateLookup(None, 0)
        for _ in range(READS):
            guess = self._live
            lookup, self._live = self._read(reference_key, guess)
            if self._live == guess:
                return lookup
        # The register switched again between each of these reads (imports take minutes, so this
        # is all but impossible): no entry is trusted, so the check refuses, the safe answer.
        return CertificateLookup(None, lookup.kits_claimed)

    def _read(self, reference_key: str, generation: int | None) -> tuple[CertificateLookup, int | None]:
        register, claims = self._models.register, self._models.claims
        with TransactGet(connection=self._models.connection) as transaction:
            pointer_future = transaction.get(self._models.register_pointer, POINTER, POINTER)
            entry_future = None
            if generation is not None:
                entry_future = transaction.get(register, bucket(generation, reference_key), reference_key)
            claim_future = transaction.get(claims, reference_key)
        entry = _entry_or_none(entry_future, register) if entry_future else None
        live = _state_or_empty(pointer_future, self._models.register_pointer).live
        return CertificateLookup(entry, _kits_claimed(claim_future, claims)), live

    def state(self) -> RegisterState:
        pointer = self._models.register_pointer
        try:
            return _state(pointer.get(POINTER, POINTER, consistent_read=True))
        except pointer.DoesNotExist:
            return RegisterState()

    def entries(self, generation: int) -> Iterator[RegisterEntry]:
        """A generation's shards, queried one after another (consistent reads)."""
        register = self._models.register
        for key in buckets(generation):
            for record in register.query(key, consistent_read=True):
                yield _entry(record)

    def start_generation(self) -> int:
        """Read the pointer, then take the next number in a write conditional on nobody else
        having taken it meanwhile (tried again if someone had)."""
        pointer = self._models.register_pointer
        while True:
            last = self.state().started
            taken = pointer.started == last if last else pointer.started.does_not_exist()
            try:
                pointer(POINTER, POINTER).update(
                    actions=[pointer.started.set(last + 1), pointer.generations.add({last + 1})], condition=taken
                )
                return last + 1
            except UpdateError as exc:
                if not _condition_failed(exc):
                    raise

    def save_all(self, generation: int, entries: Iterable[RegisterEntry]) -> int:
        """BatchWriteItem, 25 items a request (PynamoDB chunks and retries unprocessed items)."""
        written = 0
        with self._models.register.batch_write() as batch:
            for entry in entries:
                batch.save(self._record(generation, entry))
                written += 1
        return written

    def switch(self, generation: int, expected: RegisterState, entries: int, at: datetime) -> RegisterState:
        pointer = self._models.register_pointer
        last_started = pointer.started == generation
        return self._write_pointer(
            expected.switched_to(generation, entries, at), last_started & _is_still(pointer, expected)
        )

    def roll_back(self, expected: RegisterState, at: datetime) -> RegisterState:
        return self._write_pointer(expected.rolled_back(at), _is_still(self._models.register_pointer, expected))

    def delete_generation(self, generation: int) -> int:
        """Query each shard for its keys, delete them in batches, then forget the generation (a
        crash before that leaves it listed, so the next prune finishes the job)."""
        register, pointer = self._models.register, self._models.register_pointer
        deleted = 0
        with register.batch_write() as batch:
            for key in buckets(generation):
                for record in register.query(key, attributes_to_get=["bucket", "reference_key"]):
                    batch.delete(record)
                    deleted += 1
        pointer(POINTER, POINTER).update(actions=[pointer.generations.delete({generation})])
        return deleted

    def _write_pointer(self, after: RegisterState, condition) -> RegisterState:
        """Write the pointer's live and previous generations; returns the pointer as written."""
        pointer = self._models.register_pointer
        values: list[tuple[Attribute, object]] = [
            (pointer.live, after.live),
            (pointer.previous, after.previous),
            (pointer.live_entries, after.live_entries),
            (pointer.previous_entries, after.previous_entries),
            (pointer.live_since, after.live_since.isoformat() if after.live_since else None),
            (pointer.previous_since, after.previous_since.isoformat() if after.previous_since else None),
        ]
        actions: list[Action] = [
            attribute.set(value) if value is not None else attribute.remove() for attribute, value in values
        ]
        record = pointer(POINTER, POINTER)
        try:
            record.update(actions=actions, condition=condition)  # PynamoDB reads back ALL_NEW
        except UpdateError as exc:
            if _condition_failed(exc):
                raise RegisterChanged() from None
            raise
        self._live = after.live
        return _state(record)

    def _record(self, generation: int, entry: RegisterEntry) -> RegisterFields:
        return self._models.register(
            bucket(generation, entry.reference_key),
            entry.reference_key,
            postcode_mac=entry.postcode_mac,
            status=entry.status.value,
            expires_on=entry.expires_on.isoformat(),
            free_kit=entry.free_kit,
        )


def _is_still(pointer: type[RegisterPointerFields], expected: RegisterState):
    """The condition that the pointer's live and previous generations are still as read."""
    condition = pointer.reference_key == POINTER  # always true of the pointer item: a base to add to
    for attribute, value in ((pointer.live, expected.live), (pointer.previous, expected.previous)):
        condition &= attribute == value if value is not None else attribute.does_not_exist()
    return condition


def _condition_failed(exc: UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def _state_or_empty(future, model: type[Model]) -> RegisterState:
    try:
        return _state(future.get())
    except model.DoesNotExist:
        return RegisterState()


def _state(record: RegisterPointerFields) -> RegisterState:
    def number(value) -> int | None:
        return None if value is None else int(value)

    def moment(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    return RegisterState(
        live=number(record.live),
        previous=number(record.previous),
        started=int(record.started or 0),
        generations=frozenset(int(g) for g in record.generations or ()),
        live_entries=int(record.live_entries or 0),
        previous_entries=int(record.previous_entries or 0),
        live_since=moment(record.live_since),
        previous_since=moment(record.previous_since),
    )


def _entry(record: RegisterFields) -> RegisterEntry:
    return RegisterEntry(
        reference_key=record.reference_key,
        postcode_mac=record.postcode_mac,
        status=CertificateStatus(record.status),
        expires_on=date.fromisoformat(record.expires_on),
        free_kit=bool(record.free_kit),
    )


def _entry_or_none(future, model: type[Model]) -> RegisterEntry | None:
    try:
        return _entry(future.get())
    except model.DoesNotExist:
        return None


def _kits_claimed(future, model: type[Model]) -> int:
    try:
        return int(future.get().kits or 0)
    except model.DoesNotExist:
        return 0

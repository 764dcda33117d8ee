"""The certificate check's attempt counters in DynamoDB: a reservation is one TransactWriteItems."""

from __future__ import annotations

from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..domain.throttle import Reservation
from .dynamodb import SWEEP_GROUP, AttemptFields

# Why a transaction item can cancel one: its condition failed (a counter at its limit), or another
# transaction was writing the same counter at that instant (DynamoDB does not queue them).
_REFUSED = {"ConditionalCheckFailed", "TransactionConflict"}


class DynamoAttempts:
    """Counters keyed by subject and period (keyed hashes only), expiring by TTL and the sweep."""

    def __init__(self, attempts: type[AttemptFields], connection: Connection):
        self._attempts, self._connection = attempts, connection

    def reserve(self, reservation: Reservation) -> bool:
        """Each place gains one on condition it is under its limit; each check is a ConditionCheck
        that its counter is absent or under its limit. A cancellation for either reason is a
        refusal (nothing was written); anything else is raised."""
        attempts = self._attempts
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for place in reservation.places:
                    transaction.update(
                        attempts(place.key),
                        actions=[
                            attempts.reserved.add(1),
                            attempts.expires_at.set(int(place.expires.timestamp())),
                            attempts.sweep_group.set(SWEEP_GROUP),
                        ],
                        condition=attempts.reserved.does_not_exist() | (attempts.reserved < place.limit),
                    )
                for check in reservation.checks:
                    transaction.condition_check(
                        attempts,
                        check.key,
                        condition=attempts.attempt_key.does_not_exist() | (attempts.reserved < check.limit),
                    )
        except TransactWriteError as exc:
            reasons = {reason.code for reason in exc.cancellation_reasons or [] if reason is not None}
            if reasons and reasons <= _REFUSED:
                return False
            raise
        return True

    def sweep(self, now: datetime) -> int:
        """Delete counters past their expiry, found on the expiry index (never a scan)."""
        attempts = self._attempts
        expired = [
            record.attempt_key
            for record in attempts.expiry_index.query(
                SWEEP_GROUP, range_key_condition=attempts.expires_at < int(now.timestamp())
            )
        ]
        with attempts.batch_write() as batch:
            for key in expired:
                batch.delete(attempts(key))
        return len(expired)

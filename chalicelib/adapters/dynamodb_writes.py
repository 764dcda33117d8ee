"""What a failed conditional write says: which condition failed."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError

_CONDITION_FAILED = "ConditionalCheckFailedException"


def is_condition_failure(exc: Exception) -> bool:
    if isinstance(exc, TransactWriteError):
        return any(failed_conditions(exc))
    return getattr(exc, "cause_response_code", None) == _CONDITION_FAILED


def failed_conditions(exc: TransactWriteError) -> list[bool]:
    """Per transaction item, in request order (puts, then updates): did its condition fail?"""
    reasons = exc.cancellation_reasons or []
    return [bool(reason and reason.code == "ConditionalCheckFailed") for reason in reasons]

"""Attempts at an order's fulfilment: a kit maker's report names one by its id, and an earlier
attempt (superseded by a replacement) is answered from what was recorded of it."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .changes import Outcome, unchanged
from .errors import FulfilmentConflict, OrderNotFound
from .orders import Order
from .references import fulfilment_id_of


def on_attempt(order: Order, attempt: int, decide: Callable[[Order], Outcome]) -> Outcome:
    """A kit maker's report on one attempt of the order's fulfilment. The current one is decided as
    usual; an earlier one is the same report again as recorded (unchanged), or a conflict saying it
    was superseded; one above the current does not exist (OrderNotFound)."""
    if attempt == order.fulfilment_attempt:
        return decide(order)
    fulfilment_id = fulfilment_id_of(order.reference, attempt)
    earlier = next((e for e in order.earlier_fulfilments if e.fulfilment_id == fulfilment_id), None)
    if earlier is None:
        raise OrderNotFound(fulfilment_id)
    then = replace(
        order,
        fulfilment_attempt=attempt,
        fulfilment=earlier.state,
        released_at=earlier.released_at,
        dispatch=earlier.dispatch,
    )
    superseded = FulfilmentConflict(f"{fulfilment_id} was superseded by {order.fulfilment_id}: report on that instead")
    try:
        outcome = decide(then)
    except FulfilmentConflict:
        raise superseded from None
    if outcome.changed:
        raise superseded
    return unchanged(order)

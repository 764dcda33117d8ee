"""The fulfilment message: all the manufacturer learns about an order, and nothing more.

Never the certificate, its type, the holder's email, the price paid or how eligibility was
decided: the recipient must not be identifiable as a gun owner from what leaves tracekit.
"""

from __future__ import annotations

from dataclasses import dataclass

from .orders import Order

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FulfilmentMessage:
    order_reference: str
    product_code: str
    quantity: int
    recipient_name: str
    address_lines: tuple[str, ...]
    town: str
    postcode: str

    @property
    def deduplication_id(self) -> str:
        """One message per order, however often it is sent."""
        return self.order_reference

    def to_document(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "order_reference": self.order_reference,
            "product_code": self.product_code,
            "quantity": self.quantity,
            "recipient": {
                "name": self.recipient_name,
                "address_lines": list(self.address_lines),
                "town": self.town,
                "postcode": self.postcode,
            },
        }


def fulfilment_message_for(order: Order, product_code: str) -> FulfilmentMessage:
    delivery = order.delivery
    lines = tuple(line for line in (delivery.address_line_1, delivery.address_line_2) if line)
    return FulfilmentMessage(
        order_reference=order.reference,
        product_code=product_code,
        quantity=1,
        recipient_name=delivery.full_name,
        address_lines=lines,
        town=delivery.town,
        postcode=delivery.postcode,
    )

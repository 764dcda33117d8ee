"""Money as integer minor units with its currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Money:
    pence: int
    currency: str = "gbp"

    def __post_init__(self) -> None:
        if not isinstance(self.pence, int) or self.pence < 0:
            raise ValueError("money is a non-negative whole number of pence")

    @property
    def is_free(self) -> bool:
        return self.pence == 0

    def display(self) -> str:
        """'£8.95' for people; the data keeps pence."""
        symbol = "£" if self.currency == "gbp" else self.currency.upper() + " "
        return f"{symbol}{self.pence // 100}.{self.pence % 100:02d}"


def free(currency: str = "gbp") -> Money:
    return Money(0, currency)

"""Formatting integer minor units (pence) for people."""

from __future__ import annotations

_CURRENCY_SYMBOLS = {"gbp": "£", "usd": "$", "eur": "€"}
_ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def format_money(amount: int, currency: str) -> str:
    """Format integer minor units for people: ``format_money(895, "gbp") == "£8.95"``."""
    currency = currency.lower()
    if currency in _ZERO_DECIMAL_CURRENCIES:
        major = f"{amount:,}"
    else:
        major = f"{amount // 100:,}.{amount % 100:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{major}" if symbol else f"{major} {currency.upper()}"

"""The holder's journey between pages, kept in an encrypted, signed, expiring cookie.

Fernet (AES-CBC with HMAC-SHA256 and a timestamp) rather than a signed-only cookie, because the
delivery address is personal data and must not be readable from the browser's cookie store.
Nothing personal ever goes in a URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from http.cookies import CookieError, SimpleCookie

from cryptography.fernet import Fernet, InvalidToken

from ..domain.delivery import DeliveryDetails
from ..domain.money import Money
from ..domain.references import new_order_reference
from ..services import CheckedCertificate
from ..timeutil import utc_now

COOKIE_NAME = "tk_journey"
FORMAT = 2  # the cookie's compact form (a list); the earlier form was an object
_TEXT_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email")


@dataclass(frozen=True)
class Journey:
    checked: CheckedCertificate | None = None
    delivery: DeliveryDetails | None = None
    order_reference: str | None = None
    csrf: str = ""  # the nonce behind this browser's form tokens; empty until a form is shown

    def with_csrf(self) -> "Journey":
        return self if self.csrf else replace(self, csrf=secrets.token_urlsafe(16))

    def with_changes(self, **changes) -> "Journey":
        return replace(self, **changes)

    def after_check(self, checked: CheckedCertificate) -> "Journey":
        """A passed check starts a journey with a fresh order reference (under which a doubled
        confirmation finds the same order), unless it re-checks the same certificate after a
        Change link, which keeps the answers and reference already given."""
        same = self.checked is not None and self.checked.certificate_key == checked.certificate_key
        if same and self.order_reference:
            return replace(self, checked=checked)
        return Journey(checked=checked, order_reference=new_order_reference(), csrf=self.csrf)

    def to_json(self) -> str:
        """The compact form the cookie carries: a list, not an object (no keys), and text as UTF-8,
        not \\u escapes (which made an emoji 12 bytes, and the cookie too large for a browser to
        keep). docs/security.md works out the largest cookie every accepted answer can make."""
        checked, delivery = self.checked, self.delivery
        return json.dumps(
            [
                FORMAT,
                None
                if checked is None
                else [checked.certificate_key, checked.price.pence, checked.price.currency, checked.reason],
                None
                if delivery is None
                else [*(getattr(delivery, name) for name in _TEXT_FIELDS), delivery.contact_consent],
                self.order_reference,
                self.csrf,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "Journey":
        data = json.loads(text)
        if isinstance(data, dict):
            return cls._from_object(data)
        version, checked, delivery, order, csrf = data
        if version != FORMAT:
            raise ValueError("not a journey")
        return cls(
            checked=None
            if checked is None
            else CheckedCertificate(checked[0], Money(checked[1], checked[2]), checked[3]),
            delivery=None
            if delivery is None
            else DeliveryDetails.from_dict(
                {**dict(zip(_TEXT_FIELDS, delivery[:-1], strict=True)), "contact_consent": delivery[-1]}
            ),
            order_reference=order,
            csrf=csrf or "",
        )

    @classmethod
    def _from_object(cls, data: dict) -> "Journey":
        """The earlier form (an object with keys), so a journey begun before a deploy carries on."""
        checked = data.get("checked")
        return cls(
            checked=None
            if checked is None
            else CheckedCertificate(checked["key"], Money(checked["pence"], checked["currency"]), checked["reason"]),
            delivery=None if data.get("delivery") is None else DeliveryDetails.from_dict(data["delivery"]),
            order_reference=data.get("order"),
            csrf=data.get("csrf") or "",
        )


class JourneyCookies:
    """The journey cookie. Its age is measured on the app's clock (Fernet's own *_at_time calls), so
    the cookie expires on the same time line as everything else tracekit decides."""

    def __init__(self, key: bytes, ttl_seconds: int, secure: bool, clock: Callable[[], datetime] = utc_now):
        derived = hashlib.sha256(b"tracekit-journey\x00" + key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._ttl = ttl_seconds
        self._secure = secure
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def read(self, cookie_header: str | None) -> Journey:
        """The journey in the request's cookie; an empty one when absent, tampered with or expired."""
        token = _cookie_value(cookie_header, COOKIE_NAME)
        if not token:
            return Journey()
        try:
            return Journey.from_json(self._fernet.decrypt_at_time(token.encode(), self._ttl, self._now()).decode())
        except (InvalidToken, ValueError, KeyError, TypeError):
            return Journey()

    def set_cookie(self, journey: Journey) -> str:
        token = self._fernet.encrypt_at_time(journey.to_json().encode(), self._now()).decode()
        return self._attributes(f"{COOKIE_NAME}={token}", self._ttl)

    def clear_cookie(self) -> str:
        return self._attributes(f"{COOKIE_NAME}=", 0)

    def _attributes(self, pair: str, max_age: int) -> str:
        secure = "; Secure" if self._secure else ""
        return f"{pair}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


def _cookie_value(header: str | None, name: str) -> str | None:
    if not header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel else None

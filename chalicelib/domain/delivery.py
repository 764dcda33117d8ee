"""The delivery details a holder gives, checked field by field."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InvalidInput
from .references import parse_postcode

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Deliberately loose: the only sure test of an address is sending to it.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

CONSENTED = "yes"  # the consent box's value when ticked
LIMITS = {"full_name": 100, "address_line_1": 100, "address_line_2": 100, "town": 60, "email": 254}
MESSAGES = {
    "full_name": "Enter your full name",
    "address_line_1": "Enter address line 1, typically the building and street",
    "town": "Enter town or city",
}
LABELS = {
    "full_name": "Full name",
    "address_line_1": "Address line 1",
    "address_line_2": "Address line 2",
    "town": "Town or city",
    "email": "Email address",
}


@dataclass(frozen=True)
class DeliveryDetails:
    full_name: str
    address_line_1: str
    address_line_2: str
    town: str
    postcode: str
    email: str
    # Only a tick records it: the Firearms Enquiry Team may email this holder in future.
    contact_consent: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeliveryDetails":
        text = {name: data.get(name, "") for name in cls.__dataclass_fields__ if name != "contact_consent"}
        return cls(**text, contact_consent=data.get("contact_consent") is True)


def parse_delivery_details(form: dict[str, str]) -> DeliveryDetails:
    """Validate every field and report all the errors at once, in page order."""
    errors: dict[str, str] = {}
    values = {name: _clean(form.get(name, "")) for name in LIMITS}
    for name, message in MESSAGES.items():
        if not values[name]:
            errors[name] = message
    for name, limit in LIMITS.items():
        if name not in errors and len(values[name]) > limit:
            errors[name] = f"{LABELS[name]} must be {limit} characters or fewer"
        elif _CONTROL.search(form.get(name, "") or ""):
            errors[name] = f"{LABELS[name]} must not contain special characters"
    postcode = _postcode(form.get("postcode", ""), errors)
    if values["email"] and "email" not in errors and not _EMAIL.fullmatch(values["email"]):
        errors["email"] = "Enter an email address in the correct format, like name@example.com"
    consent = form.get("contact_consent") == CONSENTED  # a tick, and nothing else, is consent
    if consent and not values["email"] and "email" not in errors:
        errors["email"] = "Enter your email address if you want the Firearms Enquiry Team to contact you"
    if errors:
        raise InvalidInput(_in_page_order(errors))
    return DeliveryDetails(postcode=postcode, contact_consent=consent, **values)


def _clean(value: str) -> str:
    """Collapse runs of whitespace; people paste addresses with odd spacing."""
    return " ".join((value or "").split())


def _postcode(raw: str, errors: dict[str, str]) -> str:
    try:
        return str(parse_postcode(raw))
    except InvalidInput as exc:
        errors.update(exc.errors)
        return ""


def _in_page_order(errors: dict[str, str]) -> dict[str, str]:
    order = ["full_name", "address_line_1", "address_line_2", "town", "postcode", "email"]
    return {name: errors[name] for name in order if name in errors}


# The fields of a change of address: the delivery page's, less the email and the consent (kept).
ADDRESS_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode")


def parse_new_address(form: dict[str, str]) -> DeliveryDetails:
    """A new name and address, checked exactly as the delivery page checks them (no email: a
    change of address keeps the order's own email and consent)."""
    return parse_delivery_details({name: form.get(name, "") for name in ADDRESS_FIELDS})


def masked_line(line: str) -> str:
    """A line of an address as the holder can recognise it and a passer-by cannot read it: each
    word's first character, its digits and punctuation, every other letter starred ('2 Sample Road'
    -> '2 S***** R***')."""
    return " ".join(word[:1] + "".join("*" if c.isalpha() else c for c in word[1:]) for word in line.split(" "))


def surname_of(full_name: str) -> str:
    """The name's last word as support would type it: letters and digits only, case folded
    ("Ann O'Neill-Smith" -> "oneillsmith"). A name of several words is found by its last."""
    words = ["".join(c for c in word if c.isalnum()) for word in unicodedata.normalize("NFKC", full_name).split()]
    words = [word for word in words if word]
    return words[-1].casefold() if words else ""


def recipient_lookup_text(full_name: str, postcode: str) -> str | None:
    """What finds an order by its recipient, before it is keyed (RegisterKeys.recipient_key): the
    delivery postcode in capitals without spaces and the surname (surname_of). None when either is missing.
    Support's search builds it from what they type, a save from the order's own fields."""
    code = "".join(c for c in postcode if c.isalnum()).upper()
    surname = surname_of(full_name)
    return f"{code}\x00{surname}" if code and surname else None


def parse_recipient_search(form: dict[str, str]) -> tuple[str, str]:
    """Support's search by recipient: (surname, postcode in its standard form), or InvalidInput
    naming each field that is missing or wrong."""
    errors: dict[str, str] = {}
    surname = _clean(form.get("surname", ""))
    if not surname_of(surname):
        errors["surname"] = "Enter the surname on the delivery address"
    elif len(surname) > LIMITS["full_name"]:
        errors["surname"] = f"Surname must be {LIMITS['full_name']} characters or fewer"
    postcode = _postcode(form.get("postcode", ""), errors)
    if errors:
        raise InvalidInput(errors)
    return surname, postcode

"""Who may order, and at what price. Decided on the server, from configuration."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from enum import Enum

from .errors import CertificateNotAccepted
from .money import Money, free
from .references import Postcode
from .register import RegisterEntry

# Compared against when no entry exists, so a miss costs the same constant-time compare as a hit.
_ABSENT_MAC = "0" * 64


class EligibilityReason(str, Enum):
    REGISTER_FLAG = "register_flag"
    FREE_AREA = "free_area"
    STANDARD_PRICE = "standard_price"


@dataclass(frozen=True)
class CampaignRules:
    """The campaign's configured terms."""

    kit_price: Money = Money(895, "gbp")
    free_kit_areas: frozenset[str] = frozenset()
    kits_per_certificate: int = 1

    def is_free_area(self, postcode: Postcode) -> bool:
        return postcode.district in self.free_kit_areas or postcode.sector in self.free_kit_areas


@dataclass(frozen=True)
class Eligibility:
    price: Money
    reason: EligibilityReason

    @property
    def is_free(self) -> bool:
        return self.price.is_free


def decide_eligibility(
    entry: RegisterEntry | None,
    postcode_mac: str,
    kits_already_claimed: int,
    postcode: Postcode,
    today: date,
    rules: CampaignRules,
) -> Eligibility:
    """Every refusal raises the same CertificateNotAccepted, whatever the reason."""
    stored_mac = entry.postcode_mac if entry else _ABSENT_MAC
    postcode_matches = hmac.compare_digest(stored_mac, postcode_mac)
    if entry is None or not postcode_matches or not entry.is_current(today):
        raise CertificateNotAccepted()
    if kits_already_claimed >= rules.kits_per_certificate:
        raise CertificateNotAccepted()
    return price_for(entry, postcode, rules)


def price_for(entry: RegisterEntry, postcode: Postcode, rules: CampaignRules) -> Eligibility:
    if entry.free_kit:
        return Eligibility(free(rules.kit_price.currency), EligibilityReason.REGISTER_FLAG)
    if rules.is_free_area(postcode):
        return Eligibility(free(rules.kit_price.currency), EligibilityReason.FREE_AREA)
    return Eligibility(rules.kit_price, EligibilityReason.STANDARD_PRICE)

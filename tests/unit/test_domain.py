"""The domain's rules, with plain constructors and no I/O."""

from __future__ import annotations

import json
from datetime import date

import pytest

from chalicelib.domain.delivery import (
    DeliveryDetails,
    parse_delivery_details,
    parse_recipient_search,
    recipient_lookup_text,
    surname_of,
)
from chalicelib.domain.eligibility import CampaignRules, EligibilityReason, decide_eligibility
from chalicelib.domain.errors import CertificateNotAccepted, InvalidInput
from chalicelib.domain.fulfilment import fulfilment_message_for
from chalicelib.domain.money import Money
from chalicelib.domain.lifecycle import place_order
from chalicelib.domain.orders import FulfilmentState, OrderState, PaymentState
from chalicelib.domain.references import (
    ORDER_REFERENCE_PATTERN,
    POSTCODE_MESSAGE,
    ReferenceRules,
    new_order_reference,
    normalise_certificate_reference,
    normalise_order_reference,
    parse_postcode,
)
from chalicelib.domain.register import CertificateStatus, RegisterKeys, parse_register_row
from tests.builders import NOW, days_from_now, delivery_form, register_row

KEYS = RegisterKeys(b"k" * 32)
RULES = CampaignRules(Money(895, "gbp"), frozenset({"E1", "N17 6"}), 1)
TODAY = NOW.date()


@pytest.mark.parametrize("typed", ["fa/12345", "FA 12345", " fa-123.45 ", "Fa12345"])
def test_certificate_references_are_normalised_leniently(typed):
    assert normalise_certificate_reference(typed, ReferenceRules()) == "FA12345"


def test_reference_format_rule_comes_from_configuration():
    strict = ReferenceRules(r"\d{2}[A-Z]\d{4}")
    assert normalise_certificate_reference("12/a/3456", strict) == "12A3456"
    with pytest.raises(InvalidInput) as refused:
        normalise_certificate_reference("FA12345", strict)
    assert "reference" in refused.value.errors


@pytest.mark.parametrize(
    "typed, standard",
    [
        ("sw1a1aa", "SW1A 1AA"),
        (" SW1A  1AA ", "SW1A 1AA"),
        ("e16an", "E1 6AN"),
        ("n17 6ab", "N17 6AB"),
        ("ec1a-1bb", "EC1A 1BB"),
        ("GIR 0AA", "GIR 0AA"),
    ],
)
def test_postcodes_are_accepted_as_typed_and_given_their_standard_form(typed, standard):
    assert str(parse_postcode(typed)) == standard


@pytest.mark.parametrize("impossible", ["", "SW1A", "12345", "SW1A 1A", "QQQ 1AA", "SW1A 1AAA"])
def test_an_impossible_postcode_asks_for_a_full_one(impossible):
    with pytest.raises(InvalidInput) as refused:
        parse_postcode(impossible)
    assert refused.value.errors == {"postcode": POSTCODE_MESSAGE}


def test_postcode_district_and_sector():
    postcode = parse_postcode("N17 6AB")
    assert (postcode.district, postcode.sector) == ("N17", "N17 6")


def entry(**overrides):
    row = parse_register_row(register_row(**overrides), ReferenceRules())
    return row, row.to_entry(KEYS)


def decide(row, stored, claimed=0, postcode=None, today=TODAY):
    pc = parse_postcode(postcode) if postcode else row.postcode
    return decide_eligibility(stored, KEYS.postcode_mac(row.reference, pc), claimed, pc, today, RULES)


def test_a_current_holder_pays_the_negotiated_price():
    row, stored = entry()
    eligibility = decide(row, stored)
    assert eligibility.price == Money(895, "gbp")
    assert eligibility.reason is EligibilityReason.STANDARD_PRICE


def test_a_holder_flagged_in_the_register_gets_a_free_kit():
    row, stored = entry(free_kit="yes")
    assert decide(row, stored).reason is EligibilityReason.REGISTER_FLAG
    assert decide(row, stored).is_free


@pytest.mark.parametrize("postcode", ["E1 6AN", "N17 6AB"])
def test_a_holder_in_a_free_kit_district_or_sector_gets_a_free_kit(postcode):
    row, stored = entry(postcode=postcode)
    eligibility = decide(row, stored)
    assert eligibility.is_free and eligibility.reason is EligibilityReason.FREE_AREA


def test_a_neighbouring_sector_is_not_free():
    row, stored = entry(postcode="N17 7AB")
    assert not decide(row, stored).is_free


@pytest.mark.parametrize(
    "case",
    [
        "unknown",
        "wrong postcode",
        "expired",
        "revoked",
        "surrendered",
        "cancelled",
        "past expiry date",
        "already claimed",
    ],
)
def test_every_refusal_is_the_same_refusal(case):
    row, stored = entry(
        status={"expired": "expired", "revoked": "revoked", "surrendered": "surrendered", "cancelled": "cancelled"}.get(
            case, "in force"
        ),
        expiry_date=days_from_now(-1).isoformat() if case == "past expiry date" else None,
    )
    with pytest.raises(CertificateNotAccepted):
        decide(
            row,
            None if case == "unknown" else stored,
            claimed=1 if case == "already claimed" else 0,
            postcode="SW1A 1AA" if case == "wrong postcode" else None,
        )


def test_a_certificate_expiring_today_still_qualifies():
    row, stored = entry(expiry_date=TODAY.isoformat())
    assert decide(row, stored).price.pence == 895


def test_register_rows_report_every_bad_column():
    with pytest.raises(InvalidInput) as refused:
        parse_register_row(
            register_row(
                status="lapsed",
                expiry_date="31-31-2027",
                postcode="nowhere",
                certificate_type="rifle",
                free_kit="maybe",
            ),
            ReferenceRules(),
        )
    assert set(refused.value.errors) == {"status", "expiry_date", "postcode", "certificate_type", "free_kit"}


def test_register_rows_accept_the_uk_date_form_and_status_spellings():
    row = parse_register_row(register_row(status="In Force", expiry_date="31/01/2028"), ReferenceRules())
    assert row.status is CertificateStatus.IN_FORCE and row.expires_on == date(2028, 1, 31)


def test_the_register_key_hides_the_reference_and_binds_the_postcode_to_it():
    row, stored = entry()
    assert "12345" not in stored.reference_key and len(stored.reference_key) == 64
    other = RegisterKeys(b"x" * 32).reference_key(row.reference)
    assert other != stored.reference_key
    assert KEYS.postcode_mac("FA99999", row.postcode) != stored.postcode_mac


def test_delivery_details_report_all_errors_in_page_order():
    with pytest.raises(InvalidInput) as refused:
        parse_delivery_details(delivery_form(full_name=" ", address_line_1="", town="", postcode="x", email="nope"))
    assert list(refused.value.errors) == ["full_name", "address_line_1", "town", "postcode", "email"]


def test_delivery_details_are_tidied_and_the_postcode_standardised():
    details = parse_delivery_details(delivery_form(full_name="  Ada   Example ", postcode="sw1a2aa", email=""))
    assert details.full_name == "Ada Example" and details.postcode == "SW1A 2AA" and details.email == ""


def test_overlong_or_control_characters_in_delivery_fields_are_refused():
    with pytest.raises(InvalidInput) as refused:
        parse_delivery_details(delivery_form(full_name="A" * 101, town="Lon\x00don"))
    assert set(refused.value.errors) == {"full_name", "town"}


def test_order_references_are_readable_and_unguessable():
    references = {new_order_reference() for _ in range(2000)}
    assert len(references) == 2000
    assert all(ORDER_REFERENCE_PATTERN.fullmatch(r) for r in references)
    assert not any(set(r) & set("ILOU") for r in references)
    sample = next(iter(references))
    assert normalise_order_reference(sample.lower().replace("-", " ")) == sample


def paid_order():
    row, stored = entry()
    return place_order(
        "TK-AAAAA-BBBBB", stored.reference_key, decide(row, stored), parse_delivery_details(delivery_form()), NOW
    ).order


def test_a_free_order_is_confirmed_at_once_and_a_paid_one_waits_for_payment():
    order = paid_order()
    assert (order.state, order.payment, order.fulfilment) == (
        OrderState.PLACED,
        PaymentState.AWAITING,
        FulfilmentState.NOT_RELEASED,
    )
    row, stored = entry(free_kit="y")
    free = place_order("TK-AAAAA-CCCCC", stored.reference_key, decide(row, stored), paid_order().delivery, NOW).order
    assert (free.state, free.payment) == (OrderState.CONFIRMED, PaymentState.NOT_REQUIRED)


def test_the_fulfilment_message_carries_only_what_posting_a_kit_needs():
    document = fulfilment_message_for(paid_order(), "PMK-1").to_document()
    assert set(document) == {
        "schema_version",
        "fulfilment_id",
        "order_reference",
        "product_code",
        "quantity",
        "recipient",
        "created_at",
    }
    assert set(document["recipient"]) == {"name", "address_lines", "town", "postcode"}
    assert document["recipient"]["address_lines"] == ["1 Test Street"]
    assert document["fulfilment_id"] == "F-AAAAA-BBBBB"
    flattened = repr(document)
    for secret in ("ada@example.com", "895", "standard_price", paid_order().certificate_key):
        assert secret not in flattened


def test_money_is_whole_pence_and_displays_in_pounds():
    assert Money(895).display() == "£8.95" and Money(1000).display() == "£10.00"
    with pytest.raises(ValueError):
        Money(8.95)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value, consented", [("yes", True), ("", False), ("on", False), ("true", False), ("YES", False), (None, False)]
)
def test_only_the_ticked_box_records_consent_to_future_contact(value, consented):
    form = delivery_form() | ({} if value is None else {"contact_consent": value})
    assert parse_delivery_details(form).contact_consent is consented


def test_consent_to_be_emailed_needs_an_email_address():
    with pytest.raises(InvalidInput) as refused:
        parse_delivery_details(delivery_form(email="", contact_consent="yes"))
    assert refused.value.errors == {
        "email": "Enter your email address if you want the Firearms Enquiry Team to contact you"
    }


def test_consent_survives_the_journey_cookie_where_only_a_stored_true_counts():
    details = parse_delivery_details(delivery_form(contact_consent="yes"))
    assert DeliveryDetails.from_dict(json.loads(json.dumps(details.to_dict()))) == details
    assert DeliveryDetails.from_dict({**details.to_dict(), "contact_consent": "yes"}).contact_consent is False


def test_an_address_line_is_masked_to_its_initials_and_digits():
    from chalicelib.domain.delivery import masked_line

    assert masked_line("2 Sample Road") == "2 S***** R***"
    assert masked_line("Flat 12B, 3 High St") == "F*** 12*, 3 H*** S*"
    assert masked_line("Ada  O'Neill") == "A**  O'*****"


@pytest.mark.parametrize(
    "name, surname",
    [
        ("Ada Example", "example"),
        ("  Ann   O'Neill-Smith ", "oneillsmith"),
        ("MARÍA JOSÉ GARCÍA", "garcía"),
        ("ﬁnn Ｗｉｄｅ", "wide"),  # compatibility forms fold to the letters people type
        ("Cher", "cher"),
        (" - ", ""),
    ],
)
def test_a_surname_is_the_names_last_word_in_letters_and_digits_case_folded(name, surname):
    assert surname_of(name) == surname


def test_the_recipient_lookup_ignores_case_spaces_and_punctuation_and_needs_both_parts():
    assert recipient_lookup_text("Ada Example", "SW1A 2AA") == recipient_lookup_text("example", "sw1a2aa")
    assert recipient_lookup_text("Ada Example", "SW1A 2AA") != recipient_lookup_text("Ada Example", "SW1A 2AB")
    assert recipient_lookup_text("", "SW1A 2AA") is None
    assert recipient_lookup_text("Ada", " ") is None
    keyed = KEYS.recipient_key(recipient_lookup_text("Ada Example", "SW1A 2AA"))
    assert keyed != RegisterKeys(b"x" * 32).recipient_key(recipient_lookup_text("Ada Example", "SW1A 2AA"))
    assert "example" not in keyed.lower() and len(keyed) == 64


def test_a_search_by_recipient_names_each_missing_or_wrong_field():
    assert parse_recipient_search({"surname": " O'Neill ", "postcode": "n19al"}) == ("O'Neill", "N1 9AL")
    with pytest.raises(InvalidInput) as refused:
        parse_recipient_search({"surname": "'", "postcode": "N1"})
    assert set(refused.value.errors) == {"surname", "postcode"}
    with pytest.raises(InvalidInput) as long:
        parse_recipient_search({"surname": "x" * 101, "postcode": "N1 9AL"})
    assert "100 characters" in long.value.errors["surname"]

"""The holder's pages: the start and notice pages, the order journey and the status check.

Each route only translates: parse the request, call one service, render the result. Refusals are
answered by `page` (chalicelib.web.errors), never caught here.
"""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import bootstrap, services
from ..domain.delivery import ADDRESS_FIELDS, LABELS, parse_delivery_details
from . import csrf
from .errors import NOT_MATCHED, Form, HolderPages
from .forms import read_form
from .journey import COOKIE_NAME, Journey, JourneyCookies
from ..services.replacements import replacement_offer, report_missing_kit
from .order_status import can_cancel, gov_uk_date, holder_view, masked_email, order_status
from .pages import redirect, render, stylesheet

holder = Blueprint(__name__)

FORM = ["application/x-www-form-urlencoded"]
ACCESSIBILITY_STATEMENT_PREPARED = "29 November 2026"
CERTIFICATE_FIELDS = ("reference", "postcode")
STATUS_FIELDS = ("reference", "postcode")
# Where a page that needs the journey's answers sends a browser that has none (the cookie missing,
# expired or unreadable): the certificate question, which then says the answers were not kept.
ANSWERS_LOST = "/order/certificate?answers=lost"
DELIVERY_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email", "contact_consent")


def deps() -> services.Dependencies:
    return bootstrap.dependencies()


def cookies() -> JourneyCookies:
    built = deps()
    settings = built.settings
    return JourneyCookies(settings.journey_key, settings.journey_ttl_seconds, settings.cookie_secure, built.clock)


def journey() -> Journey:
    return cookies().read(holder.current_request.headers.get("cookie"))


def form(fields: tuple[str, ...]) -> dict[str, str]:
    """The posted fields, once the form token and the request's origin have been checked."""
    request, settings = holder.current_request, deps().settings
    answers = read_form(request.raw_body, (*fields, csrf.FIELD))
    csrf.check(answers.pop(csrf.FIELD), journey(), settings.journey_key, request.headers, settings.app_base_url)
    return answers


def client_address() -> str:
    """The caller's address as API Gateway saw it (hashed before it is stored anywhere): never a
    header such as X-Forwarded-For, which the caller writes (docs/security.md#the-lockout)."""
    return (holder.current_request.context.get("identity") or {}).get("sourceIp") or "unknown"


def form_page(template: str, status: int = 200, **context) -> Response:
    """A page with a form: the browser's journey gets a token nonce the first time (and only
    then a cookie, so refusals of any cause send identical headers)."""
    current = journey()
    ready = current.with_csrf()
    cookie = cookies().set_cookie(ready) if ready is not current else None
    token = csrf.token_for(ready, deps().settings.journey_key)
    return render(template, status=status, cookie=cookie, csrf_token=token, **context)


def back(default: str) -> str:
    """A question reached by a Change link goes back to the answers, not to the step before."""
    return "/order/check-answers" if journey().delivery else default


page = HolderPages(
    lambda: holder.current_request,
    form_page,
    lambda: cookies().clear_cookie(),
    lambda: campaign_contact(),
)


def campaign_contact() -> dict:
    """The campaign's contact for refusal pages; none (never a failure) if configuration cannot be read."""
    try:
        return {"contact_email": deps().settings.campaign_contact_email}
    except Exception:  # noqa: BLE001 - a refusal page must not fail for want of a contact
        return {}


# A refused check (a lockout says the same words as a mismatch) also gives the campaign's contact.
CERTIFICATE_FORM = Form(
    "certificate.html",
    CERTIFICATE_FIELDS,
    lambda: {"back": back("/"), "not_matched": NOT_MATCHED, **campaign_contact()},
)
DELIVERY_FORM = Form("delivery.html", DELIVERY_FIELDS, lambda: {"back": back("/order/certificate")})
STATUS_FORM = Form("status.html", STATUS_FIELDS, lambda: {"order": None})
CANCEL_FIELDS = ("order_reference", "reference", "postcode")
CANCEL_FORM = Form("cancel.html", CANCEL_FIELDS)
REPLACEMENT_FIELDS = ("order_reference", "reference", "postcode", "confirm_address")
REPLACEMENT_FORM = Form("replacement.html", REPLACEMENT_FIELDS, lambda: campaign_contact())
ADDRESS_CHANGE_FIELDS = ("order_reference", "reference", "certificate_postcode", *ADDRESS_FIELDS)
ADDRESS_CHANGE_FORM = Form("change_address.html", ADDRESS_CHANGE_FIELDS)


@holder.route("/", methods=["GET"])
@page
def start():
    return render("start.html", price=deps().settings.campaign.kit_price.display())


@holder.route("/privacy", methods=["GET"])
@page
def privacy_notice():
    return render("privacy.html", retention_days=deps().settings.retention_days)


@holder.route("/cookies", methods=["GET"])
@page
def cookie_notice():
    hours = deps().settings.journey_ttl_seconds // 3600
    return render("cookies.html", cookie_name=COOKIE_NAME, expires=f"After {hours} hours, or when you finish ordering")


@holder.route("/accessibility", methods=["GET"])
@page
def accessibility():
    return render("accessibility.html", prepared_on=ACCESSIBILITY_STATEMENT_PREPARED)


@holder.route("/assets/tracekit.css", methods=["GET"])
def assets():
    return stylesheet()


@holder.route("/order/certificate", methods=["GET"])
@page
def certificate_question():
    lost = (holder.current_request.query_params or {}).get("answers") == "lost"
    return form_page("certificate.html", form={}, errors={}, back=back("/"), answers_lost=lost)


@holder.route("/order/certificate", methods=["POST"], content_types=FORM)
@page(form=CERTIFICATE_FORM)
def certificate_answer():
    answers = form(CERTIFICATE_FIELDS)
    checked = services.check_certificate(answers["reference"], answers["postcode"], deps(), client_address())
    updated = journey().after_check(checked)
    next_page = "/order/check-answers" if updated.delivery else "/order/delivery"
    return redirect(next_page, cookies().set_cookie(updated))


@holder.route("/order/delivery", methods=["GET"])
@page
def delivery_question():
    current = journey()
    if current.checked is None:
        return redirect(ANSWERS_LOST)
    answers = current.delivery.to_dict() if current.delivery else {}
    return form_page("delivery.html", form=answers, errors={}, back=back("/order/certificate"))


@holder.route("/order/delivery", methods=["POST"], content_types=FORM)
@page(form=DELIVERY_FORM)
def delivery_answer():
    current = journey()
    if current.checked is None:
        return redirect(ANSWERS_LOST)
    delivery = parse_delivery_details(form(DELIVERY_FIELDS))
    return redirect("/order/check-answers", cookies().set_cookie(current.with_changes(delivery=delivery)))


@holder.route("/order/check-answers", methods=["GET"])
@page
def check_answers():
    current = journey()
    if current.checked is None or current.delivery is None:
        return redirect(ANSWERS_LOST)
    price = current.checked.price
    return form_page("check_answers.html", journey=current, labels=LABELS, price=price.display(), free=price.is_free)


@holder.route("/order/confirm", methods=["POST"], content_types=FORM)
@page
def confirm_order():
    form(("confirm",))  # nothing to read but the form token, which form() checks
    current = journey()
    if current.checked is None or current.delivery is None or current.order_reference is None:
        return redirect(ANSWERS_LOST)
    placed = services.confirm_order(
        current.checked, current.delivery, current.order_reference, deps(), client_address()
    )
    cookie = cookies().set_cookie(current.with_changes(order_reference=placed.reference))
    return redirect(placed.checkout_url or "/order/confirmation", cookie)


@holder.route("/order/payment-complete", methods=["GET"])
@page
def payment_complete():
    """Back from Stripe Checkout: fulfil from Stripe's answer if the webhook has not come yet."""
    reference = journey().order_reference
    if not reference:
        return render("session_ended.html", status=400)
    session_id = (holder.current_request.query_params or {}).get("session_id")
    returned = services.fulfil_on_return(reference, session_id, deps())
    return _order_status_page(returned.order, None if returned.stripe_answered else "checking")


@holder.route("/order/confirmation", methods=["GET"])
@page
def confirmation():
    reference = journey().order_reference
    if not reference:
        return render("session_ended.html", status=400)
    return _order_status_page(services.find_order(reference, deps()))


def _order_status_page(order, status_of: str | None = None) -> Response:
    """The order's page; `status_of` "checking" when Stripe could not be asked how the payment went."""
    status_of = status_of or order_status(order)
    email = services.confirmation_email_to(order, deps()) if status_of == "complete" else None
    return render(
        "confirmation.html",
        order=order,
        status_of=status_of,
        price=order.amount.display(),
        email_to=masked_email(email) if email else None,
    )


@holder.route("/status", methods=["GET"])
@page
def status_question():
    return form_page("status.html", form={}, errors={}, order=None)


@holder.route("/status", methods=["POST"], content_types=FORM)
@page(form=STATUS_FORM)
def status_answer():
    answers = form(STATUS_FIELDS)
    order = services.look_up_order(answers["reference"], answers["postcode"], deps())
    return _status_page(order)


@holder.route("/status/cancel", methods=["POST"], content_types=FORM)
@page(form=CANCEL_FORM)
def cancel_answer():
    """The holder cancels, having proved the certificate again (the order's reference rides in the
    form's body, never in the URL)."""
    answers = form(CANCEL_FIELDS)
    order = services.cancel_order(
        answers["order_reference"], answers["reference"], answers["postcode"], deps(), client_address()
    )
    return _status_page(order)


@holder.route("/status/replacement", methods=["POST"], content_types=FORM)
@page(form=REPLACEMENT_FORM)
def replacement_answer():
    """The holder reports their kit has not arrived, having proved the certificate again and
    confirmed the address (the order's reference rides in the form's body, never in the URL)."""
    answers = form(REPLACEMENT_FIELDS)
    order = report_missing_kit(
        answers["order_reference"],
        answers["reference"],
        answers["postcode"],
        answers["confirm_address"] == "yes",
        deps(),
        client_address(),
    )
    return _status_page(order)


@holder.route("/status/address", methods=["POST"], content_types=FORM)
@page
def address_question():
    """The change of address form, for the order named in the body (never the URL). It shows
    nothing of the order: what it asks proves the holder first."""
    answers = form(("order_reference",))
    return form_page("change_address.html", form={"order_reference": answers["order_reference"]}, errors={})


@holder.route("/status/address/change", methods=["POST"], content_types=FORM)
@page(form=ADDRESS_CHANGE_FORM)
def address_answer():
    """The holder changes the delivery address, having proved the certificate again; refused with a
    409 page giving the campaign's contact once the kit maker has accepted the order."""
    answers = form(ADDRESS_CHANGE_FIELDS)
    certificate = (answers["reference"], answers["certificate_postcode"])
    reference = answers["order_reference"]
    order = services.change_delivery_address(reference, *certificate, answers, deps(), client_address())
    return _status_page(order)


def _status_page(order) -> Response:
    view = holder_view(order)
    return form_page(
        "status.html",
        form={},
        errors={},
        order=order,
        view=view,
        cancellable=can_cancel(order),
        address_changeable=order.address_changeable,
        **{**campaign_contact(), **_replacement_context(order)},
    )


def _replacement_context(order) -> dict:
    """What the status page offers for a posted kit that has not arrived (services.replacements)."""
    offer = replacement_offer(order, deps())
    if offer is None:
        return {}
    return {"replacement": offer, "replacement_from": gov_uk_date(offer.allowed_from)}

"""tracekit's HTTP routes. Each route only translates: parse the request, call one service,
map the result or the domain error to a response. Rules live in chalicelib.domain."""

from __future__ import annotations

from chalice import Chalice, Cron, Rate, Response

from chalicelib import bootstrap, services
from chalicelib.api import api
from chalicelib.reports import XlsxReport
from chalicelib.services import finance, manufacturer, notifications, privacy
from chalicelib.domain.delivery import LABELS, parse_delivery_details
from chalicelib.domain.errors import (
    CertificateAlreadyClaimed,
    CertificateNotAccepted,
    InvalidInput,
    InvalidWebhook,
    OrderNotFound,
    OrderNotMatched,
)
from chalicelib.web import csrf, logs
from chalicelib.web.errors import json_error, page
from chalicelib.web.forms import MAX_FORM_BYTES, read_form
from chalicelib.web.journey import COOKIE_NAME, Journey, JourneyCookies
from chalicelib.web.order_status import holder_view, order_status
from chalicelib.web.pages import redirect, render, stylesheet

app = Chalice(app_name="tracekit", configure_logs=False)  # logging is JSON, set up by the composition root
app.register_blueprint(api)
app.api.binary_types.append(XlsxReport.media_type)


@app.middleware("http")
def correlate(event, get_response):
    """Every log line of a request carries API Gateway's request id (or the caller's X-Request-Id)."""
    context = event.context or {}
    token = logs.correlation_id.set(logs.safe_id(event.headers.get("x-request-id")) or context.get("requestId") or "-")
    try:
        return get_response(event)
    finally:
        logs.correlation_id.reset(token)


@app.middleware("http")
def allow_checkout_forms(event, get_response):
    """A page's forms may lead only here and to the hosted checkout (Chrome applies form-action
    to the redirect after a POST, and placing an order redirects to Stripe)."""
    response = get_response(event)
    policy = response.headers.get("Content-Security-Policy")
    if policy:
        response.headers["Content-Security-Policy"] = f"{policy}; form-action 'self' {bootstrap.checkout_origin()}"
    return response


FORM = ["application/x-www-form-urlencoded"]
ACCESSIBILITY_STATEMENT_PREPARED = "29 November 2026"
JSON = ["application/json"]
CERTIFICATE_FIELDS = ("reference", "postcode")
STATUS_FIELDS = ("reference", "postcode")
NO_SUCH_ORDER = "We could not find an order with that reference and delivery postcode. Check both and try again."
DELIVERY_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email", "contact_consent")
NOT_MATCHED = (
    "We could not match that certificate reference and postcode to a current certificate "
    "that can order a kit. Check both are as shown on your certificate."
)


def deps() -> services.Dependencies:
    return bootstrap.dependencies()


def cookies() -> JourneyCookies:
    built = deps()
    settings = built.settings
    return JourneyCookies(settings.journey_key, settings.journey_ttl_seconds, settings.cookie_secure, built.clock)


def journey() -> Journey:
    return cookies().read(app.current_request.headers.get("cookie"))


def form(fields: tuple[str, ...]) -> dict[str, str]:
    """The posted fields, once the form token and the request's origin have been checked."""
    request, settings = app.current_request, deps().settings
    answers = read_form(request.raw_body, (*fields, csrf.FIELD))
    csrf.check(answers.pop(csrf.FIELD), journey(), settings.journey_key, request.headers, settings.app_base_url)
    return answers


def client_address() -> str:
    """The caller's address as API Gateway saw it (hashed before it is stored anywhere)."""
    return (app.current_request.context.get("identity") or {}).get("sourceIp") or "unknown"


def form_page(template: str, status: int = 200, **context) -> Response:
    """A page with a form: the browser's journey gets a token nonce the first time (and only
    then a cookie, so refusals of any cause send identical headers)."""
    current = journey()
    ready = current.with_csrf()
    cookie = cookies().set_cookie(ready) if ready is not current else None
    token = csrf.token_for(ready, deps().settings.journey_key)
    return render(template, status=status, cookie=cookie, csrf_token=token, **context)


def _back(default: str) -> str:
    """A question reached by a Change link goes back to the answers, not to the step before."""
    return "/order/check-answers" if journey().delivery else default


@app.route("/", methods=["GET"])
@page
def start():
    return render("start.html", price=deps().settings.campaign.kit_price.display())


@app.route("/privacy", methods=["GET"])
@page
def privacy_notice():
    return render("privacy.html", retention_days=deps().settings.retention_days)


@app.route("/cookies", methods=["GET"])
@page
def cookie_notice():
    hours = deps().settings.journey_ttl_seconds // 3600
    return render("cookies.html", cookie_name=COOKIE_NAME, expires=f"After {hours} hours, or when you finish ordering")


@app.route("/accessibility", methods=["GET"])
@page
def accessibility():
    return render("accessibility.html", prepared_on=ACCESSIBILITY_STATEMENT_PREPARED)


@app.route("/assets/tracekit.css", methods=["GET"])
def assets():
    return stylesheet()


@app.route("/order/certificate", methods=["GET"])
@page
def certificate_question():
    return form_page("certificate.html", form={}, errors={}, back=_back("/"))


@app.route("/order/certificate", methods=["POST"], content_types=FORM)
@page
def certificate_answer():
    answers = form(CERTIFICATE_FIELDS)
    try:
        checked = services.check_certificate(answers["reference"], answers["postcode"], deps(), client_address())
    except InvalidInput as exc:
        return form_page("certificate.html", status=400, form=answers, errors=exc.errors, back=_back("/"))
    except CertificateNotAccepted:
        errors = {"reference": NOT_MATCHED}
        return form_page("certificate.html", status=400, form=answers, errors=errors, back=_back("/"))
    updated = journey().after_check(checked)
    next_page = "/order/check-answers" if updated.delivery else "/order/delivery"
    return redirect(next_page, cookies().set_cookie(updated))


@app.route("/order/delivery", methods=["GET"])
@page
def delivery_question():
    current = journey()
    if current.checked is None:
        return redirect("/order/certificate")
    answers = current.delivery.to_dict() if current.delivery else {}
    return form_page("delivery.html", form=answers, errors={}, back=_back("/order/certificate"))


@app.route("/order/delivery", methods=["POST"], content_types=FORM)
@page
def delivery_answer():
    current = journey()
    if current.checked is None:
        return redirect("/order/certificate")
    answers = form(DELIVERY_FIELDS)
    try:
        delivery = parse_delivery_details(answers)
    except InvalidInput as exc:
        return form_page("delivery.html", status=400, form=answers, errors=exc.errors, back=_back("/order/certificate"))
    return redirect("/order/check-answers", cookies().set_cookie(current.with_changes(delivery=delivery)))


@app.route("/order/check-answers", methods=["GET"])
@page
def check_answers():
    current = journey()
    if current.checked is None or current.delivery is None:
        return redirect("/order/certificate")
    return form_page(
        "check_answers.html",
        journey=current,
        labels=LABELS,
        price=current.checked.price.display(),
        free=current.checked.price.is_free,
    )


@app.route("/order/confirm", methods=["POST"], content_types=FORM)
@page
def confirm_order():
    form(("confirm",))  # nothing to read but the form token, which form() checks
    current = journey()
    if current.checked is None or current.delivery is None or current.order_reference is None:
        return redirect("/order/certificate")
    try:
        placed = services.confirm_order(current.checked, current.delivery, current.order_reference, deps())
    except CertificateAlreadyClaimed:
        return render("already_ordered.html", status=409, cookie=cookies().clear_cookie())
    cookie = cookies().set_cookie(current.with_changes(order_reference=placed.reference))
    return redirect(placed.checkout_url or "/order/confirmation", cookie)


@app.route("/order/payment-complete", methods=["GET"])
@page
def payment_complete():
    """Back from Stripe Checkout: fulfil from Stripe's answer if the webhook has not come yet."""
    reference = journey().order_reference
    if not reference:
        return render("session_ended.html", status=400)
    session_id = (app.current_request.query_params or {}).get("session_id")
    return _order_status_page(lambda: services.fulfil_on_return(reference, session_id, deps()))


@app.route("/order/confirmation", methods=["GET"])
@page
def confirmation():
    reference = journey().order_reference
    if not reference:
        return render("session_ended.html", status=400)
    return _order_status_page(lambda: services.find_order(reference, deps()))


def _order_status_page(read_order) -> Response:
    try:
        order = read_order()
    except OrderNotFound:  # the journey has a reference but no order was placed under it yet
        return redirect("/order/check-answers")
    return render("confirmation.html", order=order, status_of=order_status(order), price=order.amount.display())


@app.schedule(Rate(15, unit=Rate.MINUTES))
def sweep_lapsed_holds(event):
    """Give back the claims of unpaid orders whose hold ran out (the expiry webhook never came)."""
    swept = services.sweep_lapsed_holds(deps())
    app.log.info("lapsed holds swept: %d", swept)


@app.route("/status", methods=["GET"])
@page
def status_question():
    return form_page("status.html", form={}, errors={}, order=None)


@app.route("/status", methods=["POST"], content_types=FORM)
@page
def status_answer():
    answers = form(STATUS_FIELDS)
    try:
        order = services.look_up_order(answers["reference"], answers["postcode"], deps())
    except InvalidInput as exc:
        return form_page("status.html", status=400, form=answers, errors=exc.errors, order=None)
    except OrderNotMatched:
        return form_page("status.html", status=400, form=answers, errors={"reference": NO_SUCH_ORDER}, order=None)
    return form_page("status.html", form={}, errors={}, order=order, status=200, view=holder_view(order))


@app.route("/stripe/webhook", methods=["POST"], content_types=JSON)
def stripe_webhook():
    request = app.current_request
    if len(request.raw_body or b"") > 64 * MAX_FORM_BYTES:
        return json_error(413, "payload too large")
    try:
        outcome = services.handle_stripe_webhook(
            request.raw_body or b"", request.headers.get("stripe-signature", ""), deps()
        )
    except InvalidWebhook:
        return json_error(400, "invalid signature")
    app.log.info("stripe webhook handled: %s", outcome)
    return Response(body={"received": True}, status_code=200)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def relay_unsent_fulfilments(event):
    """The outboxes' relay: send confirmed orders whose message did not go at confirmation, and
    the holders' emails still due (a send that failed, or a sender that died)."""
    sent = manufacturer.relay_unsent(deps())
    app.log.info("relay sent %d fulfilment messages", sent)
    retried = notifications.send_all_due(deps())
    app.log.info("relay sent %d emails from the outbox", retried)


@app.schedule(Rate(1, unit=Rate.HOURS))
def report_fulfilment_health(event):
    """Stuck fulfilments and dead letters, as metrics for the alarms."""
    health = manufacturer.fulfilment_health(deps())
    app.log.info("fulfilment health: %d stuck, %d dead letters", len(health.stuck), health.dead_letters)


@app.schedule(Cron(15, 6, "*", "*", "?", "*"))
def export_daily_reconciliation(event):
    """Yesterday's reconciliation to the encrypted exports bucket, once (a rerun writes nothing)."""
    written = finance.export_previous_day(deps())
    app.log.info("daily reconciliation %s", "written" if written else "already there")


@app.schedule(Rate(1, unit=Rate.HOURS))
def sweep_expired_attempts(event):
    """Attempt counters past their expiry: DynamoDB's TTL deletes them too, but late and not on moto."""
    swept = services.sweep_expired_attempts(deps())
    app.log.info("expired attempt counters swept: %d", swept)


@app.schedule(Rate(1, unit=Rate.DAYS))
def purge_personal_data(event):
    """Storage limitation: names and addresses go RETENTION_DAYS after the kit (or the order) ended."""
    app.log.info("retention purge: %d orders erased", privacy.purge_personal_data(deps()))

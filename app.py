"""tracekit's Lambda entry points: the app, its middleware, Stripe's webhook and the schedules.
The holder's pages are chalicelib.web.holder, the partner API chalicelib.api; each route only
translates, and errors become HTTP in chalicelib.web.errors. Rules live in chalicelib.domain."""

from __future__ import annotations

from chalice import Chalice, Cron, Rate, Response

from chalicelib import bootstrap, services
from chalicelib.api import api
from chalicelib.reports import XlsxReport
from chalicelib.services import contacts, finance, manufacturer, notifications, privacy
from chalicelib.web import logs
from chalicelib.web.errors import webhook_errors
from chalicelib.web.forms import MAX_FORM_BYTES, BodyTooLarge
from chalicelib.web.contact_pages import contact_pages
from chalicelib.web.holder import holder

app = Chalice(app_name="tracekit", configure_logs=False)  # logging is JSON, set up by the composition root
app.register_blueprint(holder)  # the holder's pages (chalicelib/web/holder.py)
app.register_blueprint(contact_pages)  # the contact register's pages (chalicelib/web/contact_pages.py)
app.register_blueprint(api)  # the partner API (chalicelib/api.py)
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


MAX_WEBHOOK_BYTES = 64 * MAX_FORM_BYTES


def deps() -> services.Dependencies:
    return bootstrap.dependencies()


@app.route("/stripe/webhook", methods=["POST"], content_types=["application/json"])
@webhook_errors
def stripe_webhook():
    request = app.current_request
    if len(request.raw_body or b"") > MAX_WEBHOOK_BYTES:
        raise BodyTooLarge()
    outcome = services.handle_stripe_webhook(
        request.raw_body or b"", request.headers.get("stripe-signature", ""), deps()
    )
    app.log.info("stripe webhook handled: %s", outcome)
    return Response(body={"received": True}, status_code=200)


@app.schedule(Rate(15, unit=Rate.MINUTES))
def sweep_lapsed_holds(event):
    """Give back the claims of unpaid orders whose hold ran out (the expiry webhook never came)."""
    swept = services.sweep_lapsed_holds(deps())
    app.log.info("lapsed holds swept: %d", swept)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def relay_unsent_fulfilments(event):
    """The outboxes' relay: send confirmed orders whose message did not go at confirmation, and
    the holders' emails still due (a send that failed, or a sender that died)."""
    sent = manufacturer.relay_unsent(deps())
    app.log.info("relay sent %d fulfilment messages", sent)
    retried = notifications.send_all_due(deps())
    app.log.info("relay sent %d emails from the outbox", retried)
    told = contacts.send_contact_notices(deps())
    app.log.info("relay told %d replaced contact addresses", told)


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
    statements = finance.export_previous_month_statement(deps())  # on the 1st: last month's statement
    app.log.info("kit maker's statements written: %d", len(statements))


@app.schedule(Rate(1, unit=Rate.HOURS))
def sweep_expired_attempts(event):
    """Attempt counters past their expiry: DynamoDB's TTL deletes them too, but late and not on moto."""
    swept = services.sweep_expired_attempts(deps())
    app.log.info("expired attempt counters swept: %d", swept)


@app.schedule(Rate(1, unit=Rate.DAYS))
def purge_personal_data(event):
    """Storage limitation: names and addresses go RETENTION_DAYS after the kit (or the order) ended."""
    app.log.info("retention purge: %d orders erased", privacy.purge_personal_data(deps()))


@app.lambda_function(name="console")
def console(event, context):
    """The staff console: its own Chalice app (chalicelib.web.console) behind its own API, in this
    function with its own role, so the holder's function gains none of the console's powers. The
    console is imported here, on its first request, never by the holder's function."""
    from chalicelib.web.console import console as console_app

    return console_app(event, context)

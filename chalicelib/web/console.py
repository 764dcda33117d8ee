"""The staff console: its own Chalice app, deployed as its own function with its own role and its
own API (app.py's `console` function; docs/architecture.md, "The staff console"). Server-rendered
GOV.UK pages, no script.

Each route only translates: read the session and the form, call one function of
chalicelib.services.staff, render. `staff_page` decides who may open each page; the service
checks the group again before it acts."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

from chalice import Chalice, Response
from chalice.app import Request

from .. import bootstrap
from ..domain.errors import (
    AddressNotChangeable,
    ConcurrentChange,
    ExportNotFound,
    FulfilmentConflict,
    InvalidInput,
    KeyNotFound,
    NothingToResend,
    NothingToResolve,
    OrderNotFound,
    PaymentServiceUnavailable,
    QueueUnavailable,
    RefundRefused,
    RegisterChanged,
    StaffAccountExists,
    StaffAccountNotFound,
)
from ..domain.credentials import Scope
from ..domain.staff import Group, NotPermitted, StaffSession
from ..reports import audit_log_csv
from ..services import staff
from ..services.finance import STATEMENT_MEDIA_TYPES
from . import csrf
from .errors import _entry, log_unexpected
from .forms import BodyTooLarge, read_choices, read_form, read_upload
from .pages import redirect, render, stylesheet

log = logging.getLogger("tracekit")
console = Chalice(app_name="tracekit-console", configure_logs=False)
console.api.binary_types.append(STATEMENT_MEDIA_TYPES["xlsx"])
console.api.binary_types.append("multipart/form-data")  # the register's upload arrives as bytes

FORM = ["application/x-www-form-urlencoded"]
COOKIE = "tracekit_staff"
SIGN_IN_COOKIE = "tracekit_staff_sign_in"  # the sign-in form's own token (double submit), before any session
# Each group's pages, in the order the navigation lists them.
NAVIGATION: tuple[tuple[Group | None, str, str], ...] = (  # None: every group
    (None, "/dashboard", "Campaign dashboard"),
    (Group.SUPPORT, "/support/orders", "Find an order"),
    (Group.SUPPORT, "/support/work-list", "Orders needing a person"),
    (Group.FINANCE, "/finance/reconciliation", "Reconciliation"),
    (Group.FINANCE, "/finance/statement", "Kit maker's statement"),
    (Group.FINANCE, "/finance/exports", "Daily exports"),
    (Group.REGISTER_ADMIN, "/register", "The register"),
    (Group.ADMIN, "/admin/staff", "Staff accounts"),
    (Group.ADMIN, "/admin/keys", "Partner API keys"),
    (Group.ADMIN, "/admin/audit", "Audit log"),
)


def _in(member, group: Group | None) -> bool:
    return bool(member.groups) if group is None else group in member.groups


def _request() -> Request:
    request = console.current_request
    assert request is not None  # nosec B101 - set by Chalice for every route it calls
    return request


def _query() -> dict[str, str]:
    return dict(_request().query_params or {})


def deps():
    return bootstrap.dependencies()


def _console_url() -> str:
    settings = deps().settings
    return settings.staff.base_url if settings.staff else settings.app_base_url


def _cookie_value(name: str) -> str | None:
    for part in (_request().headers.get("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _cookie(name: str, value: str, max_age: int | None = None) -> str:
    secure = "; Secure" if deps().settings.cookie_secure else ""
    age = f"; Max-Age={max_age}" if max_age is not None else ""
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"


def _page(template: str, status: int = 200, cookie: str | None = None, session: StaffSession | None = None, **context):
    member = session.member if session else None
    links = [(href, text) for group, href, text in NAVIGATION if member and _in(member, group)]
    return render(
        f"console/{template}",
        status=status,
        cookie=cookie,
        member=member,
        links=links,
        csrf_token=session.csrf if session else "",
        **context,
    )


class Refusal(Exception):
    def __init__(self, status: int, title: str, message: str):
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


PROBLEMS: dict[type, tuple[int, str, str]] = {
    NotPermitted: (403, "You cannot use this page", "Your account is not in the group this page belongs to."),
    csrf.CrossSiteRequest: (403, "This form has expired", "Go back, reload the page and try again."),
    BodyTooLarge: (413, "Too much information sent", "The form was too large. Go back and try again."),
    OrderNotFound: (404, "No order with that reference", "Check the reference and try again."),
    ExportNotFound: (404, "No such export", "Go back to the list of exports and choose one."),
    KeyNotFound: (404, "No such key", "Go back to the list of keys and choose one."),
    RegisterChanged: (
        409,
        "The register changed meanwhile",
        "Another import or a rollback happened since the page was shown. Nothing was changed: look again.",
    ),
    StaffAccountNotFound: (404, "No such account", "Go back to the staff accounts and choose one."),
    PaymentServiceUnavailable: (503, "Stripe could not be reached", "Nothing was changed. Try again in a minute."),
    ConcurrentChange: (503, "Sorry, the service is busy", "Nothing was lost. Wait a moment and try again."),
    QueueUnavailable: (503, "Sorry, the service is busy", "Nothing was lost. Wait a moment and try again."),
    AddressNotChangeable: (
        409,
        "The address cannot be changed now",
        "The kit maker has accepted the order, or it has ended. Nothing was changed.",
    ),
    FulfilmentConflict: (409, "That cannot be done to this order now", "Its state has moved on. Open it again."),
    NothingToResend: (409, "There is no such email to send again", "The order has not reached that email yet."),
    NothingToResolve: (409, "There is nothing to resolve", "The order is not rejected or returned, or is resolved."),
}


def staff_page(
    group: Group | None,
    form_template: str | None = None,
    fields: tuple[str, ...] = (),
    context: Callable[..., dict] = lambda _session, **_kwargs: {},
):
    """The decorator of every signed-in page: the live session (or a redirect to sign in), the
    group's check, the form token on a POST, and refusals answered as pages. A refused form
    (InvalidInput, RefundRefused) is shown again with its messages."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            session = None
            try:
                session = staff.current(_cookie_value(COOKIE), deps())
                if session is None or session.member is None:
                    return redirect("/sign-in?ended=1" if _cookie_value(COOKIE) else "/sign-in")
                if group is not None:
                    session.member.require(group)
                return view(session, *args, **kwargs)
            except (InvalidInput, RefundRefused) as exc:
                if form_template is None or session is None:
                    return _problem(exc, view.__name__, session)
                return _form_again(exc, session, form_template, fields, lambda: context(session, **kwargs))
            except Exception as exc:  # noqa: BLE001 - every error is a page
                return _problem(exc, view.__name__, session)

        return wrapper

    return decorate


def _form_again(
    exc: InvalidInput | RefundRefused,
    session: StaffSession,
    template: str,
    fields: tuple[str, ...],
    context: Callable[[], dict],
) -> Response:
    """The refused form shown again (400) with its messages by field, in its page's context."""
    errors = exc.errors if isinstance(exc, InvalidInput) else {fields[0]: str(exc)}
    try:
        shown = context()
    except Exception as failed:  # noqa: BLE001 - the page itself cannot be shown: say why instead
        return _problem(failed, template, session)
    multipart = _request().headers.get("content-type", "").lower().startswith("multipart/")
    form = {} if multipart else read_form(_request().raw_body, fields)  # a file is never shown back
    return _page(template, 400, session=session, form=form, errors=errors, **shown)


PROBLEMS[InvalidInput] = (400, "Check what you sent", "Go back and check the form.")
PROBLEMS[RefundRefused] = (409, "That refund cannot be made", "Nothing, or less than that, is left to refund.")


def _problem(exc: Exception, where: str, session: StaffSession | None) -> Response:
    answer = _entry(PROBLEMS, exc)
    if isinstance(exc, NotPermitted) and session and session.member:
        staff.audit(deps(), session.member.username, "refused", detail={"page": _request().path})
    if answer is None:
        log_unexpected(exc, where)
        answer = (500, "Sorry, there is a problem with the service", "Try again later.")
    status, title, message = answer
    return _page("problem.html", status, session=session, title=title, message=message)


def posted(session: StaffSession, fields: tuple[str, ...]) -> dict[str, str]:
    """A signed-in form's fields, once its token (the session's own) and origin are checked."""
    request = _request()
    answers = read_form(request.raw_body, (*fields, csrf.FIELD))
    csrf.check_origin(request.headers, _console_url())
    if not hmac.compare_digest(answers.pop(csrf.FIELD), session.csrf):
        raise csrf.CrossSiteRequest("missing or wrong form token")
    return answers


# --- signing in and out ----------------------------------------------------------------------------


@console.route("/assets/tracekit.css", methods=["GET"])
def console_stylesheet():
    return stylesheet()


@console.route("/sign-in", methods=["GET"])
def sign_in_page():
    token = secrets.token_hex(16)
    ended = _query().get("ended") == "1"
    return _sign_in_form(200, token, ended=ended)


def _sign_in_form(status: int, token: str, **context) -> Response:
    shown = {"form": {}, "errors": {}, **context}
    return _page("sign_in.html", status, cookie=_cookie(SIGN_IN_COOKIE, token, 600), token=token, **shown)


@console.route("/sign-in", methods=["POST"], content_types=FORM)
def sign_in():
    request = _request()
    try:
        answers = read_form(request.raw_body, ("username", "password", csrf.FIELD))
        csrf.check_origin(request.headers, _console_url())
        expected = _cookie_value(SIGN_IN_COOKIE) or ""
        if not expected or not hmac.compare_digest(answers[csrf.FIELD], expected):
            raise csrf.CrossSiteRequest("missing or wrong sign-in token")
        outcome = staff.sign_in(answers["username"], answers["password"], deps())
    except InvalidInput as exc:
        return _sign_in_form(400, secrets.token_hex(16), form={"username": answers["username"]}, errors=exc.errors)
    except Exception as exc:  # noqa: BLE001
        return _problem(exc, "sign_in", None)
    if outcome.refused:
        errors = {"username": "The email address or password is not right"}
        return _sign_in_form(400, secrets.token_hex(16), form={"username": answers["username"]}, errors=errors)
    return _next_step(outcome)


def _next_step(outcome: staff.SignInAnswer) -> Response:
    assert outcome.session is not None and outcome.token is not None  # nosec B101 - not refused
    cookie = _cookie(COOKIE, outcome.token)
    if outcome.session.challenge is None:
        return redirect("/", cookie=cookie)
    return _challenge_page(outcome.session, cookie)


def _challenge_page(session: StaffSession, cookie: str | None, status: int = 200, **context) -> Response:
    assert session.challenge is not None  # nosec B101
    name = session.challenge.name
    if name == "MFA_SETUP":
        return redirect("/sign-in/set-up-authenticator", cookie=cookie)
    template = "sign_in_code.html" if name == "SOFTWARE_TOKEN_MFA" else "sign_in_new_password.html"
    return _page(template, status, cookie=cookie, session=session, **{"errors": {}, **context})


@console.route("/sign-in/set-up-authenticator", methods=["GET"])
def set_up_authenticator():
    try:
        set_up = staff.set_up_authenticator(_cookie_value(COOKIE) or "", deps())
    except Exception as exc:  # noqa: BLE001
        return _problem(exc, "set_up_authenticator", None)
    if set_up is None:
        return redirect("/sign-in?ended=1")
    secret, outcome = set_up
    assert outcome.token is not None  # nosec B101
    return _page(
        "sign_in_set_up.html", cookie=_cookie(COOKIE, outcome.token), session=outcome.session, secret=secret, errors={}
    )


@console.route("/sign-in/answer", methods=["POST"], content_types=FORM)
def answer_challenge():
    token = _cookie_value(COOKIE) or ""
    try:
        pending = staff.current(token, deps())
        if pending is None or pending.challenge is None:
            return redirect("/sign-in?ended=1")
        answers = posted(pending, ("answer",))
        outcome = staff.answer_challenge(token, answers["answer"], deps())
    except InvalidInput as exc:
        return _challenge_page(pending, None, 400, errors=exc.errors) if pending else redirect("/sign-in")
    except Exception as exc:  # noqa: BLE001
        return _problem(exc, "answer_challenge", None)
    if outcome.refused:
        token = secrets.token_hex(16)
        errors = {"username": "That code or password was not accepted. Sign in again."}
        return _sign_in_form(400, token, form={}, errors=errors)
    return _next_step(outcome)


@console.route("/sign-out", methods=["POST"], content_types=FORM)
@staff_page(None)
def sign_out(session: StaffSession):
    posted(session, ())
    staff.sign_out(session, deps())
    return redirect("/sign-in?signed_out=1", cookie=_cookie(COOKIE, "", 0))


@console.route("/", methods=["GET"])
@staff_page(None)
def home(session: StaffSession):
    return _page("home.html", session=session)


# --- support ---------------------------------------------------------------------------------------


@console.route("/support/orders", methods=["GET"])
@staff_page(Group.SUPPORT)
def find_order_page(session: StaffSession):
    reference = _query().get("reference", "").strip()
    if not reference:
        return _page("support_find.html", session=session, form={}, errors={})
    from ..domain.references import normalise_order_reference

    normal = normalise_order_reference(reference)
    if normal is None:
        errors = {"reference": "Enter an order reference like TK-7K3MQ-9X2HD"}
        return _page("support_find.html", 400, session=session, form={"reference": reference}, errors=errors)
    return redirect(f"/support/orders/{normal}")


RECIPIENT_FIELDS = ("surname", "postcode", "reason")


@console.route("/support/orders/by-recipient", methods=["POST"], content_types=FORM)
@staff_page(Group.SUPPORT, "support_find.html", RECIPIENT_FIELDS)
def find_by_recipient(session: StaffSession):
    """A POST, so the surname and postcode are never in a URL (nor in a log's request line)."""
    answers = posted(session, RECIPIENT_FIELDS)
    why = answers.pop("reason")
    found = staff.find_by_recipient(_member(session), answers, why, deps())
    return _page("support_find.html", session=session, form={}, errors={}, found=found, searched=True)


@console.route("/support/orders/{reference}", methods=["GET"])
@staff_page(Group.SUPPORT)
def order_page(session: StaffSession, reference: str):
    return _page("support_order.html", session=session, form={}, errors={}, **_order_context(session, reference))


@console.route("/support/orders/{reference}/delivery", methods=["POST"], content_types=FORM)
@staff_page(Group.SUPPORT, "support_order.html", ("purpose",), context=lambda *a, **k: _order_context(*a, **k))
def order_delivery(session: StaffSession, reference: str):
    answers = posted(session, ("purpose",))
    delivery = staff.view_delivery(_member(session), reference, answers["purpose"], deps())
    shown = _order_context(session, reference)
    return _page("support_order.html", session=session, form={}, errors={}, delivery=delivery, **shown)


@console.route("/support/orders/{reference}/refund", methods=["POST"], content_types=FORM)
@staff_page(Group.SUPPORT, "support_order.html", ("amount", "reason"), context=lambda *a, **k: _order_context(*a, **k))
def order_refund(session: StaffSession, reference: str):
    answers = posted(session, ("amount", "reason"))
    order = staff.refund(_member(session), reference, answers["amount"], answers["reason"], deps())
    return redirect(f"/support/orders/{order.reference}?refunded=1")


ADDRESS_FIELDS = ("full_name", "address_line_1", "address_line_2", "town", "postcode", "reason")


def _address_context(session: StaffSession, reference: str = "", **_kwargs) -> dict:
    return {"order": staff.view_order(_member(session), reference, deps())}


@console.route("/support/orders/{reference}/address", methods=["GET"])
@staff_page(Group.SUPPORT)
def change_address_page(session: StaffSession, reference: str):
    return _page("support_address.html", session=session, form={}, errors={}, **_address_context(session, reference))


@console.route("/support/orders/{reference}/address", methods=["POST"], content_types=FORM)
@staff_page(Group.SUPPORT, "support_address.html", ADDRESS_FIELDS, context=_address_context)
def change_address(session: StaffSession, reference: str):
    answers = posted(session, ADDRESS_FIELDS)
    why = answers.pop("reason")
    order = staff.change_address(_member(session), reference, answers, why, deps())
    return redirect(f"/support/orders/{order.reference}?done=change-address")


def _member(session: StaffSession):
    assert session.member is not None  # nosec B101 - staff_page lets only signed-in sessions through
    return session.member


@console.route("/support/orders/{reference}/actions/{action}", methods=["GET"])
@staff_page(Group.SUPPORT)
def order_action_page(session: StaffSession, reference: str, action: str):
    return _page(
        "support_action.html", session=session, form={}, errors={}, **_action_context(session, reference, action)
    )


def _action_context(session: StaffSession, reference: str, action: str) -> dict:
    label = staff.support_actions().get(action)
    if label is None:
        raise OrderNotFound(action)  # no such page
    return {"order": staff.view_order(_member(session), reference, deps()), "action": action, "label": label}


@console.route("/support/orders/{reference}/actions/{action}", methods=["POST"], content_types=FORM)
@staff_page(Group.SUPPORT, "support_action.html", ("reason",), context=lambda *a, **k: _action_context(*a, **k))
def order_action(session: StaffSession, reference: str, action: str):
    answers = posted(session, ("reason",))
    order = staff.act(_member(session), reference, action, answers["reason"], deps())
    return redirect(f"/support/orders/{order.reference}?done={action}")


@console.route("/support/work-list", methods=["GET"])
@staff_page(Group.SUPPORT)
def work_list(session: StaffSession):
    return _page("support_work_list.html", session=session, cases=staff.work_list(_member(session), deps()))


def _order_context(session: StaffSession, reference: str) -> dict:
    done = _query().get("done", "")
    return {
        "order": staff.view_order(_member(session), reference, deps()),
        "actions": staff.support_actions(),
        "done": {**staff.support_actions(), "change-address": "the delivery name and address changed"}.get(done),
        "refunded": _query().get("refunded") == "1",
    }


# --- the dashboard ---------------------------------------------------------------------------------


@console.route("/dashboard", methods=["GET"])
@staff_page(None)
def dashboard_page(session: StaffSession):
    """The campaign's figures for a period (blank: the last 28 days), its charts drawn here."""
    from . import charts  # leather is imported by this page alone (benchmarks/cold_start.py)

    query = _query()
    form = {"from": query.get("from", ""), "to": query.get("to", "")}
    try:
        figures = staff.dashboard(_member(session), form["from"], form["to"], deps())
    except InvalidInput as exc:
        return _page("dashboard.html", 400, session=session, form=form, errors=exc.errors, figures=None)
    days = [(day.day, day.paid, day.free) for day in figures.days]
    drawn = {
        "orders": charts.orders_per_day(days),
        "dispatch": charts.bars(list(figures.dispatch_bands), "Time from order to first dispatch: the numbers follow"),
    }
    return _page("dashboard.html", session=session, form=form, errors={}, figures=figures, charts=drawn)


# --- finance ---------------------------------------------------------------------------------------


@console.route("/finance/reconciliation", methods=["GET"])
@staff_page(Group.FINANCE)
def reconciliation_page(session: StaffSession):
    return _period_page(session, "finance_reconciliation.html", staff.reconciliation_on_screen)


def _period_page(session: StaffSession, template: str, shown: Callable) -> Response:
    """A finance page with a period's form: blank until asked, the form again with its errors."""
    query = _query()
    if not query.get("from") and not query.get("to"):
        return _page(template, session=session, form={}, errors={}, result=None)
    form = {"from": query.get("from", ""), "to": query.get("to", "")}
    try:
        result = shown(_member(session), form["from"], form["to"], deps())
    except InvalidInput as exc:
        return _page(template, 400, session=session, form=form, errors=exc.errors, result=None)
    return _page(template, session=session, form=form, errors={}, result=result)


@console.route("/finance/reconciliation/download", methods=["GET"])
@staff_page(Group.FINANCE)
def reconciliation_download(session: StaffSession):
    query = _query()
    fmt = query.get("format", "csv")
    return _download(*staff.reconciliation_file(_member(session), query.get("from"), query.get("to"), fmt, deps()))


@console.route("/finance/statement", methods=["GET"])
@staff_page(Group.FINANCE)
def statement_page(session: StaffSession):
    return _period_page(session, "finance_statement.html", staff.statement_on_screen)


@console.route("/finance/statement/download", methods=["GET"])
@staff_page(Group.FINANCE)
def statement_download(session: StaffSession):
    query = _query()
    fmt = query.get("format", "csv")
    return _download(*staff.statement_file(_member(session), query.get("from"), query.get("to"), fmt, deps()))


@console.route("/finance/exports", methods=["GET"])
@staff_page(Group.FINANCE)
def exports_page(session: StaffSession):
    return _page("finance_exports.html", session=session, folders=staff.exports_listed(_member(session), deps()))


@console.route("/finance/exports/download", methods=["GET"])
@staff_page(Group.FINANCE)
def export_download(session: StaffSession):
    return _download(*staff.export_file(_member(session), _query().get("key", ""), deps()))


def _download(body: bytes | str, media_type: str, name: str) -> Response:
    return Response(
        body=body,
        status_code=200,
        headers={
            "Content-Type": media_type,
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- admin -----------------------------------------------------------------------------------------


def _keys_context(session: StaffSession, **_kwargs) -> dict:
    return {"keys": staff.api_keys(_member(session), deps()), "scopes": [s.value for s in Scope]}


@console.route("/admin/keys", methods=["GET"])
@staff_page(Group.ADMIN)
def keys_page(session: StaffSession):
    revoked = _query().get("revoked", "")
    return _page("admin_keys.html", session=session, form={}, errors={}, revoked=revoked, **_keys_context(session))


@console.route("/admin/keys", methods=["POST"], content_types=FORM)
@staff_page(Group.ADMIN, "admin_keys.html", ("label", "scope"), context=_keys_context)
def create_key(session: StaffSession):
    answers = posted(session, ("scope", "label"))
    key, token = staff.new_api_key(_member(session), answers["scope"], answers["label"], deps())
    return _page("admin_key_created.html", session=session, key=key, token=token)


def _key_context(session: StaffSession, key_id: str = "", **_kwargs) -> dict:
    return {"key": staff.api_key(_member(session), key_id, deps())}


@console.route("/admin/keys/{key_id}/revoke", methods=["GET"])
@staff_page(Group.ADMIN)
def revoke_key_page(session: StaffSession, key_id: str):
    return _page("admin_key_revoke.html", session=session, form={}, errors={}, **_key_context(session, key_id))


@console.route("/admin/keys/{key_id}/revoke", methods=["POST"], content_types=FORM)
@staff_page(Group.ADMIN, "admin_key_revoke.html", ("reason",), context=_key_context)
def revoke_key(session: StaffSession, key_id: str):
    answers = posted(session, ("reason",))
    key = staff.revoke_key(_member(session), key_id, answers["reason"], deps())
    return redirect(f"/admin/keys?revoked={key.key_id}")


@console.route("/admin/audit", methods=["GET"])
@staff_page(Group.ADMIN)
def audit_page(session: StaffSession):
    form = {name: _query().get(name, "") for name in staff.AUDIT_FILTERS}
    try:
        entries = staff.audit_entries(_member(session), form, deps(), limit=staff.AUDIT_PAGE + 1)
    except InvalidInput as exc:
        return _page("admin_audit.html", 400, session=session, form=form, errors=exc.errors, entries=None)
    more = len(entries) > staff.AUDIT_PAGE
    shown = entries[: staff.AUDIT_PAGE]
    query = urlencode({k: v for k, v in form.items() if v})
    return _page("admin_audit.html", session=session, form=form, errors={}, entries=shown, more=more, query=query)


@console.route("/admin/audit/download", methods=["GET"])
@staff_page(Group.ADMIN)
def audit_download(session: StaffSession):
    form = {name: _query().get(name, "") for name in staff.AUDIT_FILTERS}
    entries = staff.audit_entries(_member(session), form, deps(), limit=None)
    day = deps().clock().date().isoformat()
    return _download(audit_log_csv(entries), "text/csv; charset=utf-8", f"audit-log-{day}.csv")


def _staff_context(session: StaffSession, **_kwargs) -> dict:
    return {"accounts": staff.staff_accounts(_member(session), deps()), "groups": [g.value for g in Group]}


@console.route("/admin/staff", methods=["GET"])
@staff_page(Group.ADMIN)
def staff_page_list(session: StaffSession):
    invited = _query().get("invited") == "1"
    return _page("admin_staff.html", session=session, form={}, errors={}, invited=invited, **_staff_context(session))


@console.route("/admin/staff", methods=["POST"], content_types=FORM)
@staff_page(Group.ADMIN, "admin_staff.html", ("email",), context=_staff_context)
def invite_staff(session: StaffSession):
    answers = posted(session, ("email",))
    try:
        staff.invite_staff(_member(session), answers["email"], read_choices(_request().raw_body, "groups"), deps())
    except StaffAccountExists:
        raise InvalidInput({"email": "That email address already has an account"}) from None
    return redirect("/admin/staff?invited=1")


def _account_context(session: StaffSession, sub: str = "", **_kwargs) -> dict:
    return {"account": staff.staff_account(_member(session), sub, deps()), "groups": [g.value for g in Group]}


@console.route("/admin/staff/{sub}", methods=["GET"])
@staff_page(Group.ADMIN)
def staff_account_page(session: StaffSession, sub: str):
    done = _query().get("done", "")
    return _page("admin_account.html", session=session, form={}, errors={}, done=done, **_account_context(session, sub))


@console.route("/admin/staff/{sub}/groups", methods=["POST"], content_types=FORM)
@staff_page(Group.ADMIN, "admin_account.html", ("groups_reason",), context=_account_context)
def staff_account_groups(session: StaffSession, sub: str):
    answers = posted(session, ("groups_reason",))
    chosen = read_choices(_request().raw_body, "groups")
    staff.change_groups(_member(session), sub, chosen, answers["groups_reason"], deps())
    return redirect(f"/admin/staff/{sub}?done=groups")


@console.route("/admin/staff/{sub}/access", methods=["POST"], content_types=FORM)
@staff_page(Group.ADMIN, "admin_account.html", ("access_reason",), context=_account_context)
def staff_account_access(session: StaffSession, sub: str):
    answers = posted(session, ("access_reason", "access"))
    enabled = answers["access"] == "on"
    staff.set_access(_member(session), sub, enabled, answers["access_reason"], deps())
    return redirect(f"/admin/staff/{sub}?done={'enabled' if enabled else 'disabled'}")


# --- the register's administrator ------------------------------------------------------------------

UPLOAD = ["multipart/form-data"]


def _register_context(session: StaffSession, **_kwargs) -> dict:
    return {"state": staff.register_state(_member(session), deps()), "upload": None}


@console.route("/register", methods=["GET"])
@staff_page(Group.REGISTER_ADMIN)
def register_page(session: StaffSession):
    done = _query().get("done", "")
    return _page("register.html", session=session, form={}, errors={}, done=done, **_register_context(session))


def _uploaded(session: StaffSession, fields: tuple[str, ...]) -> tuple[dict[str, str], bytes | None]:
    """A multipart form's fields and file, once its token and origin are checked."""
    request = _request()
    answers, data = read_upload(
        request.raw_body, request.headers.get("content-type", ""), (*fields, csrf.FIELD), "export", MAX_UPLOAD
    )
    csrf.check_origin(request.headers, _console_url())
    if not hmac.compare_digest(answers.pop(csrf.FIELD), session.csrf):
        raise csrf.CrossSiteRequest("missing or wrong form token")
    return answers, data


MAX_UPLOAD = staff.MAX_UPLOAD_BYTES


@console.route("/register/check", methods=["POST"], content_types=UPLOAD)
@staff_page(Group.REGISTER_ADMIN, "register.html", ("export",), context=_register_context)
def register_check(session: StaffSession):
    _answers, data = _uploaded(session, ())
    upload = staff.check_register_file(_member(session), data, deps())
    state = staff.register_state(_member(session), deps())
    return _page("register.html", session=session, form={}, errors={}, done="", state=state, upload=upload)


@console.route("/register/switch", methods=["POST"], content_types=UPLOAD)
@staff_page(Group.REGISTER_ADMIN, "register.html", ("export",), context=_register_context)
def register_switch(session: StaffSession):
    answers, data = _uploaded(session, ("fingerprint", "live"))
    staff.switch_register(_member(session), data, answers["fingerprint"], answers["live"], deps())
    return redirect("/register?done=switched")


@console.route("/register/rollback", methods=["POST"], content_types=FORM)
@staff_page(Group.REGISTER_ADMIN, "register.html", ("reason",), context=_register_context)
def register_rollback(session: StaffSession):
    answers = posted(session, ("reason", "live"))
    staff.roll_back(_member(session), answers["live"], answers["reason"], deps())
    return redirect("/register?done=rolled-back")

"""Errors to HTTP: one table per kind of entry point, and no catch-and-translate inside a route.

- the holder's pages (`HolderPages`): a refusal becomes a page, or the form shown again with the
  refusal's messages by its fields;
- the partner JSON API (`json_errors`): a refusal becomes a status and a JSON body;
- Stripe's webhook (`webhook_errors`): a status Stripe acts on (anything but 2xx is retried).

Anything unexpected is a plain 500 in each, logged by type and place, never by its message (which
may hold personal data), and never echoed to the caller.
"""

from __future__ import annotations

import functools
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chalice import Response

from ..domain.errors import (
    CertificateAlreadyClaimed,
    CertificateNotAccepted,
    ConcurrentChange,
    ContactLinkNotUsable,
    FulfilmentConflict,
    ReplacementRefused,
    ReplacementTooEarly,
    AddressNotChangeable,
    InvalidInput,
    InvalidWebhook,
    MailUnavailable,
    OrderNotFound,
    OrderNotMatched,
    PaymentServiceUnavailable,
    QueueUnavailable,
)
from .csrf import CrossSiteRequest
from .forms import BodyTooLarge, read_form
from .order_status import gov_uk_date
from .pages import redirect, render

log = logging.getLogger("tracekit")

# Every refusal of a certificate check, a lockout included, says exactly this (docs/security.md).
NOT_MATCHED = (
    "We could not match that certificate reference and postcode to a current certificate "
    "that can order a kit. Check both are as shown on your certificate. If they are, try again "
    "tomorrow or contact the Firearms Enquiry Team."
)
NO_SUCH_ORDER = "We could not find an order with that reference and delivery postcode. Check both and try again."


@dataclass(frozen=True)
class Problem:
    """A page that answers a refusal: a template and its status (problem.html takes a title and a message)."""

    status: int
    template: str = "problem.html"
    title: str | None = None
    message: str | None = None
    ends_journey: bool = False  # the journey's cookie is cleared with it
    details: Callable[[Exception], dict] | None = None  # what the template needs from the error

    def context(self, exc: Exception) -> dict:
        context = {"title": self.title, "message": self.message} if self.title else {}
        return {**context, **(self.details(exc) if self.details else {})}


@dataclass(frozen=True)
class Redirect:
    """A refusal answered by sending the holder to another page."""

    location: str


BUSY = Problem(503, title="Sorry, the service is busy", message="Nothing was lost. Wait a moment and try again.")
BROKEN = Problem(500, title="Sorry, there is a problem with the service", message="Try again later.")

PAGE_PROBLEMS: dict[type[Exception], Problem | Redirect] = {
    CrossSiteRequest: Problem(403, title="This form has expired", message="Go back, reload the page and try again."),
    BodyTooLarge: Problem(
        413, title="Too much information sent", message="The form you sent was too large. Go back and try again."
    ),
    CertificateAlreadyClaimed: Problem(409, "already_ordered.html", ends_journey=True),
    PaymentServiceUnavailable: Problem(503, "payment_unavailable.html"),
    ConcurrentChange: BUSY,
    QueueUnavailable: BUSY,
    MailUnavailable: BUSY,  # the contact register's confirmation email: the holder is asked to try again
    AddressNotChangeable: Problem(409, "address_locked.html"),
    FulfilmentConflict: Problem(
        409,
        title="Your order can no longer be cancelled",
        message="Your kit has already been sent, or the order has already ended. Check its status again.",
    ),
    ReplacementRefused: Problem(
        409,
        title="Your kit cannot be reported as not arrived",
        message="It has not been posted, or our team has already looked at a report about it. Check its status again.",
    ),
    ContactLinkNotUsable: Problem(410, "contact/link_refused.html", details=lambda exc: _link_refused(exc)),
    # The holder's pages look up only their journey's order: none yet means it was never placed.
    OrderNotFound: Redirect("/order/check-answers"),
}


_LINK_TITLES = {
    "used": "This link has already been used",
    "expired": "This link has expired",
    "unknown": "This link does not work",
}


def _link_refused(exc: Exception) -> dict:
    state = exc.state if isinstance(exc, ContactLinkNotUsable) else "unknown"
    purpose = exc.purpose if isinstance(exc, ContactLinkNotUsable) else ""
    return {"title": _LINK_TITLES.get(state, _LINK_TITLES["unknown"]), "state": state, "purpose": purpose}


def _invalid_fields(exc: Exception) -> dict[str, str]:
    """The messages by field of an InvalidInput (the tables below are keyed by its type)."""
    if not isinstance(exc, InvalidInput):
        raise TypeError(f"expected InvalidInput, got {type(exc).__name__}")
    return exc.errors


# Refusals of a form's answers: the form is shown again (400) with these messages by its fields.
FIELD_ERRORS: dict[type[Exception], Callable[[Exception], dict[str, str]]] = {
    InvalidInput: _invalid_fields,
    CertificateNotAccepted: lambda _exc: {"reference": NOT_MATCHED},
    OrderNotMatched: lambda _exc: {"reference": NO_SUCH_ORDER},
    ReplacementTooEarly: lambda exc: {"reference": _too_early(exc)},
}


def _too_early(exc: Exception) -> str:
    allowed_from = exc.allowed_from if isinstance(exc, ReplacementTooEarly) else None
    when = f"from {gov_uk_date(allowed_from)}" if allowed_from else "later"
    return f"It is too soon to report that your kit has not arrived. You can report it {when}."


@dataclass(frozen=True)
class Form:
    """A route's form, to show again when its answers are refused: the template, the fields (read
    again from the request's body, which the route has already checked) and the page's context."""

    template: str
    fields: tuple[str, ...]
    context: Callable[[], dict] = field(default=dict)


class HolderPages:
    """The decorator for the holder's HTML routes: `@page` or `@page(form=Form(...))`. The
    journey's own rendering is given by the routes' module (a form page carries its form token)."""

    def __init__(
        self,
        request: Callable,
        form_page: Callable[..., Response],
        clear_cookie: Callable[[], str],
        page_context: Callable[[], dict] = dict,  # what every refusal page may show: the contact
    ):
        self._request, self._form_page, self._clear_cookie = request, form_page, clear_cookie
        self._page_context = page_context

    def __call__(self, view=None, *, form: Form | None = None):
        if view is None:
            return functools.partial(self, form=form)

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every error is answered by the table, or a plain 500
                return self.answer(exc, view.__name__, form)

        return wrapper

    def answer(self, exc: Exception, where: str, form: Form | None) -> Response:
        fields = _entry(FIELD_ERRORS, exc)
        if form is not None and fields is not None:
            answers = read_form(self._request().raw_body, form.fields)
            return self._form_page(form.template, status=400, form=answers, errors=fields(exc), **form.context())
        problem = _entry(PAGE_PROBLEMS, exc)
        if isinstance(problem, Redirect):
            return redirect(problem.location)
        if problem is None:
            log_unexpected(exc, where)
            problem = BROKEN
        elif isinstance(exc, CrossSiteRequest):
            log.warning("form refused: %s", exc)
        cookie = self._clear_cookie() if problem.ends_journey else None
        return render(
            problem.template, status=problem.status, cookie=cookie, **self._page_context(), **problem.context(exc)
        )


UNAVAILABLE = (503, "a service tracekit depends on is unavailable; try again")
JSON_ERRORS: dict[type[Exception], Callable[[Exception], tuple[int, dict]]] = {
    InvalidInput: lambda exc: (400, {"error": "invalid request", "fields": _invalid_fields(exc)}),
    OrderNotFound: lambda _exc: (404, {"error": "no such fulfilment order"}),
    FulfilmentConflict: lambda exc: (409, {"error": str(exc)}),  # the domain's own words, no data
    PaymentServiceUnavailable: lambda _exc: (UNAVAILABLE[0], {"error": UNAVAILABLE[1]}),
    ConcurrentChange: lambda _exc: (UNAVAILABLE[0], {"error": UNAVAILABLE[1]}),
}


def json_errors(view):
    """The decorator for the partner API's JSON routes."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error is answered by the table, or a plain 500
            answer = _entry(JSON_ERRORS, exc)
            if answer is None:
                log_unexpected(exc, view.__name__)
                return json_response(500, {"error": "internal error"})
            return json_response(*answer(exc))

    return wrapper


def json_response(status: int, body: dict) -> Response:
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


WEBHOOK_ERRORS: dict[type[Exception], tuple[int, str]] = {
    BodyTooLarge: (413, "payload too large"),
    InvalidWebhook: (400, "invalid signature"),
}


def webhook_errors(view):
    """The decorator for Stripe's webhook: a refused event is not retried by Stripe (4xx), a
    failure inside tracekit is (500), so that the retry finds the dependency back."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error is answered by the table, or a plain 500
            status, message = _entry(WEBHOOK_ERRORS, exc) or (500, "internal error")
            if status == 500:
                log_unexpected(exc, view.__name__)
            return Response(body={"error": message}, status_code=status, headers={"Cache-Control": "no-store"})

    return wrapper


def _entry(table: dict, exc: Exception):
    """The table's answer for the error's class or its nearest listed base class; None if none."""
    for kind in type(exc).__mro__:
        if kind in table:
            return table[kind]
    return None


def log_unexpected(exc: Exception, view: str) -> None:
    """The last line of defence: logged by type and place, without the message, which may hold data."""
    log.error("unhandled %s in %s at %s", type(exc).__name__, view, _where(exc))


def _where(exc: Exception) -> str:
    """Where it happened (file:line in function, innermost last) without the message, which may hold data."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))

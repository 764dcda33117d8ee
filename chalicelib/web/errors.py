"""Domain errors to HTTP, in one place. An unexpected error never shows its text to anyone."""

from __future__ import annotations

import functools
import logging
import traceback
from pathlib import Path

from chalice import Response

from ..domain.errors import ConcurrentChange, JourneyExpired, OrderNotFound, PaymentServiceUnavailable, QueueUnavailable
from .csrf import CrossSiteRequest
from .forms import BodyTooLarge
from .pages import render

log = logging.getLogger("tracekit")


def page(view):
    """Wrap an HTML route: expected refusals become pages, anything else a plain 500 page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except CrossSiteRequest as exc:
            log.warning("form refused: %s", exc)
            return render(
                "problem.html",
                status=403,
                title="This form has expired",
                message="Go back, reload the page and try again.",
            )
        except BodyTooLarge:
            return render(
                "problem.html",
                status=413,
                title="Too much information sent",
                message="The form you sent was too large. Go back and try again.",
            )
        except JourneyExpired:
            return render("session_ended.html", status=400)
        except OrderNotFound:
            return render("problem.html", status=404, title="Page not found", message="We could not find that order.")
        except PaymentServiceUnavailable:
            return render("payment_unavailable.html", status=503)
        except (ConcurrentChange, QueueUnavailable):
            return render(
                "problem.html",
                status=503,
                title="Sorry, the service is busy",
                message="Nothing was lost. Wait a moment and try again.",
            )
        except Exception as exc:  # noqa: BLE001 - the last line of defence; logged without its message
            log.error("unhandled %s in %s at %s", type(exc).__name__, view.__name__, _where(exc))
            return render(
                "problem.html",
                status=500,
                title="Sorry, there is a problem with the service",
                message="Try again later.",
            )

    return wrapper


def _where(exc: Exception) -> str:
    """Where it happened (file:line in function, innermost last) without the message, which may hold data."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in reversed(frames))


def json_error(status: int, message: str) -> Response:
    return Response(body={"error": message}, status_code=status, headers={"Cache-Control": "no-store"})

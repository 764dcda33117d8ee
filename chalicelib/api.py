"""The partner API (JSON under /manufacturer/, files under /finance/), with the one authorizer for
scoped API keys: a manufacturer key opens only /manufacturer/*, a finance key only /finance/*.

Routes only translate; chalicelib.services.manufacturer holds the rules. Domain errors become
HTTP statuses in chalicelib.web.errors (`json_errors`), the one table for this API."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping
from typing import Any

from chalice import Blueprint, Response
from chalice.app import AuthResponse

from . import bootstrap, safejson
from .domain.errors import InvalidInput
from .reports import CsvReport, XlsxReport
from .services import finance
from .services import manufacturer as service
from .domain.times import to_iso
from .web.errors import json_errors
from .web.errors import json_response as _json

api = Blueprint(__name__)
MAX_JSON_BYTES = 16 * 1024
MAX_JSON_DEPTH = 32  # a partner's legitimate bodies nest 1 level
MAX_FILE_BYTES = 5 * 1024 * 1024  # Lambda answers at most 6 MB
MEDIA_TYPES = {"csv": CsvReport.media_type, "xlsx": XlsxReport.media_type}


@api.authorizer(ttl_seconds=60)
def api_key(auth_request):
    """Allows an active key's own scope (`/manufacturer/*` or `/finance/*`) and nothing else."""
    grant = service.authorize(auth_request.token, bootstrap.dependencies())
    if grant is None:
        return AuthResponse(routes=[], principal_id="anonymous")
    return AuthResponse(routes=[f"{grant.scope.route_prefix}*"], principal_id=grant.key_id)


def json_route(*, query: tuple[str, ...] = ()):
    """A JSON view taking only the `query` parameters named (any other is refused with 400, not
    ignored: a caller's typo should not silently mean something else); errors via json_errors."""
    allowed = frozenset(query)

    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            if set(api.current_request.query_params or {}) - allowed:
                raise InvalidInput({"query": "unknown query parameters (see the API's OpenAPI document)"})
            return view(*args, **kwargs)

        return json_errors(checked)

    return decorate


def _deps():
    return bootstrap.dependencies()


def _caller() -> str:
    authorizer: dict[str, Any] = api.current_request.context.get("authorizer", {})
    return authorizer.get("principalId", "unknown")


def _query(name: str) -> str | None:
    params: Mapping[str, str] = api.current_request.query_params or {}
    return params.get(name)


def _body() -> dict:
    raw = api.current_request.raw_body or b""
    if len(raw) > MAX_JSON_BYTES:
        raise InvalidInput({"body": f"the body must be under {MAX_JSON_BYTES} bytes"})
    try:
        body = safejson.loads(raw or b"{}", MAX_JSON_DEPTH)
    except safejson.TooDeep:
        raise InvalidInput({"body": f"the body must not nest deeper than {MAX_JSON_DEPTH} levels"}) from None
    except ValueError:
        raise InvalidInput({"body": "the body must be a JSON object"}) from None
    if not isinstance(body, dict):
        raise InvalidInput({"body": "the body must be a JSON object"})
    return body


def _state(order) -> dict:
    dispatch = order.dispatch
    return {
        "fulfilment_id": order.fulfilment_id,
        "state": order.fulfilment.value,
        "dispatch": None
        if dispatch is None
        else {
            "kit_code": dispatch.kit_code,
            "carrier": dispatch.carrier,
            "tracking_reference": dispatch.tracking_reference,
            "dispatched_at": to_iso(dispatch.dispatched_at),
        },
    }


def _page(page, key: str) -> Response:
    return _json(200, {key: [item.to_document() for item in page.items], "next_cursor": page.next_cursor})


@api.route("/manufacturer/fulfilment-orders", methods=["GET"], authorizer=api_key)
@json_route(query=("cursor", "limit"))
def list_fulfilment_orders():
    return _page(service.open_fulfilments(_query("cursor"), _query("limit"), _deps()), "fulfilment_orders")


@api.route(
    "/manufacturer/fulfilment-orders/{fulfilment_id}/accept",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def accept_fulfilment_order(fulfilment_id):
    return _json(200, _state(service.accept_fulfilment(fulfilment_id, _caller(), _deps())))


@api.route(
    "/manufacturer/fulfilment-orders/{fulfilment_id}/dispatch",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def dispatch_fulfilment_order(fulfilment_id):
    return _json(200, _state(service.dispatch_fulfilment(fulfilment_id, _body(), _caller(), _deps())))


@api.route(
    "/manufacturer/fulfilment-orders/{fulfilment_id}/reject",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def reject_fulfilment_order(fulfilment_id):
    return _json(200, _state(service.reject_fulfilment(fulfilment_id, _body().get("reason"), _caller(), _deps())))


@api.route(
    "/manufacturer/fulfilment-orders/{fulfilment_id}/returned",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def report_returned_fulfilment_order(fulfilment_id):
    return _json(200, _state(service.report_returned_fulfilment(fulfilment_id, _body(), _caller(), _deps())))


@api.route("/manufacturer/cancellations", methods=["GET"], authorizer=api_key)
@json_route(query=("cursor", "limit"))
def list_cancellations():
    return _page(service.cancellations(_query("cursor"), _query("limit"), _deps()), "cancellations")


@api.route(
    "/manufacturer/cancellations/{fulfilment_id}/acknowledge",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def acknowledge_cancellation(fulfilment_id):
    return _json(200, _state(service.acknowledge(fulfilment_id, _caller(), _deps())))


@api.route("/manufacturer/amendments", methods=["GET"], authorizer=api_key)
@json_route(query=("cursor", "limit"))
def list_amendments():
    return _page(service.amendments(_query("cursor"), _query("limit"), _deps()), "amendments")


@api.route(
    "/manufacturer/amendments/{fulfilment_id}/acknowledge",
    methods=["POST"],
    authorizer=api_key,
    content_types=["application/json"],
)
@json_route()
def acknowledge_amendment(fulfilment_id):
    return _json(200, _state(service.acknowledge_amendment_of(fulfilment_id, _body(), _caller(), _deps())))


@api.route("/manufacturer/openapi.json", methods=["GET"], authorizer=api_key)
@json_route()
def manufacturer_openapi_document():
    return _json(200, _openapi_document("manufacturer"))


@api.route("/finance/openapi.json", methods=["GET"], authorizer=api_key)
@json_route()
def finance_openapi_document():
    return _json(200, _openapi_document("finance"))


def _openapi_document(audience: str) -> dict:
    """schemas/ sits beside chalicelib/ in the repository and in the package (via vendor/)."""
    from pathlib import Path

    document = Path(__file__).resolve().parent.parent / "schemas" / f"{audience}-api.openapi.json"
    return json.loads(document.read_text())


@api.route("/finance/reconciliation", methods=["GET"], authorizer=api_key)
@json_route(query=("from", "to", "format"))
def finance_reconciliation():
    """The reconciliation file for ?from=YYYY-MM-DD&to=YYYY-MM-DD (exclusive) &format=csv|xlsx.
    Larger than a Lambda response may carry: use the CLI or the daily export instead."""
    period = finance.parse_period(_query("from"), _query("to"))
    fmt = _query("format") or "csv"
    buffer = io.BytesIO()
    finance.export_to(buffer, fmt, period, _deps())
    body = buffer.getvalue()
    if len(body) > MAX_FILE_BYTES:
        return _json(413, {"error": "this period's file is too large to send here; use the CLI or the daily export"})
    name = f"reconciliation-{period.start.isoformat()}-to-{period.end.isoformat()}.{fmt}"
    headers = {
        "Content-Type": MEDIA_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    }
    # Chalice sends bytes only for binary media types (registered in app.py); CSV goes as text.
    return Response(body=body.decode("utf-8") if fmt == "csv" else body, status_code=200, headers=headers)


@api.route("/finance/kit-maker-statement", methods=["GET"], authorizer=api_key)
@json_route(query=("from", "to", "format"))
def finance_kit_maker_statement():
    """The kit maker's statement for ?from=&to= (exclusive) &format=json|csv|xlsx (csv by default)."""
    period = finance.parse_period(_query("from"), _query("to"))
    fmt = _query("format") or "csv"
    if fmt == "json":
        return _json(200, _statement_body(period, finance.kit_maker_statement(period, _deps())))
    buffer = io.BytesIO()
    finance.statement_to(buffer, fmt, period, _deps())
    body = buffer.getvalue()
    if len(body) > MAX_FILE_BYTES:
        return _json(413, {"error": "this period's file is too large to send here; use the CLI or the monthly export"})
    name = f"kit-maker-statement-{period.start.isoformat()}-to-{period.end.isoformat()}.{fmt}"
    headers = {
        "Content-Type": MEDIA_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    }
    return Response(body=body.decode("utf-8") if fmt == "csv" else body, status_code=200, headers=headers)


def _statement_body(period, result) -> dict:
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "kits": [
            {
                "fulfilment_id": k.fulfilment_id,
                "kind": k.kind.value,
                "at": to_iso(k.at),
                "unit_price_pence": k.unit_price_pence,
            }
            for k in result.lines
        ],
        "totals": [
            {"kind": kind.value, "kits": result.counts[kind], "amount_pence": result.amounts_pence[kind]}
            for kind in result.counts
        ],
        "total_kits": sum(result.counts.values()),
        "total_pence": result.total_pence,
    }

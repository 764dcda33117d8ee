"""Generated input thrown at every form and every partner JSON route: never a 5xx, never a stack
trace, never a typed value echoed back unescaped."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from markupsafe import escape
from hypothesis import strategies as st

from chalicelib.domain.credentials import Scope
from chalicelib.services.credentials import create_api_key
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(
    [
        "<script>alert(1)</script>",
        "\"'><img src=x>",
        "=cmd|' /C calc'!A0",
        "\x00",
        "FA/1001",
        "SW1A 2AA",
        "TK-00000-00000",
        "x" * 5000,
        "%00",
        "../../etc/passwd",
        "{{7*7}}",
    ]
)
FORMS = {
    "/order/certificate": ("reference", "postcode"),
    "/order/delivery": ("full_name", "address_line_1", "address_line_2", "town", "postcode", "email"),
    "/status": ("reference", "postcode"),
    "/order/confirm": ("confirm",),
}
RISKY = set("<>\"'&")


def assert_safe(response, values) -> None:
    body = response.body.decode("utf-8", errors="replace")
    assert response.status_code < 500, body[:300]
    assert_no_trace_or_raw_echo(body, values)


def assert_no_trace_or_raw_echo(body: str, values) -> None:
    """No stack trace, and no risky value shown unescaped (escaped echoes are fine: "000&" shows as
    "000&amp;", which contains "000&", so those are dropped before looking)."""
    assert "Traceback" not in body and 'File "' not in body
    for value in values:
        if RISKY & set(value) and len(value) > 3:
            assert value not in body.replace(str(escape(value)), ""), value


@FUZZ
@given(st.sampled_from(sorted(FORMS)), st.lists(text, min_size=6, max_size=6))
def test_generated_form_posts_never_break_a_page(client, deps, path, values):
    if not deps.register.find(deps.keys.reference_key("FA1001")).entry:
        load_register(deps, register_row("FA/1001", "SW1A 2AA"))
    browser = Browser(client)
    browser.post("/order/certificate", {"reference": "FA/1001", "postcode": "SW1A 2AA"})
    browser.post("/order/delivery", delivery_form())
    fields = dict(zip(FORMS[path], values, strict=False))
    assert_safe(browser.post(path, fields), fields.values())


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["kit_code", "carrier", "tracking_reference", "dispatched_at", "reason", "x"]),
        text | st.integers() | st.none() | st.lists(st.integers()),
    ),
    st.sampled_from(["accept", "dispatch", "reject", "returned"]),
    text,
)
def test_generated_json_never_breaks_the_manufacturer_api(client, deps, body, action, fulfilment_id):
    token = create_api_key(Scope.MANUFACTURER, "fuzz", deps.api_keys, deps.clock())[1]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    safe_id = "".join(c for c in fulfilment_id if c.isalnum() or c in "-_")[:40] or "F-00000-00000"
    response = client.http.post(
        f"/manufacturer/fulfilment-orders/{safe_id}/{action}", body=json.dumps(body), headers=headers
    )
    assert_safe(response, [str(v) for v in body.values()])
    listed = client.http.get(f"/manufacturer/fulfilment-orders?cursor={safe_id}&limit={len(body)}", headers=headers)
    assert_safe(listed, [])


@FUZZ
@given(st.binary(max_size=2000))
def test_generated_raw_bodies_never_break_a_form(client, deps, raw):
    browser = Browser(client)
    browser.get("/order/certificate")
    response = client.http.post(
        "/order/certificate",
        body=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": browser.cookie or ""},
    )
    assert response.status_code < 500

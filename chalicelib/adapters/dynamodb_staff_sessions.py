"""The console's sessions in DynamoDB, keyed by the hash of the cookie's token (the token itself
is never stored). A session is read and its idle clock restarted in one conditional UpdateItem,
so a timed-out session can never be revived by a request racing its expiry."""

from __future__ import annotations

from datetime import datetime

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from ..domain.staff import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    SIGN_IN_STEP_TIMEOUT,
    Challenge,
    StaffMember,
    StaffSession,
    groups_of,
)
from ..domain.times import from_iso, to_iso
from .dynamodb import model_meta


class StaffSessionFields(Model):
    key = UnicodeAttribute(hash_key=True)
    started_at = UnicodeAttribute()
    last_seen_at = UnicodeAttribute()
    csrf = UnicodeAttribute()
    username = UnicodeAttribute(null=True)
    groups = UnicodeSetAttribute(null=True)
    challenge_name = UnicodeAttribute(null=True)
    challenge_username = UnicodeAttribute(null=True)
    challenge_session = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # DynamoDB's TTL: the record goes some time after it ends


def build_session_model(table_name: str, region: str, host: str | None) -> type[StaffSessionFields]:
    class StaffSessionRecord(StaffSessionFields):
        Meta = model_meta(table_name, region, host)

    return StaffSessionRecord


class DynamoStaffSessions:
    def __init__(self, model: type[StaffSessionFields]):
        self._model = model

    def start(self, session: StaffSession) -> None:
        member, challenge = session.member, session.challenge
        self._model(
            session.key,
            started_at=to_iso(session.started_at),
            last_seen_at=to_iso(session.last_seen_at),
            csrf=session.csrf,
            username=member.username if member else None,
            groups=({g.value for g in member.groups} or None) if member else None,
            challenge_name=challenge.name if challenge else None,
            challenge_username=challenge.username if challenge else None,
            challenge_session=challenge.session if challenge else None,
            expires_at=int((session.started_at + ABSOLUTE_TIMEOUT).timestamp()),
        ).save(condition=self._model.key.does_not_exist())

    def touch(self, key: str, now: datetime) -> StaffSession | None:
        model = self._model
        signed_in = (
            model.challenge_name.does_not_exist()
            & (model.last_seen_at > to_iso(now - IDLE_TIMEOUT))
            & (model.started_at > to_iso(now - ABSOLUTE_TIMEOUT))
        )
        half_done = model.challenge_name.exists() & (model.started_at > to_iso(now - SIGN_IN_STEP_TIMEOUT))
        record = model(key)
        try:
            record.update(actions=[model.last_seen_at.set(to_iso(now))], condition=signed_in | half_done)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None
            raise
        return _session(record)

    def end(self, key: str) -> None:
        self._model(key).delete()


def _session(record: StaffSessionFields) -> StaffSession:
    member = StaffMember(record.username, groups_of(record.groups)) if record.username else None
    challenge = (
        Challenge(record.challenge_name, record.challenge_username or "", record.challenge_session or "")
        if record.challenge_name
        else None
    )
    return StaffSession(
        key=record.key,
        started_at=from_iso(record.started_at),
        last_seen_at=from_iso(record.last_seen_at),
        csrf=record.csrf,
        member=member,
        challenge=challenge,
    )

"""The staff console's rules: the groups staff belong to, which pages each group opens, and how
long a signed-in session lasts. Pure: the sign-in itself is Amazon Cognito's (an adapter), and
the sessions are stored by another."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

IDLE_TIMEOUT = timedelta(minutes=15)
ABSOLUTE_TIMEOUT = timedelta(hours=8)
SIGN_IN_STEP_TIMEOUT = timedelta(minutes=3)  # Cognito's own limit for answering a challenge


class Group(str, Enum):
    """The user pool's groups. No group is a superset of another: an admin manages staff, keys
    and the audit log, and sees support's or finance's pages only as a member of that group too."""

    SUPPORT = "support"
    FINANCE = "finance"
    REGISTER_ADMIN = "register-admin"
    ADMIN = "admin"


class NotPermitted(Exception):
    """A signed-in member of staff asked for another group's page or action."""


@dataclass(frozen=True)
class StaffMember:
    username: str
    groups: frozenset[Group]

    def require(self, group: Group) -> None:
        if group not in self.groups:
            raise NotPermitted(group.value)


def groups_of(names: Iterable[str] | None) -> frozenset[Group]:
    """The known groups among a token's `cognito:groups` (an unknown group grants nothing)."""
    known = {group.value: group for group in Group}
    return frozenset(known[name] for name in names or () if name in known)


def member_from_id_token(id_token: str) -> StaffMember:
    """Who signed in and their groups, from the ID token Cognito returned to our own call over TLS
    (it never passed through a browser, so its claims are Cognito's answer, not a caller's)."""
    payload = id_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # the email address they sign in with names them in the audit log (the pool's username is a uuid)
    who = claims.get("email") or claims["cognito:username"]
    return StaffMember(str(who), groups_of(claims.get("cognito:groups")))


@dataclass(frozen=True)
class SignedIn:
    member: StaffMember


@dataclass(frozen=True)
class Challenge:
    """Cognito asks for more before it signs the user in: a code from their authenticator app
    (SOFTWARE_TOKEN_MFA), a new password (NEW_PASSWORD_REQUIRED) or setting up the app (MFA_SETUP)."""

    name: str
    username: str
    session: str  # Cognito's, opaque; kept server-side, never sent to the browser


@dataclass(frozen=True)
class Refused:
    """Not signed in. `why` is for the audit log (Cognito's error code), never shown."""

    why: str


@dataclass(frozen=True)
class StaffAccount:
    """A user of the pool as the admin's page lists it: named in URLs by `sub` (Cognito's id),
    never by email."""

    sub: str
    username: str  # Cognito's username (an id when the pool signs in by email)
    email: str
    enabled: bool
    status: str  # Cognito's: CONFIRMED, FORCE_CHANGE_PASSWORD, ...
    groups: frozenset[Group]


SignInStep = SignedIn | Challenge | Refused
CHALLENGES = ("SOFTWARE_TOKEN_MFA", "NEW_PASSWORD_REQUIRED", "MFA_SETUP")


@dataclass(frozen=True)
class StaffSession:
    """A signed-in session (key: the hash of the cookie's random token) or a sign-in half done
    (`challenge` set: no member yet, only the step Cognito asked for)."""

    key: str
    started_at: datetime
    last_seen_at: datetime
    csrf: str
    member: StaffMember | None = None
    challenge: Challenge | None = None

    def live_at(self, now: datetime) -> bool:
        if self.challenge is not None:
            return now - self.started_at < SIGN_IN_STEP_TIMEOUT
        return now - self.last_seen_at < IDLE_TIMEOUT and now - self.started_at < ABSOLUTE_TIMEOUT

    def seen_at(self, now: datetime) -> "StaffSession":
        return replace(self, last_seen_at=now)

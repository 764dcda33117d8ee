"""API keys for the manufacturer and finance: scoped, shown once, stored only as a hash.

A key reads `tk_<scope>_<key id>_<secret>`. The secret is 256 random bits, so a SHA-256 of it
is as strong as a slow hash would be; the key id finds the record without a scan.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Scope(str, Enum):
    MANUFACTURER = "manufacturer"
    FINANCE = "finance"

    @property
    def route_prefix(self) -> str:
        return f"/{self.value}/"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: Scope
    secret_hash: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Grant:
    key_id: str
    scope: Scope


_TOKEN = re.compile(r"tk_(manufacturer|finance)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
# Compared against when the key id is unknown, so a miss costs the same work as a hit.
_ABSENT = "0" * 64


def issue_key(scope: Scope, label: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key and its one-time token (the only time the secret exists outside the holder)."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return ApiKey(key_id, scope, _hash(key_id, secret), label, now), f"tk_{scope.value}_{key_id}_{secret}"


def read_token(authorization: str | None) -> tuple[str, str, str] | None:
    """(scope, key id, secret) from `Bearer <token>`; None for anything else."""
    parts = (authorization or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    match = _TOKEN.fullmatch(parts[1])
    if not match:
        return None
    scope, key_id, secret = match.groups()
    return scope, key_id, secret


def grant_for(key: ApiKey | None, scope: str, key_id: str, secret: str) -> Grant | None:
    """A grant only for an active key of the scope the token names, compared in constant time."""
    stored = key.secret_hash if key else _ABSENT
    matches = hmac.compare_digest(stored, _hash(key_id, secret))
    if key is None or not matches or not key.active or key.scope.value != scope:
        return None
    return Grant(key.key_id, key.scope)


def _hash(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()

"""Issuing and revoking the partners' API keys (operator tasks, from the CLI)."""

from __future__ import annotations

from datetime import datetime

from ..domain.credentials import ApiKey, Scope, issue_key
from ..ports import ApiKeys


def create_api_key(scope: Scope, label: str, keys: ApiKeys, now: datetime) -> tuple[ApiKey, str]:
    """A new key; the token is returned once and never stored."""
    key, token = issue_key(scope, label.strip()[:100] or scope.value, now)
    keys.add(key)
    return key, token


def revoke_api_key(key_id: str, keys: ApiKeys, now: datetime) -> ApiKey | None:
    return keys.revoke(key_id, now)

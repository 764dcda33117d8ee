"""API keys in DynamoDB: hashes only, looked up by key id."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from ..domain.credentials import ApiKey, Scope
from ..domain.times import from_iso, to_iso
from .dynamodb import model_meta


class ApiKeyFields(Model):
    """An API key's attributes; build_key_model binds them to a table."""

    key_id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute()
    secret_hash = UnicodeAttribute()
    label = UnicodeAttribute()
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)


def build_key_model(table_name: str, region: str, host: str | None) -> type[ApiKeyFields]:
    class ApiKeyRecord(ApiKeyFields):
        Meta = model_meta(table_name, region, host)

    return ApiKeyRecord


class DynamoApiKeys:
    def __init__(self, model: type[ApiKeyFields]):
        self._model = model

    def find(self, key_id: str) -> ApiKey | None:
        try:
            return _key(self._model.get(key_id))
        except self._model.DoesNotExist:
            return None

    def add(self, key: ApiKey) -> None:
        self._model(
            key.key_id,
            scope=key.scope.value,
            secret_hash=key.secret_hash,
            label=key.label,
            created_at=to_iso(key.created_at),
        ).save(condition=self._model.key_id.does_not_exist())

    def revoke(self, key_id: str, now: datetime) -> ApiKey | None:
        key = self.find(key_id)
        if key is None or not key.active:
            return key
        self._model(key_id).update(actions=[self._model.revoked_at.set(to_iso(now))])
        return replace(key, revoked_at=now)

    def all(self) -> list[ApiKey]:
        return sorted((_key(r) for r in self._model.scan()), key=lambda k: k.created_at)


def _key(record) -> ApiKey:
    return ApiKey(
        record.key_id,
        Scope(record.scope),
        record.secret_hash,
        record.label,
        from_iso(record.created_at),
        from_iso(record.revoked_at) if record.revoked_at else None,
    )

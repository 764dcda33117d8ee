"""Envelope encryption of an order's personal fields: KMS data keys under tracekit's customer-managed
key (PersonalDataKey in infra/resources.json), AES-256-GCM from `cryptography`.

Each field is sealed on its own, with the order's reference and the field's name as the cipher's
associated data, so a value copied to another order or another field does not open. A sealed
value is text: `pd1.<the data key, as KMS wrapped it>.<nonce and ciphertext>`, both base64url.

KMS is asked as little as the budgets need: a writer makes one data key (GenerateDataKey) on its
first seal and uses it for MAX_KEY_AGE or MAX_KEY_USES seals, whichever comes first; a reader
unwraps a data key (Decrypt) once and keeps it, by its wrapped blob, for MAX_KEY_AGE, up to
MAX_OPEN_KEYS keys. A container's own data key opens without asking KMS. The data key's KMS
encryption context names its purpose (the key policy requires it).

A value without the prefix is taken as written before fields were sealed, and read as it is: the
migration path (docs/data-protection.md).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "pd1"
PURPOSE = {"purpose": "tracekit-personal-data"}  # the data keys' KMS encryption context
MAX_KEY_AGE = 15 * 60.0  # seconds a data key seals (and is kept to open) in one container
MAX_KEY_USES = 10_000  # fields one data key seals (far below AES-GCM's 2**32 random nonces)
MAX_OPEN_KEYS = 1_000  # unwrapped data keys a container keeps (32 bytes each)
NONCE_BYTES = 12


class SealedValueUnreadable(Exception):
    """A sealed value that does not open here: altered, or moved from another order or field.
    The message names the order and field, never the value."""


def is_sealed(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX + ".")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(reference: str, field: str) -> bytes:
    """What a sealed value is bound to: its format, its order and its field."""
    return f"{PREFIX}|{reference}|{field}".encode()


class PersonalFields:
    """Seals and opens the personal fields of orders (one instance per container)."""

    def __init__(self, kms_client, key_id: str, monotonic: Callable[[], float] = time.monotonic):
        self._kms = kms_client
        self._key_id = key_id
        self._now = monotonic
        self._lock = threading.Lock()
        self._writing: tuple[bytes, bytes, float] | None = None  # (key, wrapped, made at)
        self._uses = 0
        self._opened: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()  # wrapped -> (key, kept at)

    def seal(self, reference: str, field: str, value: str) -> str:
        key, wrapped = self._data_key()
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, value.encode(), associated_data(reference, field))
        return f"{PREFIX}.{_b64(wrapped)}.{_b64(nonce + ciphertext)}"

    def open(self, reference: str, field: str, value: str) -> str:
        """The clear value of a sealed one; a value written before sealing is returned as it is."""
        if not is_sealed(value):
            return value
        try:
            _, wrapped_text, sealed_text = value.split(".")
            wrapped, sealed = _unb64(wrapped_text), _unb64(sealed_text)
        except ValueError:
            raise SealedValueUnreadable(f"{field} of order {reference} is not a sealed value") from None
        key = self._unwrapped(wrapped)
        try:
            clear = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data(reference, field))
        except InvalidTag:
            raise SealedValueUnreadable(f"{field} of order {reference} does not open for this order") from None
        return clear.decode()

    def _data_key(self) -> tuple[bytes, bytes]:
        with self._lock:
            now = self._now()
            if self._writing is None or now - self._writing[2] >= MAX_KEY_AGE or self._uses >= MAX_KEY_USES:
                made = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=PURPOSE)
                self._writing = (made["Plaintext"], made["CiphertextBlob"], now)
                self._uses = 0
                self._keep(made["CiphertextBlob"], made["Plaintext"], now)
            self._uses += 1
            return self._writing[0], self._writing[1]

    def _unwrapped(self, wrapped: bytes) -> bytes:
        with self._lock:
            now = self._now()
            kept = self._opened.get(wrapped)
            if kept is not None and now - kept[1] < MAX_KEY_AGE:
                self._opened.move_to_end(wrapped)
                return kept[0]
        key = self._kms.decrypt(CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext=PURPOSE)["Plaintext"]
        with self._lock:
            self._keep(wrapped, key, now)
        return key

    def _keep(self, wrapped: bytes, key: bytes, now: float) -> None:
        self._opened[wrapped] = (key, now)
        self._opened.move_to_end(wrapped)
        while len(self._opened) > MAX_OPEN_KEYS:
            self._opened.popitem(last=False)

"""The exports bucket (encrypted, versioned, private): each export written once under its key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from botocore.exceptions import ClientError

from ..ports import ExportedFile


class S3Exports:
    def __init__(self, s3_client, bucket: str):
        self._s3 = s3_client
        self._bucket = bucket

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_once(self, key: str, body: bytes, content_type: str) -> bool:
        """False (and nothing written) if the key is already there: a second run adds no version.
        `IfNoneMatch` makes S3 itself refuse a racing second writer."""
        if self.exists(key):
            return False
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ServerSideEncryption="AES256",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def listing(self, prefix: str = "") -> Iterator[ExportedFile]:
        """Every object under the prefix, in key order, a page of 1,000 keys a request."""
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                modified: datetime = item["LastModified"]
                yield ExportedFile(item["Key"], int(item["Size"]), modified)

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

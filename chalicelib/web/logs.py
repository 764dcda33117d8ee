"""Structured logs: one JSON object per line, each carrying the request's correlation id.

What goes in a message is the caller's responsibility (never personal data: order references,
ids and counts only); this module only shapes lines and threads the correlation id through."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import datetime, timezone

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": correlation_id.get(),
        }
        return json.dumps(line, separators=(",", ":"))


# Libraries that log whole requests at DEBUG (PynamoDB and botocore print every item they write,
# names and addresses included): held at WARNING whatever level the root logger is set to.
CHATTY_LIBRARIES = ("pynamodb", "botocore", "boto3", "urllib3", "stripe", "s3transfer")


def configure(logger_names: tuple[str, ...], propagate: bool = False) -> None:
    """Install the JSON formatter once on the named loggers (idempotent across warm invocations).
    Not propagated, or Lambda's root handler would print every line a second time in its own format;
    tests ask for propagation so pytest's log capture sees the records."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
        logger.propagate = propagate
        logger.setLevel(logging.INFO)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def safe_id(raw: str | None) -> str | None:
    """A caller-supplied request id, only if it looks like one (it goes into every log line)."""
    if raw and len(raw) <= 64 and all(c.isalnum() or c in "-_." for c in raw):
        return raw
    return None

"""Cross-site request forgery: a token in every state-changing form, bound to the browser's
journey cookie (encrypted, HttpOnly, SameSite=Lax), plus the browser's own word on where the
request came from (Sec-Fetch-Site, else Origin)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from .journey import Journey

FIELD = "csrf_token"
_ALLOWED_SITES = {"same-origin", "none"}  # "none": typed in, bookmarked


class CrossSiteRequest(Exception):
    """Refused: the form did not come from tracekit's own page in this browser."""


def token_for(journey: Journey, key: bytes) -> str:
    return hmac.new(key, b"csrf\x00" + journey.csrf.encode(), hashlib.sha256).hexdigest()


def check(form_token: str, journey: Journey, key: bytes, headers, app_base_url: str) -> None:
    check_origin(headers, app_base_url)
    if not journey.csrf or not hmac.compare_digest(form_token or "", token_for(journey, key)):
        raise CrossSiteRequest("missing or wrong form token")


def check_origin(headers, app_base_url: str) -> None:
    """Refused with a fixed text naming the header that did not match, never its value: the
    caller writes the headers, and whatever is in them (personal data too) must not reach a log."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in _ALLOWED_SITES:
        raise CrossSiteRequest("Sec-Fetch-Site is neither same-origin nor none")
    origin = headers.get("origin")
    if origin and origin != "null" and _origin(origin) != _origin(app_base_url):
        raise CrossSiteRequest("Origin does not match")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()

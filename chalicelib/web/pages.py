"""Rendering pages with Jinja2 (autoescaping on) and the headers every page carries."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalice import Response

# templates/ sits beside app.py: in the repository, and in the Lambda package (vendor/templates).
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'none'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def _environment():
    import jinja2  # imported on first render, not at cold start

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(TEMPLATES)),
                # GOV.UK Frontend's components as Jinja macros, maintained with the npm package
                jinja2.PrefixLoader({"govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=jinja2.select_autoescape(["html"]),
        # Jinja's default Undefined: GOV.UK Frontend's macros test optional parameters by reading them.
    )
    env.filters["pounds"] = pounds
    return env


def pounds(pence: int) -> str:
    """Integer pence as money on a page: 895 -> '£8.95', -100 -> '-£1.00'."""
    sign = "-" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100:,}.{abs(pence) % 100:02d}"


def render(template: str, status: int = 200, cookie: str | None = None, **context) -> Response:
    body = _environment().get_template(template).render(**context)
    headers: dict[str, str | list[str]] = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}
    if cookie:
        headers["Set-Cookie"] = cookie
    return Response(body=body, status_code=status, headers=headers)


def redirect(location: str, cookie: str | None = None) -> Response:
    headers: dict[str, str | list[str]] = {"Location": location, **SECURITY_HEADERS}
    if cookie:
        headers["Set-Cookie"] = cookie
    return Response(body="", status_code=303, headers=headers)


def stylesheet() -> Response:
    css = (TEMPLATES / "assets" / "tracekit.css").read_text()
    return Response(
        body=css,
        status_code=200,
        headers={
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )

"""A stand-in for a member of staff's browser over chalice.test.Client and the console's app:
its cookies (the session's and the sign-in form's), and the form token each page gives."""

from __future__ import annotations

import re
from urllib.parse import urlencode

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ACCEPT = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # as Chromium sends
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class StaffBrowser:
    def __init__(self, client):
        self.client = client
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None

    def get(self, path: str):
        return self._remember(self.client.http.get(path, headers=self._headers({})))

    def post(self, path: str, fields: dict[str, str], token: str | None = None, headers: dict | None = None):
        body = urlencode({**fields, "csrf_token": self.csrf if token is None else token})
        return self._remember(
            self.client.http.post(path, headers=self._headers({**FORM, **(headers or {})}), body=body)
        )

    def upload(self, path: str, fields: dict[str, str], file_bytes: bytes | None, name: str = "export.csv"):
        """A multipart/form-data post, as a browser sends a form with a file (none chosen: an empty part)."""
        boundary = "----tracekit-test-boundary-7MA4YWxkTrZu0gW"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
            for key, value in {**fields, "csrf_token": self.csrf or ""}.items()
        ]
        filename = name if file_bytes is not None else ""
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="export"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
            + (file_bytes or b"")
            + b"\r\n"
        )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers = self._headers({"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return self._remember(self.client.http.post(path, headers=headers, body=body))

    def sign_in(self, username: str, password: str):
        self.get("/sign-in")
        return self.post("/sign-in", {"username": username, "password": password})

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        headers = {**ACCEPT, **headers}
        if self.cookies:
            headers = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        return headers

    def _remember(self, response):
        token = TOKEN.search(response.body.decode("utf-8", errors="replace") if response.body else "")
        if token:
            self.csrf = token.group(1)
        set_cookie = response.headers.get("Set-Cookie") or response.headers.get("set-cookie")
        if set_cookie:
            name, _, value = set_cookie.split(";", 1)[0].partition("=")
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

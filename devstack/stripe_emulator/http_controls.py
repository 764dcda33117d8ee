"""Serving /_emulator: the developer dashboard, the event list and the POST controls."""

from __future__ import annotations

import urllib.parse

from devstack.stripe_emulator.controls import CONTROL_ROUTES, ControlAction
from devstack.stripe_emulator.dashboard import dashboard_notice, render_dashboard
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.forms import decoded_params
from devstack.stripe_emulator.http_base import EmulatorHandlerBase
from devstack.stripe_emulator.listing import list_object

_DASHBOARD_PATHS = ("/_emulator", "/_emulator/")


class ControlHandler(EmulatorHandlerBase):
    """The /_emulator pages and controls, for a developer's browser or curl."""

    def _handle_emulator_control(self, method: str, body: bytes) -> None:
        """Serve the dashboard, the event list and the POST controls."""
        if method == "GET" and self._path in _DASHBOARD_PATHS:
            self._show_dashboard(200)
            return
        if method == "GET" and self._path == "/_emulator/events":
            self._send_json(200, list_object(self._emulator.events(), "/_emulator/events"))
            return
        for pattern, action in CONTROL_ROUTES:
            match = pattern.fullmatch(self._path)
            if method == "POST" and match is not None:
                self._run_control(action, urllib.parse.unquote(match.group(1)), body)
                return
        raise ApiError(404, f"Unrecognized request URL ({method}: {self._path}).")

    def _run_control(self, action: ControlAction, object_id: str, body: bytes) -> None:
        """Run a control; answer JSON, or (for the dashboard's forms) redirect back to it."""
        self._refuse_cross_origin()
        query = urllib.parse.urlsplit(self.path).query.encode()
        # Body fields win over the query string, so both curl styles work.
        params = {**decoded_params(query), **decoded_params(body)}
        from_dashboard = params.get("view") == "dashboard"
        try:
            result, done = action(self._emulator, object_id, params)
        except ApiError as error:
            if not from_dashboard:
                raise
            self._show_dashboard(error.status, error.message)
            return
        if from_dashboard:
            # Post/Redirect/Get, so reloading the page does not refund twice.
            location = "/_emulator?" + urllib.parse.urlencode(done)
            self._send_bytes(303, b"", "text/plain", {"Location": location})
        else:
            self._send_json(200, result)

    def _refuse_cross_origin(self) -> None:
        """Refuse control POSTs that a browser sent from another site's page."""
        origin = self.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != self.headers.get("Host"):
            raise ApiError(403, "Cross-origin requests to the emulator controls are refused.")

    def _show_dashboard(self, status: int, error_message: str | None = None) -> None:
        """Render the dashboard, with the notice from a redirect or an error from a failed form."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        page = render_dashboard(
            self._emulator.dashboard_view(),
            webhook_url=self._emulator.webhook_url,
            notice=None if error_message else dashboard_notice(query),
            error_message=error_message,
        )
        self._send_html(status, page)

"""Serving the hosted checkout page and its Pay, Decline and bank transfer form posts."""

from __future__ import annotations

import re
import urllib.parse

from devstack.stripe_emulator.checkout import success_redirect_url
from devstack.stripe_emulator.constants import DECLINE_MESSAGE
from devstack.stripe_emulator.errors import ApiError
from devstack.stripe_emulator.http_base import EmulatorHandlerBase
from devstack.stripe_emulator.pages import render_checkout_page, render_not_found_page

_HOSTED_PAGE_PATTERN = re.compile(r"/c/pay/([^/]+)(?:/(pay|pay_async|decline))?")


class HostedPageHandler(EmulatorHandlerBase):
    """The /c/pay/ pages, as the buyer's browser sees them."""

    def _handle_hosted_page(self, method: str) -> None:
        """Serve the checkout page and its Pay / Decline form posts."""
        match = _HOSTED_PAGE_PATTERN.fullmatch(self._path)
        if match is None:
            self._send_html(404, render_not_found_page())
            return
        session_id, action = urllib.parse.unquote(match.group(1)), match.group(2)
        if method == "GET" and action is None:
            self._show_checkout(session_id, 200)
        elif method == "POST" and action == "pay":
            self._pay_from_page(session_id)
        elif method == "POST" and action == "pay_async":
            self._pay_async_from_page(session_id)
        elif method == "POST" and action == "decline":
            self._decline_from_page(session_id)
        else:
            self._send_html(404, render_not_found_page())

    def _show_checkout(self, session_id: str, status: int, error_message: str | None = None) -> None:
        """Render the page for a session, or the not-found page."""
        try:
            record = self._emulator.checkout_view(session_id)
        except ApiError:
            self._send_html(404, render_not_found_page())
            return
        self._send_html(status, render_checkout_page(record, error_message))

    def _pay_from_page(self, session_id: str) -> None:
        """Pay, let the webhook land, then send the buyer to success_url."""
        try:
            session = self._emulator.complete_payment(session_id)
        except ApiError:
            # Unknown, already paid or expired: the page explains which.
            self._show_checkout(session_id, 409)
            return
        self._send_bytes(303, b"", "text/plain", {"Location": success_redirect_url(session)})

    def _pay_async_from_page(self, session_id: str) -> None:
        """Start a bank transfer, let checkout.session.completed land, then go to success_url."""
        try:
            session = self._emulator.complete_async_payment(session_id)
        except ApiError:
            self._show_checkout(session_id, 409)
            return
        self._send_bytes(303, b"", "text/plain", {"Location": success_redirect_url(session)})

    def _decline_from_page(self, session_id: str) -> None:
        """Keep the buyer on the page with Stripe's decline message, as Checkout does."""
        try:
            self._emulator.decline(session_id)
        except ApiError:
            self._show_checkout(session_id, 409)
            return
        self._show_checkout(session_id, 402, DECLINE_MESSAGE)

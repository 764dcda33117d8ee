"""Running the emulator: the HTTP server and the expiry sweeper, in daemon threads that stop() waits for."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from devstack.stripe_emulator.constants import LOGGER
from devstack.stripe_emulator.server import EmulatorHTTPServer

if TYPE_CHECKING:
    from devstack.stripe_emulator.emulator import StripeEmulator


class ServiceThreads:
    """Serves one emulator on its host and port, and sweeps its overdue sessions every sweep_interval."""

    def __init__(self, emulator: StripeEmulator, stopping: threading.Event, sweep: Callable[[], None]) -> None:
        self._emulator = emulator
        self._stopping = stopping
        self._sweep = sweep
        self._server: EmulatorHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def bound_port(self) -> int | None:
        """The port listened on while running (the real one when started on port 0), else None."""
        return self._server.server_address[1] if self._server else None

    def start(self) -> None:
        """Start serving in daemon threads; the socket is listening on return."""
        if self._server is not None:
            raise RuntimeError("The Stripe emulator is already running.")
        self._stopping.clear()
        # Constructing the server binds and listens, so clients can connect at once.
        self._server = server = EmulatorHTTPServer((self._emulator.host, self._emulator.port), self._emulator)
        # A short poll interval keeps stop() quick; idle cost is negligible.
        self._start_thread(lambda: server.serve_forever(poll_interval=0.05), "stripe-emulator-http")
        self._start_thread(self._sweep_periodically, "stripe-emulator-sweeper")
        base_url = self._emulator.base_url
        LOGGER.info("Stripe emulator listening on %s (dashboard: %s/_emulator)", base_url, base_url)

    def stop(self) -> None:
        """Stop serving, abandon pending webhook retries and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        LOGGER.info("Stripe emulator stopped")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        """Run target in a daemon thread that stop() waits for."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sweep_periodically(self) -> None:
        """Expire overdue sessions even when nobody is looking at them."""
        while not self._stopping.wait(self._emulator.sweep_interval):
            try:
                self._sweep()
            except Exception:  # the sweeper must survive a bad pass and try again
                LOGGER.exception("Sweeping expired checkout sessions failed")

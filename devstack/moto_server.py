"""moto's HTTP server, handling one request at a time, for the local stack and the tests.

moto 5.2.5's own `ThreadedMotoServer` dispatches requests concurrently, and moto's backends are not
thread-safe: under concurrent requests `TransactWriteItems` (which deep-copies whole tables) raised
`RuntimeError: dictionary changed size during iteration`, answered as 500s that botocore retried,
and two conflicting conditional writes sometimes both succeeded. DynamoDB checks a condition and
writes its item atomically; moto does so only if nothing else runs meanwhile. So this server keeps
accepting connections on many threads (clients queue rather than time out) but runs moto's WSGI
application, body included, under one lock: a race against it is decided by tracekit's
conditions, never by moto's luck.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Iterable

HOST = "127.0.0.1"


class OneRequestAtATime:
    """WSGI middleware: the wrapped application runs for one request at a time, from the call to
    the last byte of its body (a lazily built body is still moto's code reading its backends).

    `most_at_once` is measured inside the lock, by a counter of its own, so a test can check that
    moto never saw two requests at once."""

    def __init__(self, application: Callable):
        self._application = application
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._in_dispatch = 0
        self.most_at_once = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        # This request's thread runs only moto's code, which no test measures: a tracer that
        # `make test`'s coverage installed in every new thread is switched off here, so moto's
        # every call does not pass through it.
        sys.settrace(None)
        with self._lock:
            self._enter()
            try:
                result = self._application(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            finally:
                self._leave()
        return [body]

    def _enter(self) -> None:
        with self._count_lock:
            self._in_dispatch += 1
            self.most_at_once = max(self.most_at_once, self._in_dispatch)

    def _leave(self) -> None:
        with self._count_lock:
            self._in_dispatch -= 1


class SerialMotoServer:
    """moto's server application behind `OneRequestAtATime`, on a threaded werkzeug server bound to
    loopback. Port 0 takes a free port; `url` says which."""

    def __init__(self, port: int = 0):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            """No access line per request (about 300 at the stack's start-up would bury its own
            output); a request moto failed (5xx) is still logged, as are werkzeug's errors."""

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                if str(code).startswith("5"):
                    super().log_request(code, size)

        self.dispatch = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(HOST, port, self.dispatch, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_moto_server(port: int = 0) -> tuple[SerialMotoServer, str]:
    """A started server on 127.0.0.1 and its URL."""
    server = SerialMotoServer(port)
    return server, server.start()

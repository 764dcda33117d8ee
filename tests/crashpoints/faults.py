"""Every external call a journey makes, recorded in order, and one fault planted at one of them.

AWS calls are seen through botocore's own events (`before-call`, `after-call`) on every client
made while the recorder is installed, PynamoDB's included; Stripe calls through the SDK's HTTP
client. A planted fault does one of three things to the k-th call:
- fail: it fails as its service fails (a 5xx error, as the SDK raises it once its own retries are
  spent), and nothing happened at the service;
- die: it comes back and the process ends: a `ProcessDied`, derived from BaseException so that no
  `except Exception` in tracekit can swallow it and nothing after the call runs;
- lost: it took effect at the service but its answer never came: the caller sees a timeout (the
  SDK's read timeout, or Stripe's connection error) and carries on.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import dataclass, field

import botocore.session
import stripe
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from requests.structures import CaseInsensitiveDict

FAIL, DIE, LOST = "fail", "die", "lost"
MODES = (FAIL, DIE, LOST)
_STRIPE_ID = re.compile(r"/(cs|pi|ch|re|evt|txn|po|dp|py)_[A-Za-z0-9_]+")


class ProcessDied(BaseException):
    """The Lambda's process ends straight after a call that succeeded."""


@dataclass(frozen=True)
class Call:
    """One external call: the journey's step, the line of tracekit that made it, the operation."""

    step: str
    site: str
    operation: str

    @property
    def where(self) -> str:
        """The call site, whichever journey reaches it: what the sample covers once."""
        return f"{self.site} -> {self.operation}"

    def __str__(self) -> str:
        return f"{self.step}: {self.where}"


@dataclass(frozen=True)
class Point:
    index: int
    mode: str


@dataclass
class Faults:
    """The recorder: `calls` are the labels of the external calls made while armed, in order."""

    calls: list[Call] = field(default_factory=list)
    plan: Point | None = None
    armed: bool = False
    fired: str | None = None  # the label of the call where the planted fault went off

    @contextlib.contextmanager
    def arm(self, step: str):
        self.armed, self._step = True, step
        try:
            yield
        finally:
            self.armed = False

    @contextlib.contextmanager
    def quiet(self):
        """The harness's own reads: neither recorded nor faulted."""
        was, self.armed = self.armed, False
        try:
            yield
        finally:
            self.armed = was

    def before(self, label: str) -> tuple[int | None, bool]:
        """(this call's index, whether it must fail); no index when not armed."""
        if not self.armed:
            return None, False
        index = len(self.calls)
        self.calls.append(Call(self._step, _tracekit_site(), label))
        failing = self.plan == Point(index, FAIL)
        if failing:
            self.fired = str(self.calls[-1])
        return index, failing

    def after(self, index: int | None, lost_answer: Exception) -> None:
        if index is not None and self.plan in (Point(index, DIE), Point(index, LOST)):
            self.fired = str(self.calls[index])
            if self.plan.mode == DIE:
                raise ProcessDied(self.fired)
            raise lost_answer


def install(faults: Faults, monkeypatch) -> None:
    """From now on every botocore client and the Stripe SDK report to `faults`."""
    original_create_client = botocore.session.Session.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = original_create_client(self, service_name, *args, **kwargs)
        client.meta.events.register("before-call", _before_aws(faults, service_name))
        client.meta.events.register("after-call", _after_aws(faults))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    original_request = stripe.HTTPClient.request_with_retries

    def request_with_retries(self, method, url, headers, post_data=None, *args, **kwargs):
        index, failing = faults.before(
            f"stripe.{method.upper()} {_STRIPE_ID.sub('/{id}', url.split('?')[0].split('/v1', 1)[-1])}"
        )
        if failing:
            body = {"error": {"type": "api_error", "message": "An error occurred (injected by the sweep)."}}
            return json.dumps(body), 500, CaseInsensitiveDict({"Content-Type": "application/json"})
        answer = original_request(self, method, url, headers, post_data, *args, **kwargs)
        faults.after(index, stripe.APIConnectionError("Request timed out (injected by the sweep)"))
        return answer

    monkeypatch.setattr(stripe.HTTPClient, "request_with_retries", request_with_retries)


def _tracekit_site() -> str:
    """The innermost frame of tracekit's own code (app.py or chalicelib) on the stack."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if "/chalicelib/" in path or path.endswith("/app.py"):
            module = path.rsplit("/chalicelib/", 1)[-1] if "/chalicelib/" in path else "app.py"
            return f"{module}:{frame.f_lineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "(outside tracekit)"


def _stripe_label(method: str, url: str) -> str:
    path = url.split("?", 1)[0].split("/v1", 1)[-1]
    return f"stripe.{method.upper()} {_STRIPE_ID.sub('/{id}', path)}"


def _before_aws(faults: Faults, service_name: str):
    def before_call(model, context, **_):
        index, failing = faults.before(f"{service_name}.{model.name}")
        context["sweep_index"] = None if failing else index
        if failing:  # what botocore raises once a 5xx outlasts its retries
            error = {"Code": "ServiceUnavailable", "Message": "Service unavailable (injected by the sweep)"}
            return AWSResponse("", 503, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 503}}
        return None

    return before_call


def _after_aws(faults: Faults):
    def after_call(context, **_):  # an answer came back (an error answer too): it may be lost now
        faults.after(context.get("sweep_index"), ReadTimeoutError(endpoint_url="(injected by the sweep)"))

    return after_call

"""`chalice local`, plus the one thing API Gateway does for tracekit that `chalice local` cannot:
the gateway responses declared in infra/resources.json. In AWS an unknown path is answered by
API Gateway itself (MISSING_AUTHENTICATION_TOKEN), never reaching the Lambda; tracekit turns
that into a 404 page. Here the same resource's status, headers and body answer instead of
chalice local's `403 {"message": "Missing Authentication Token"}`.

    python -m devstack.local_api --host 127.0.0.1 --port 8000 --stage local

The responses are in infra/resources.json, merged into the swagger of Chalice's REST API
(x-amazon-apigateway-gateway-responses). `python -m devstack.local_api --write-template` rewrites
them from templates/not_found.html and the app's security headers; a test fails when they differ.

A body is a mapping template in AWS. tracekit's bodies must be inert text, the same whether API
Gateway substitutes variables in it or runs it through Velocity: no `$` and no `#` that starts a
directive or comment. Anything else is refused here rather than guessed at.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from devstack.aws import gateway_responses_declared

ROOT = Path(__file__).resolve().parent.parent
HEADER_PREFIX = "gatewayresponse.header."
# Velocity's directives, and what follows `#` to start a comment, an unparsed block or ${...}.
VELOCITY_DIRECTIVES = ("set", "if", "else", "elseif", "end", "foreach", "include", "parse", "macro", "stop")
VELOCITY_DIRECTIVES += ("break", "evaluate", "define")
VELOCITY_AFTER_HASH = re.compile(r"#(?:[#*\[{]|(?:" + "|".join(VELOCITY_DIRECTIVES) + r")\b)")
# What chalice local raises where API Gateway finds no resource or method for a request.
NO_ROUTE_BODY = b'{"message": "Missing Authentication Token"}'


class UnsupportedTemplate(ValueError):
    """A gateway response this stand-in cannot reproduce faithfully."""


def gateway_responses(declared: dict | None = None) -> dict[str, tuple[int, dict[str, str], bytes]]:
    """ResponseType -> (status, headers, body) for every gateway response the template declares."""
    answers = {}
    for response_type, response in (gateway_responses_declared() if declared is None else declared).items():
        headers = {}
        for name, value in response.get("responseParameters", {}).items():
            if not (name.startswith(HEADER_PREFIX) and len(value) >= 2 and value[0] == value[-1] == "'"):
                raise UnsupportedTemplate(f"{response_type}: only static headers ('value') are reproduced: {name}")
            headers[name.removeprefix(HEADER_PREFIX)] = value[1:-1]
        body = response.get("responseTemplates", {}).get("application/json", "")
        if not inert_under_velocity(body):
            raise UnsupportedTemplate(f"{response_type}: a body must be inert text: no $ and no # directive")
        answers[response_type] = (int(response["statusCode"]), headers, body.encode())
    return answers


def inert_under_velocity(text: str) -> bool:
    """True when a mapping template is its own output: nothing Velocity or API Gateway expands."""
    return "$" not in text and VELOCITY_AFTER_HASH.search(text) is None


def not_found_response() -> dict:
    """The gateway response for paths API Gateway has no route for: the app's 404 page, with the
    headers every page carries."""
    from chalicelib.web.pages import render

    page = render("not_found.html", status=404)
    return {
        "statusCode": str(page.status_code),
        "responseParameters": {HEADER_PREFIX + name: f"'{value}'" for name, value in page.headers.items()},
        # API Gateway sends the application/json template whatever the client accepts; the
        # Content-Type header above says what it really is.
        "responseTemplates": {"application/json": page.body},
    }


def write_template() -> None:
    from devstack.aws import CHALICE_API, RESOURCES_FILE, load_template

    template = load_template()
    body = {"x-amazon-apigateway-gateway-responses": {"MISSING_AUTHENTICATION_TOKEN": not_found_response()}}
    # only the swagger: the rest of the entry (tracing, access log, WAF's stage) is the cloud baseline's
    template["Resources"].setdefault(CHALICE_API, {}).setdefault("Properties", {})["DefinitionBody"] = body
    RESOURCES_FILE.write_text(json.dumps(template, indent=2) + "\n")
    print(f"wrote the gateway responses of {CHALICE_API} to {RESOURCES_FILE}")


def handler_class(answers: dict[str, tuple[int, dict[str, str], bytes]]):
    from chalice.local import ChaliceRequestHandler, ForbiddenError

    class GatewayResponsesHandler(ChaliceRequestHandler):
        def _send_error_response(self, error) -> None:
            missing = answers.get("MISSING_AUTHENTICATION_TOKEN")
            if missing and isinstance(error, ForbiddenError) and error.body == NO_ROUTE_BODY:
                status, headers, body = missing
                self._send_http_response(status, {**error.headers, **headers}, body)
                return
            super()._send_error_response(error)

    return GatewayResponsesHandler


def serve(host: str, port: int, stage: str, console: bool = False) -> None:
    import functools

    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    os.environ["AWS_CHALICE_CLI_MODE"] = "true"  # as the chalice CLI sets it
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # as chalice local does
    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app_object = config.chalice_app
    if console:  # the staff console's own Chalice app, which AWS serves behind its own API
        from chalicelib.web.console import console as app_object
    validate_routes(app_object.routes)
    server = factory.create_local_server(app_object, config, host, port)
    server.server.RequestHandlerClass = functools.partial(
        handler_class(gateway_responses()), app_object=server.app_object, config=config
    )
    server.serve_forever()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--console", action="store_true", help="serve the staff console instead of the holder's app")
    parser.add_argument(
        "--write-template", action="store_true", help="rewrite the gateway responses in infra/resources.json and exit"
    )
    arguments = parser.parse_args(argv)
    if arguments.write_template:
        write_template()
        return
    serve(arguments.host, arguments.port, arguments.stage, console=arguments.console)


if __name__ == "__main__":
    main()

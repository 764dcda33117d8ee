"""The staff console's API in the CloudFormation template (infra/resources.json, `ConsoleApi`).

Chalice deploys one REST API per app, for the holder's app. The console is a second Chalice app
(chalicelib.web.console) run by its own function (app.py's `console`), so its API is declared in
the merge template: Chalice's own swagger generator is run over the console's routes, each route
integrated with the console function (so Chalice dispatches the event exactly as in its own API),
with the same 404 gateway response as the holder's API.

    python -m devstack.console_api --write-template

rewrites the definition; a test (tests/integration/test_gateway_responses.py) fails when the
committed one differs from what the console's routes make.
"""

from __future__ import annotations

import json

from devstack.aws import RESOURCES_FILE, load_template

CONSOLE_API = "ConsoleApi"
CONSOLE_FUNCTION = "Console"  # the logical id Chalice gives app.py's `console` function


def console_definition() -> dict:
    from chalice.deploy.swagger import CFNSwaggerGenerator

    from chalicelib.web.console import console
    from devstack.local_api import not_found_response

    class ConsoleSwagger(CFNSwaggerGenerator):
        def _uri(self, lambda_arn=None):
            return {
                "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31"
                f"/functions/${{{CONSOLE_FUNCTION}.Arn}}/invocations"
            }

    definition = ConsoleSwagger().generate_swagger(console)
    definition["x-amazon-apigateway-gateway-responses"] = {"MISSING_AUTHENTICATION_TOKEN": not_found_response()}
    return definition


def declared_definition() -> dict:
    return load_template()["Resources"][CONSOLE_API]["Properties"]["DefinitionBody"]


def write_template() -> None:
    template = load_template()
    template["Resources"][CONSOLE_API]["Properties"]["DefinitionBody"] = console_definition()
    RESOURCES_FILE.write_text(json.dumps(template, indent=2) + "\n")
    print(f"wrote the console's API definition to {RESOURCES_FILE}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-template"]:
        raise SystemExit("usage: python -m devstack.console_api --write-template")
    write_template()

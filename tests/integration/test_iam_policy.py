"""Each function's hand-written IAM policy (.chalice/policy-prod-*.json) covers every AWS call that
function really makes, and nothing is granted wider than a named resource allows.

The calls are not listed by hand: every function is run here against moto, as Lambda would run it
(the web routes and webhook through Chalice's test client, the authorizer as the gateway calls it,
each scheduled handler invoked), with every botocore call recorded with its parameters. Each call
becomes the IAM actions and resource ARNs AWS authorises it by (a transaction item by item, a query
on its index), and the function's policy, its CloudFormation references resolved to the moto
resources, must allow each one."""

from __future__ import annotations

import fnmatch
import re
import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from chalicelib import bootstrap, services
from chalicelib.adapters.kms_fields import PURPOSE
from chalicelib.domain.credentials import Scope
from chalicelib.domain.delivery import parse_delivery_details
from chalicelib.domain.errors import MailUnavailable
from chalicelib.domain.references import new_order_reference
from chalicelib.secrets import SECRET_VARIABLES, resolve
from chalicelib.services.credentials import create_api_key
from devstack.aws import environment_names, load_resources, resolve_intrinsics
from tests.builders import delivery_form, load_register, register_row
from tests.journeys.browser import Browser
from tests.journeys.test_finance import finance_get
from tests.journeys.test_manufacturer import BrokenQueue, call
from tests.journeys.test_payment_events import checkout, paid_order

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
ACCOUNT, PARTITION = "123456789012", "aws"  # moto's account
# Chalice's function name -> the logical id its role and function get in the packaged template
FUNCTIONS = {
    "api_handler": "APIHandler",
    "api_key": "ApiKey",
    "sweep_lapsed_holds": "SweepLapsedHolds",
    "relay_unsent_fulfilments": "RelayUnsentFulfilments",
    "report_fulfilment_health": "ReportFulfilmentHealth",
    "export_daily_reconciliation": "ExportDailyReconciliation",
    "sweep_expired_attempts": "SweepExpiredAttempts",
    "purge_personal_data": "PurgePersonalData",
    "console": "Console",
}
TRANSACTION_ACTIONS = {
    "Get": "GetItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def policy(stage: str, function: str) -> dict:
    name = CONFIG["stages"][stage]["lambda_functions"][function]["iam_policy_file"]
    return json.loads((ROOT / ".chalice" / name).read_text())


# --- what a recorded call needs, in IAM's terms ------------------------------------------------


# The user pool's sign-in calls the console makes: public, unauthenticated operations (authorised
# by the pool client and the user's own credentials or tokens), which no IAM policy can grant.
COGNITO_PUBLIC = {"InitiateAuth", "RespondToAuthChallenge", "AssociateSoftwareToken", "VerifySoftwareToken"}


def authorisations(service: str, operation: str, params: dict, region: str) -> list[tuple[str, str]]:
    """(action, resource ARN) pairs IAM checks for one API call."""
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/"
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [
                (f"dynamodb:{TRANSACTION_ACTIONS[kind]}", table + body["TableName"])
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table + name) for name in params["RequestItems"]]
        resource = table + params["TableName"]
        if params.get("IndexName"):
            resource += "/index/" + params["IndexName"]
        return [(f"dynamodb:{operation}", resource)]
    if service == "sqs":
        name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        return [(f"sqs:{operation}", f"arn:aws:sqs:{region}:{ACCOUNT}:{name}")]
    if service == "s3":
        action = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket"}.get(operation, operation)
        key = f"/{params['Key']}" if "Key" in params else ""
        needed = [(f"s3:{action}", f"arn:aws:s3:::{params['Bucket']}{key}")]
        if operation == "HeadObject":  # without ListBucket, S3 answers a missing key 403, not the 404 we test for
            needed.append(("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}"))
        return needed
    if service == "ses" and operation == "SendEmail":  # authorised on the sending identity
        return [("ses:SendEmail", f"arn:aws:ses:{region}:{ACCOUNT}:identity/{params['Source']}")]
    if service == "kms":  # authorised on the key itself (the data key's context is checked below)
        return [(f"kms:{operation}", f"arn:aws:kms:{region}:{ACCOUNT}:key/{params['KeyId']}")]
    if service == "ssm" and operation == "GetParameters":
        return [
            ("ssm:GetParameters", f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{n.lstrip('/')}") for n in params["Names"]
        ]
    if service == "cognito-idp" and operation in COGNITO_PUBLIC:
        return []
    if service == "cognito-idp":  # the admin's calls, authorised on the user pool
        return [(f"cognito-idp:{operation}", f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{params['UserPoolId']}")]
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one, and the policy grant")


# The tables and queues are encrypted at rest with the customer-managed DataAtRestKey (not created
# on moto: devstack.aws.AWS_ONLY). In AWS the caller's own credentials must let DynamoDB decrypt the
# table's key, and SQS encrypt (generate a data key) and decrypt a message's.
DATA_AT_REST_KEY = "DataAtRestKey"


def encryption_needs(service: str, operation: str, key_arn: str) -> list[tuple[str, str]]:
    """The KMS actions, on the data key, that DynamoDB or SQS uses with the caller's permissions."""
    if service == "dynamodb":
        return [("kms:Decrypt", key_arn)]
    if service == "sqs" and operation == "SendMessage":
        return [("kms:GenerateDataKey", key_arn), ("kms:Decrypt", key_arn)]
    if service == "sqs" and operation == "ReceiveMessage":
        return [("kms:Decrypt", key_arn)]
    return []


# Statements for what Lambda itself does with the function's role, which no recorded call shows:
# its runtime writes the logs and the X-Ray traces, and sends a failed asynchronous (scheduled) run
# to the failure queue, encrypted with the data key.
LAMBDA_RUNTIME = {"WriteOwnLogs", "LambdaSendsTraces", "LambdaSendsFailedRuns", "LambdaSealsFailedRuns"}


# --- the policy, its CloudFormation references resolved to the moto resources -------------------


def physical(environment: dict[str, str]) -> dict[str, dict[str, str]]:
    """Logical id -> {'Ref': name or URL, 'Arn': ARN, ...} of the resources the tests made on moto."""
    region = environment["AWS_REGION"]
    resolved = {}
    for logical_id, variable in environment_names().items():
        if variable not in environment:
            continue
        value = environment[variable]
        kind = load_resources()[logical_id]["Type"]
        if kind == "AWS::DynamoDB::Table":
            arns = {"Arn": f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{value}"}
        elif kind == "AWS::SQS::Queue":
            name = value.rsplit("/", 1)[-1]
            arns = {"Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{name}", "QueueName": name}
        elif kind == "AWS::SES::EmailIdentity":
            arns = {}
        elif kind == "AWS::S3::Bucket":
            arns = {"Arn": f"arn:aws:s3:::{value}"}
        elif kind == "AWS::Cognito::UserPool":
            arns = {"Arn": f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{value}"}
        elif kind == "AWS::KMS::Key":
            arns = {"Arn": f"arn:aws:kms:{region}:{ACCOUNT}:key/{value}"}
        else:
            arns = {"Arn": value}
        resolved[logical_id] = {"Ref": value, **arns}
    resolved[DATA_AT_REST_KEY] = {"Arn": data_key_arn(region)}
    resolved["ScheduledFailuresQueue"] = {"Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:scheduled-failures-queue"}
    return resolved


def data_key_arn(region: str) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/data-at-rest"


def allows(document: dict, action: str, resource: str) -> bool:
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if (
            statement["Effect"] == "Allow"
            and any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)
            and any(fnmatch.fnmatchcase(resource, r) for r in resources)
        ):
            return True
    return False


# --- running every function --------------------------------------------------------------------


def scheduled(client, name: str):
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    return client.lambda_.invoke(name, event)


@pytest.fixture
def made(client, deps, aws_requests, stripe_emulator, settings, environment, monkeypatch):
    """Runs every function's work, recording each AWS call under the function making it."""
    import chalicelib.api as partner_api

    authorize = partner_api.service.authorize

    def authorizer(*args, **kwargs):  # the gateway calls the authorizer function, not the API's
        with aws_requests.as_function("api_key"):
            return authorize(*args, **kwargs)

    monkeypatch.setattr(partner_api.service, "authorize", authorizer)
    load_register(
        deps,
        register_row("FA/1001", "SW1A 2AA"),
        register_row("FA/1002", "SW1A 2AA"),
        register_row("FA/2001", "E1 6AN", free_kit="yes"),
        register_row("FA/2002", "E1 6AN", free_kit="yes"),
        register_row("FA/4001", "SW1A 2AA"),  # revoked by the console's import: its contact goes
    )

    def another_container():  # a function's next request or run, in a container of its own (its own keys)
        bootstrap.use(bootstrap.build(settings, deps.clock))

    manufacturer = create_api_key(Scope.MANUFACTURER, "Kit Maker", deps.api_keys, deps.clock())[1]
    finance = create_api_key(Scope.FINANCE, "Finance", deps.api_keys, deps.clock())[1]
    start = deps.clock()

    with aws_requests.as_function("api_handler"):
        _, paid = paid_order(client, deps, stripe_emulator, "FA/1001")
        Browser(client).post("/order/certificate", {"reference": "FA/9999", "postcode": "SW1A 2AA"})  # refused
        free = Browser(client)
        free.post("/order/certificate", {"reference": "FA/2001", "postcode": "E1 6AN"})
        free.post("/order/delivery", delivery_form(postcode="E1 6AN"))
        free.post("/order/confirm", {"confirm": "yes"})
        another_container()  # the kit maker's list opens data keys other containers made
        status, listed = call(client, manufacturer, "GET", "/fulfilment-orders")
        ids = [item["fulfilment_id"] for item in listed["fulfilment_orders"]]
        for fulfilment_id in ids:
            call(client, manufacturer, "POST", f"/fulfilment-orders/{fulfilment_id}/accept")
            dispatched_at = deps.clock().isoformat().replace("+00:00", "Z")
            dispatch = {"kit_code": "SW-1", "carrier": "Royal Mail", "tracking_reference": "RM1GB"}
            status, _ = call(
                client,
                manufacturer,
                "POST",
                f"/fulfilment-orders/{fulfilment_id}/dispatch",
                dispatch | {"dispatched_at": dispatched_at},
            )
            assert status == 200
        assert call(client, manufacturer, "GET", "/cancellations")[0] == 200
        day = start.date()
        assert (
            finance_get(client, finance, f"/finance/reconciliation?from={day}&to={day + timedelta(days=1)}").status_code
            == 200
        )
        contact_work(client, deps)
    assert ids, "the scenario released orders to the manufacturer"
    people = console_work(client, deps, settings, paid.reference, aws_requests)

    checkout(client, "FA/1002")  # left unpaid: its hold will lapse
    deps.fulfilment_queue = BrokenQueue(deps.fulfilment_queue)  # the next release fails: the relay's work
    checked = services.check_certificate("FA/2002", "E1 6AN", deps)
    services.confirm_order(
        checked, parse_delivery_details(delivery_form(postcode="E1 6AN")), new_order_reference(), deps
    )
    later = start + timedelta(minutes=76)
    deps.clock.set(later)
    for name in ("sweep_lapsed_holds", "relay_unsent_fulfilments"):
        another_container()
        with aws_requests.as_function(name):
            scheduled(client, name)
    for days, name in (
        (1, "export_daily_reconciliation"),
        (10, "report_fulfilment_health"),
        (3, "sweep_expired_attempts"),
        (60, "purge_personal_data"),
    ):
        moment = start + timedelta(days=days, hours=-5)
        deps.clock.set(moment)
        another_container()
        with aws_requests.as_function(name):
            scheduled(client, name)
    console_exports(deps, settings, people, aws_requests)

    # Every function's first invocation reads its secrets from SSM (the tests set them plainly).
    ssm = boto3.client("ssm", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    paths = {name: f"/tracekit/{settings.stage}/{name.lower().replace('_', '-')}" for name in SECRET_VARIABLES}
    for path in paths.values():
        ssm.put_parameter(Name=path, Value="x" * 40, Type="SecureString", Overwrite=True)
    for function in FUNCTIONS:
        with aws_requests.as_function(function):
            resolve({name: f"ssm:{path}" for name, path in paths.items()}, lambda: ssm)
    return aws_requests.made


class SesDown:
    def send(self, *_args):
        raise MailUnavailable("down")


def contact_work(client, deps) -> None:
    """A holder registers, confirms and withdraws by the withdraw page's link; one registers and
    stays (the console's import removes it); another replaces the address while SES is down, so
    the old address's notice is the relay's to send."""
    from tests.journeys.test_contacts import follow, link, register

    register(client, "one@example.com", "FA/1001")
    follow(client, link(deps, "one@example.com", "/contact/confirm"))
    Browser(client).post("/contact/withdraw", {"email": "one@example.com"})
    follow(client, link(deps, "one@example.com", "/contact/withdraw/confirm"))
    register(client, "leaving@example.com", "FA/4001")
    follow(client, link(deps, "leaving@example.com", "/contact/confirm"))
    register(client, "old@example.com", "FA/1002")
    follow(client, link(deps, "old@example.com", "/contact/confirm"))
    register(client, "new@example.com", "FA/1002")
    current = bootstrap.dependencies()
    mailer, current.mailer = current.mailer, SesDown()
    try:
        follow(client, link(deps, "new@example.com", "/contact/confirm"))
    finally:
        current.mailer = mailer


def console_work(client, deps, settings, reference: str, aws_requests) -> None:
    """Support, finance and an admin at work in the console: sign-in, the order and its delivery
    details and a search by surname and postcode, a part refund, a resent email, approving a
    replacement the holder asked for 10 days after dispatch and then changing its address (an
    amendment to the kit maker), the work list, the reconciliation, the statement and their
    downloads, the dashboard, a key made and revoked, the audit log and its download, a refused page, sign-out.
    The demo staff are made first, as an administrator would (not the console)."""
    from chalice.test import Client

    from chalicelib.web.console import console
    from devstack.staff import create_demo_staff
    from tests.journeys.console_browser import StaffBrowser
    from tests.journeys.test_after_the_order import status_page
    from tests.journeys.test_replacements import report

    back_to = deps.clock()
    deps.clock.set(back_to + timedelta(days=10))
    with aws_requests.as_function("api_handler"):
        holder, _ = status_page(client, reference)
        assert report(holder, reference, "FA/1001").status_code == 200
    bootstrap.use(bootstrap.build(settings, deps.clock))  # the console's own container: no data key cached

    made = create_demo_staff(settings.aws_endpoint_url, settings.region, settings.staff.user_pool_id, mfa=False)
    people = {person.group: person for person in made}
    day = deps.clock().date()
    with aws_requests.as_function("console"), Client(console, stage_name="test") as console_client:
        support = StaffBrowser(console_client)
        assert support.sign_in(people["support"].username, people["support"].password).status_code == 303
        assert support.get(f"/support/orders/{reference}").status_code == 200
        search = {"surname": "Example", "postcode": "SW1A 2AA", "reason": "holder has no reference"}
        assert reference.encode() in support.post("/support/orders/by-recipient", search).body
        shown = support.post(f"/support/orders/{reference}/delivery", {"purpose": "holder phoned"})
        assert shown.status_code == 200
        refunded = support.post(f"/support/orders/{reference}/refund", {"amount": "1.00", "reason": "damaged"})
        assert refunded.status_code == 303, refunded.body[:300]
        resent = support.post(f"/support/orders/{reference}/actions/resend-dispatch", {"reason": "not received"})
        assert resent.status_code == 303, resent.body[:300]
        assert support.get("/support/work-list").status_code == 200
        approved = support.post(f"/support/orders/{reference}/actions/approve-replacement", {"reason": "lost"})
        assert approved.status_code == 303, approved.body[:300]
        assert support.get(f"/support/orders/{reference}/address").status_code == 200
        moved = {"full_name": "Sam New", "address_line_1": "2 New Road", "town": "Leeds", "postcode": "LS1 4AP"}
        changed = support.post(f"/support/orders/{reference}/address", {**moved, "reason": "holder moved"})
        assert changed.status_code == 303, changed.body[:300]
        assert support.get("/finance/reconciliation").status_code == 403
        assert support.post("/sign-out", {}).status_code == 303
        finance = StaffBrowser(console_client)
        assert finance.sign_in(people["finance"].username, people["finance"].password).status_code == 303
        period = f"from={day}&to={day + timedelta(days=1)}"
        assert finance.get(f"/finance/reconciliation?{period}").status_code == 200
        assert finance.get(f"/finance/reconciliation/download?{period}&format=xlsx").status_code == 200
        assert finance.get(f"/finance/statement?{period}").status_code == 200
        assert finance.get(f"/finance/statement/download?{period}&format=xlsx").status_code == 200
        assert finance.get(f"/dashboard?{period}").status_code == 200
        admin = StaffBrowser(console_client)
        assert admin.sign_in(people["admin"].username, people["admin"].password).status_code == 303
        assert admin.get("/admin/keys").status_code == 200
        assert admin.post("/admin/keys", {"scope": "finance", "label": "Finance team"}).status_code == 200
        key_id = re.findall(r"/admin/keys/([0-9a-f]{16})/revoke", admin.get("/admin/keys").body.decode())[0]
        assert admin.get(f"/admin/keys/{key_id}/revoke").status_code == 200
        assert admin.post(f"/admin/keys/{key_id}/revoke", {"reason": "rotated"}).status_code == 303
        assert admin.get(f"/admin/audit?order={reference}").status_code == 200
        assert admin.get("/admin/audit/download").status_code == 200
        listed = admin.get("/admin/staff").body.decode()
        sub = re.findall(r'href="/admin/staff/([^"]+)">support@', listed)[0]
        assert admin.get(f"/admin/staff/{sub}").status_code == 200
        moved = admin.post(f"/admin/staff/{sub}/groups", {"groups": "finance", "groups_reason": "moved"})
        assert moved.status_code == 303
        assert admin.post(f"/admin/staff/{sub}/access", {"access": "off", "access_reason": "left"}).status_code == 303
        assert admin.post(f"/admin/staff/{sub}/access", {"access": "on", "access_reason": "back"}).status_code == 303
        invited = admin.post("/admin/staff", {"email": "new@staff.tracekit.invalid", "groups": "support"})
        assert invited.status_code == 303, invited.body[:300]
        register_work(console_client, people)
    deps.clock.set(back_to)
    return people


def register_work(console_client, people) -> None:
    """The register's administrator checks an export, switches to it and rolls it back."""
    from tests.integration.test_register_import_cli import csv_text
    from tests.journeys.console_browser import StaffBrowser

    rows = [register_row(f"FA/{n}", "SW1A 2AA") for n in (1001, 1002, 2001, 2002, 3001)]
    rows.append(register_row("FA/4001", "SW1A 2AA", status="revoked"))  # its contact is removed
    export = csv_text(rows).encode()
    admin = StaffBrowser(console_client)
    assert admin.sign_in(people["register-admin"].username, people["register-admin"].password).status_code == 303
    assert admin.get("/register").status_code == 200
    checked = admin.upload("/register/check", {}, export).body.decode()
    fingerprint = re.findall(r'name="fingerprint" value="([0-9a-f]{64})"', checked)[0]
    live = re.findall(r'name="live" value="(\d+)"', checked)[0]
    assert admin.upload("/register/switch", {"fingerprint": fingerprint, "live": live}, export).status_code == 303
    live = re.findall(r'name="live" value="(\d+)"', admin.get("/register").body.decode())[0]
    assert admin.post("/register/rollback", {"reason": "wrong file", "live": live}).status_code == 303


def console_exports(deps, settings, people, aws_requests) -> None:
    """Finance lists the scheduled exports in the console and downloads one."""
    from chalice.test import Client

    from chalicelib.web.console import console
    from tests.journeys.console_browser import StaffBrowser

    bootstrap.use(bootstrap.build(settings, deps.clock))
    with aws_requests.as_function("console"), Client(console, stage_name="test") as console_client:
        finance = StaffBrowser(console_client)
        assert finance.sign_in(people["finance"].username, people["finance"].password).status_code == 303
        listed = finance.get("/finance/exports")
        [key] = re.findall(r"/finance/exports/download\?key=([^\"]+)", listed.body.decode())[:1]
        assert finance.get(f"/finance/exports/download?key={key}").status_code == 200


def test_each_functions_policy_covers_every_call_it_makes_and_no_more_than_named_resources(made, environment, settings):
    region = environment["AWS_REGION"]
    resources = physical(environment)
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": PARTITION,
        "AWS::StackName": "tracekit",
        "Stage": settings.stage,
    }
    by_function: dict[str, set[tuple[str, str]]] = {f: set() for f in FUNCTIONS}
    for function, service, operation, params in made:
        if function in by_function:
            by_function[function].update(authorisations(service, operation, params, region))
            by_function[function].update(encryption_needs(service, operation, data_key_arn(region)))
    missing = {}
    for function, needed in by_function.items():
        assert needed, f"{function} made no AWS call: the scenario did not run it"
        document = resolve_intrinsics(policy("prod", function), pseudo, resources)
        gaps = sorted(n for n in needed if not allows(document, *n))
        if gaps:
            missing[function] = gaps
    assert missing == {}


def test_no_policy_grants_a_wildcard_action_or_any_resource():
    """X-Ray's two write actions excepted: X-Ray has no resource-level permissions."""
    for function in FUNCTIONS:
        for statement in policy("prod", function)["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
            assert all("*" not in action for action in actions), (function, actions)
            if sorted(actions) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]:
                continue
            assert "*" not in resources, (function, statement)


def test_the_data_key_is_granted_only_through_dynamodb_and_sqs():
    services = {"dynamodb.${AWS::Region}.amazonaws.com", "sqs.${AWS::Region}.amazonaws.com"}
    for function in FUNCTIONS:
        grants = [
            statement
            for statement in policy("prod", function)["Statement"]
            if statement["Resource"] == {"Fn::GetAtt": [DATA_AT_REST_KEY, "Arn"]}
        ]
        assert grants, function
        for statement in grants:
            [(operator, condition)] = statement["Condition"].items()
            assert operator == "StringEquals" and list(condition) == ["kms:ViaService"], function
            assert condition["kms:ViaService"]["Fn::Sub"] in services, function


# Who may open the personal fields: the API (the release, the kit maker's list, the emails, the
# holder's status check), the relay (releases and emails it sends later) and the console (support
# showing a delivery address, resending an email). The API and the console (support changing a
# holder's address) seal.
OPENS_PERSONAL_DATA = {"api_handler", "relay_unsent_fulfilments", "console"}
SEALS_PERSONAL_DATA = {"api_handler", "console"}


def test_only_the_functions_that_must_read_personal_data_can_decrypt_it(made, environment, settings):
    """The finance, purge, sweep, health and authorizer functions can neither open nor seal a
    field; the scenario ran each of them against the sealed table and they never needed to."""
    region = environment["AWS_REGION"]
    resources = physical(environment)
    key_arn = resources["PersonalDataKey"]["Arn"]
    pseudo = {"AWS::Region": region, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION, "Stage": settings.stage}
    for function in FUNCTIONS:
        document = resolve_intrinsics(policy("prod", function), pseudo | {"AWS::StackName": "tracekit"}, resources)
        assert allows(document, "kms:Decrypt", key_arn) is (function in OPENS_PERSONAL_DATA), function
        assert allows(document, "kms:GenerateDataKey", key_arn) is (function in SEALS_PERSONAL_DATA), function
    kms_calls = [
        (f, operation, params) for f, service, operation, params in made if service == "kms" and f in FUNCTIONS
    ]
    assert {(f, op) for f, op, _ in kms_calls} == {
        ("api_handler", "GenerateDataKey"),
        ("api_handler", "Decrypt"),
        ("relay_unsent_fulfilments", "Decrypt"),
        ("console", "Decrypt"),
        ("console", "GenerateDataKey"),
    }
    assert all(params["EncryptionContext"] == PURPOSE for _, _, params in kms_calls)


def test_every_use_of_the_key_is_bound_to_its_purpose_and_the_key_policy_names_only_those_roles():
    """Each grant on the key requires the data key's encryption context; the key policy lets the
    account administer the key but use it only through the three roles above (by name: a role of
    the stack's), so no console user or other role can decrypt, whatever its IAM policy says."""
    for function in FUNCTIONS:
        for statement in policy("prod", function)["Statement"]:
            # Grants on the data-at-rest key (through DynamoDB and SQS) are the test above's.
            if statement["Resource"] == {"Fn::GetAtt": [DATA_AT_REST_KEY, "Arn"]}:
                continue
            if any(action.startswith("kms:") for action in statement["Action"]):
                assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE["purpose"]}}
                assert statement["Resource"] == [{"Fn::GetAtt": ["PersonalDataKey", "Arn"]}]
    key = load_resources()["PersonalDataKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    users: dict[str, set[str]] = {}
    for statement in key["KeyPolicy"]["Statement"]:
        actions = set(statement["Action"])
        if actions & {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant"}:
            assert statement["Condition"]["StringEquals"] == {"kms:EncryptionContext:purpose": PURPOSE["purpose"]}
            [role] = [statement["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"].rsplit("-", 2)[-2]]
            users[role] = actions
        else:
            assert not any(
                a.startswith(("kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt", "kms:Generate")) for a in actions
            )
            assert "kms:CreateGrant" not in actions and "kms:*" not in actions
    assert users == {
        "ApiHandlerRole": {"kms:Decrypt", "kms:GenerateDataKey"},
        "RelayUnsentFulfilmentsRole": {"kms:Decrypt"},
        "ConsoleRole": {"kms:Decrypt", "kms:GenerateDataKey"},
    }


# Grants for a path the scenario cannot reach here: the reconciliation fetches an order by
# BatchGetItem only when its refund or dispute lands on a later day than the order, and Stripe's
# times are the real clock while the tests' clock is fixed.
UNREACHED = {
    "api_handler": {"dynamodb:BatchGetItem"},
    "export_daily_reconciliation": {"dynamodb:BatchGetItem"},
}


def test_every_granted_action_is_one_the_function_uses(made):
    """Least privilege the other way round: a grant no recorded call needs is a grant too many
    (LAMBDA_RUNTIME's statements excepted: Lambda does that with the role, not our code)."""
    used: dict[str, set[str]] = {f: set() for f in FUNCTIONS}
    for function, service, operation, params in made:
        if function in used:
            used[function] |= {action for action, _ in authorisations(service, operation, params, "eu-west-2")}
            used[function] |= {action for action, _ in encryption_needs(service, operation, "key")}
    for function in FUNCTIONS:
        granted = {
            action
            for statement in policy("prod", function)["Statement"]
            for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
            if statement.get("Sid") not in LAMBDA_RUNTIME
        }
        assert granted - used[function] == UNREACHED.get(function, set()), function

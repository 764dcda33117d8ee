"""`chalice package` for the prod stage, as `make package STAGE=prod` runs it: the template passes
cfn-lint and declares what tracekit needs; the zip fits Lambda and carries what handlers load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.web.pages import SECURITY_HEADERS
from devstack.aws import load_template

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# `chalice package` (its own limit 600 s) runs in the first test's setup: pytest.ini's 300 s is too short.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "prod"
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-2"}
    command = [str(BIN / "chalice"), "package", "--stage", "prod", "--merge-template", "infra/resources.json", str(out)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def template(package) -> dict:
    return json.loads((package / "sam.json").read_text())


# E2533 compares the Lambda runtime's published deprecation dates with the machine's date, so it
# passes or fails with the calendar, not with the template: python3.11 is deprecated on 2027-06-30.
# `make package` (the gate before a deployment) keeps it; the suite, which must pass on any day,
# does not. See docs/operations.md, "Runtime end of life".
DATE_DEPENDENT_CHECKS = "E2533"


def test_the_template_passes_cfn_lint(package):
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(package / "sam.json"), "--ignore-checks", DATE_DEPENDENT_CHECKS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_resources_deployed_are_the_ones_the_local_stack_creates(template):
    """One source: every resource of infra/resources.json is in the template unchanged."""
    for logical_id, resource in load_template()["Resources"].items():
        if "Type" not in resource:  # an addition to a resource Chalice generates: merged into it
            assert _contains(template["Resources"][logical_id], resource), logical_id
            continue
        if logical_id == "ApiHandlerLogGroup":  # our correction of Chalice's own resource (see docs/stack-findings.md)
            assert template["Resources"][logical_id]["Properties"]["LogGroupName"] == {
                "Fn::Sub": "/aws/lambda/${APIHandler}"
            }
            continue
        assert template["Resources"][logical_id] == resource, logical_id


def _contains(whole, part) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _contains(whole[k], v) for k, v in part.items())
    return whole == part


def test_unknown_paths_get_the_404_page_from_api_gateway_itself(template):
    """API Gateway answers a path it has no route for before any Lambda runs: the merged swagger
    makes that answer the app's 404 page with the app's headers, not 403 'Missing Authentication Token'."""
    swagger = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    response = swagger["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert response["statusCode"] == "404"
    headers = {k.removeprefix("gatewayresponse.header."): v for k, v in response["responseParameters"].items()}
    assert headers == {k: f"'{v}'" for k, v in {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}.items()}
    assert '<h1 class="govuk-heading-l">Page not found</h1>' in response["responseTemplates"]["application/json"]


def test_tables_queues_and_bucket_are_durable_encrypted_and_private(template):
    resources = template["Resources"]
    tables = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == {
        "RegisterTable",
        "OrdersTable",
        "ClaimsTable",
        "AttemptsTable",
        "ContactsTable",
        "ApiKeysTable",
        "StaffSessionsTable",
        "AuditTable",
    }
    for props in tables.values():
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    for ttl in ("AttemptsTable", "StaffSessionsTable"):
        assert tables[ttl]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert tables["ContactsTable"]["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    queue = resources["FulfilmentQueue"]["Properties"]
    assert queue["FifoQueue"] and queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["FulfilmentDeadLetterQueue", "Arn"]
    }
    bucket = resources["ExportsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_every_function_has_its_own_policy_log_retention_and_the_wiring(template):
    resources = template["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 9
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    policies = {
        json.dumps(json.loads((ROOT / ".chalice" / f["iam_policy_file"]).read_text()), sort_keys=True)
        for f in config["lambda_functions"].values()
    }
    for logical_id, function in functions.items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        [inline] = role["Properties"]["Policies"]
        assert json.dumps(inline["PolicyDocument"], sort_keys=True) in policies, logical_id
        log_groups = [
            r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup" and logical_id in json.dumps(r)
        ]
        assert [g["Properties"]["RetentionInDays"] for g in log_groups] == [90], logical_id
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ORDERS_TABLE"] == {"Ref": "OrdersTable"}
    assert variables["REGISTER_KEY"] == {"Fn::Sub": "ssm:/tracekit/${Stage}/register-key"}


def test_alarms_watch_errors_throttles_5xx_dead_letters_stuck_orders_lockouts_lost_emails_and_refused_messages(
    template,
):
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = set()
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]
        watched |= {(s["Namespace"], s["MetricName"]) for s in stats}
        if "Metrics" in alarm:  # a sum over every function
            assert len(stats) == 8
    assert watched == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("tracekit", "StuckFulfilments"),
        ("tracekit", "CertificateCheckLockouts"),
        ("tracekit", "EmailsAbandoned"),
        ("tracekit", "FulfilmentMessagesRefused"),
    }


def test_the_zip_fits_lambda_and_carries_what_the_handlers_load(package):
    path = package / "deployment.zip"
    assert path.stat().st_size < LAMBDA_ZIP_LIMIT
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped < LAMBDA_UNZIPPED_LIMIT
    repository_files = [
        p.relative_to(ROOT).as_posix()
        for folder in ("templates", "schemas", "chalicelib")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert {"app.py", *repository_files} <= names
    packages = {name.split("/", 1)[0] for name in names}
    assert {"stripe", "jinja2", "pynamodb", "openpyxl", "cryptography"} <= packages
    assert not packages & {"moto", "pytest", "playwright", "hypothesis", "schemathesis", "devstack", "ops"}
    # govuk-frontend-jinja's wheel ships a top-level `tests/` of its own; none of ours may go
    ours = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")}
    assert not names & ours


# --- the cloud baseline (checkov in `make package`; docs/security.md, "The cloud baseline") -------
# These hold whether or not checkov runs: removing one fails the suite.

DATA_KEY = {"Ref": "DataAtRestKey"}
SCHEDULED = {
    "SweepLapsedHolds",
    "RelayUnsentFulfilments",
    "ReportFulfilmentHealth",
    "ExportDailyReconciliation",
    "SweepExpiredAttempts",
    "PurgePersonalData",
}


def _of_type(template: dict, kind: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_tables_and_queues_are_encrypted_with_the_data_key_and_survive_deletion(template):
    for logical_id, table in _of_type(template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": DATA_KEY,
        }, logical_id
        assert table["Properties"]["DeletionProtectionEnabled"] is True, logical_id
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", logical_id
    queues = _of_type(template, "AWS::SQS::Queue")
    assert set(queues) == {"FulfilmentQueue", "FulfilmentDeadLetterQueue", "ScheduledFailuresQueue"}
    for logical_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == DATA_KEY, logical_id
        assert queue["DeletionPolicy"] == queue["UpdateReplacePolicy"] == "Retain", logical_id
    for logical_id, key in _of_type(template, "AWS::KMS::Key").items():
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id
        assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain", logical_id


def test_the_data_key_is_used_only_through_dynamodb_and_sqs_in_this_account(template):
    statements = template["Resources"]["DataAtRestKey"]["Properties"]["KeyPolicy"]["Statement"]
    root = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert all(s["Principal"] == root and s["Effect"] == "Allow" for s in statements)
    admin, use = statements
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"} & set(admin["Action"])
    assert "Condition" not in admin
    assert use["Condition"]["StringEquals"] == {
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        "kms:ViaService": [
            {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
            {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"},
        ],
    }


def test_the_exports_bucket_is_retained_and_its_access_logged(template):
    resources = template["Resources"]
    bucket = resources["ExportsBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "ExportsLogBucket"}
    log_bucket = resources["ExportsLogBucket"]
    assert log_bucket["DeletionPolicy"] == "Retain" and all(
        log_bucket["Properties"]["PublicAccessBlockConfiguration"].values()
    )
    [delivery] = resources["ExportsLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"} and delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": {"Fn::GetAtt": ["ExportsBucket", "Arn"]}}


def test_every_function_is_capped_traced_and_every_scheduled_one_keeps_its_failed_runs(template):
    functions = _of_type(template, "AWS::Serverless::Function")
    assert len(functions) == 9 and SCHEDULED < set(functions)
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert isinstance(props["ReservedConcurrentExecutions"], int), logical_id
        assert 1 <= props["ReservedConcurrentExecutions"] <= 50, logical_id
        assert props["Tracing"] == "Active", logical_id
        assert props["Tags"]["project"] == "tracekit", logical_id
        if logical_id in SCHEDULED:
            assert props["DeadLetterQueue"] == {
                "Type": "SQS",
                "TargetArn": {"Fn::GetAtt": ["ScheduledFailuresQueue", "Arn"]},
            }, logical_id
            assert props["ReservedConcurrentExecutions"] == 1, logical_id  # one run of a job at a time
    for logical_id, group in _of_type(template, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}, logical_id
        assert group["Properties"]["RetentionInDays"] == 90, logical_id
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain", logical_id


# What the access log may say about a request: which, when, what route, how it went. Never the path
# as sent (references), the query string, a header, the body or the caller's address.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "responseLength": "$context.responseLength",
    "errorType": "$context.error.responseType",
    "wafStatus": "$context.waf.status",
}


def test_the_api_stage_is_regional_traced_and_access_logged_without_personal_data(template):
    api = template["Resources"]["RestAPI"]
    props = api["Properties"]
    assert props["EndpointConfiguration"] == "REGIONAL" and props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(props["AccessLogSetting"]["Format"]) == ACCESS_LOG_FIELDS
    assert api["DependsOn"] == ["ApiGatewayAccount"]  # the region's logging role is set before the stage
    account = template["Resources"]["ApiGatewayAccount"]["Properties"]
    assert account["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}


def _rate_rules(acl: dict) -> dict[str, tuple[int, str | None]]:
    """Rule name -> (requests per 5 minutes per address, the path it is scoped to, if any)."""
    rules = {}
    for rule in acl["Rules"]:
        statement = rule["Statement"].get("RateBasedStatement")
        if statement:
            assert statement["AggregateKeyType"] == "IP" and statement["EvaluationWindowSec"] == 300
            assert "Block" in rule["Action"]
            scope = statement.get("ScopeDownStatement", {}).get("ByteMatchStatement")
            rules[rule["Name"]] = (statement["Limit"], scope and scope["SearchString"])
    return rules


def test_the_web_acl_limits_each_address_and_guards_the_api_stage(template):
    resources = template["Resources"]
    acl = resources["WebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    assert _rate_rules(acl) == {
        "certificate-check-per-address": (20, "/order/certificate"),
        "status-lookup-per-address": (20, "/status"),
        "all-requests-per-address": (2000, None),
    }
    managed = [r["Statement"]["ManagedRuleGroupStatement"] for r in acl["Rules"] if "OverrideAction" in r]
    assert managed == [{"VendorName": "AWS", "Name": "AWSManagedRulesKnownBadInputsRuleSet"}]
    association = resources["WebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert association["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestAPI}/stages/${RestAPI.Stage}"
    }


def test_the_routes_the_web_acl_names_are_the_apps(template):
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert "post" in paths["/order/certificate"] and "post" in paths["/status"]


def test_every_checkov_skip_says_why(template):
    skips = [
        (logical_id, skip)
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert skip["id"].startswith("CKV_") and len(skip["comment"]) > 40, (logical_id, skip)


def test_the_console_is_its_own_function_behind_its_own_api_with_the_holders_function_given_nothing_of_it(template):
    """The holder's function (APIHandler) neither sees the console's settings nor may touch its
    tables; the console's API sends every route to the console's function and nothing else."""
    resources = template["Resources"]
    console = resources["Console"]["Properties"]
    assert console["Handler"] == "app.console"
    staff_variables = {"STAFF_USER_POOL_ID", "STAFF_USER_POOL_CLIENT_ID", "STAFF_SESSIONS_TABLE", "AUDIT_TABLE"}
    assert staff_variables | {"CONSOLE_BASE_URL"} <= set(console["Environment"]["Variables"])
    assert not staff_variables & set(template["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function" or logical_id == "Console":
            continue
        [inline] = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]["Policies"]
        granted = json.dumps(inline["PolicyDocument"])
        assert "StaffSessionsTable" not in granted and "AuditTable" not in granted, logical_id
    definition = resources["ConsoleApi"]["Properties"]["DefinitionBody"]
    uris = {
        json.dumps(method["x-amazon-apigateway-integration"]["uri"])
        for path in definition["paths"].values()
        for method in path.values()
    }
    assert len(uris) == 1 and "${Console.Arn}" in uris.pop()
    [permission] = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Ref": "Console"}
    ]
    assert "ConsoleApi" in json.dumps(permission["Properties"]["SourceArn"])
    waf = [r["Properties"]["ResourceArn"] for r in resources.values() if r["Type"] == "AWS::WAFv2::WebACLAssociation"]
    assert any("${ConsoleApi}" in json.dumps(arn) for arn in waf)


def test_the_console_api_definition_is_the_one_the_consoles_routes_make():
    from devstack.console_api import console_definition, declared_definition

    assert declared_definition() == console_definition(), "run: python -m devstack.console_api --write-template"

"""The resources on moto, the PynamoDB models and infra/resources.json must agree: one source."""

from __future__ import annotations

import json

import boto3

from chalicelib.adapters.dynamodb import Tables, build_models
from devstack.aws import load_resources


def test_every_table_on_moto_has_the_key_schema_and_indexes_the_file_declares(settings):
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    declared = {lid: r["Properties"] for lid, r in load_resources().items() if r["Type"] == "AWS::DynamoDB::Table"}
    names = {
        "RegisterTable": settings.register_table,
        "OrdersTable": settings.orders_table,
        "ClaimsTable": settings.claims_table,
        "ApiKeysTable": settings.api_keys_table,
        "AttemptsTable": settings.attempts_table,
        "ContactsTable": settings.contacts_table,
        "StaffSessionsTable": settings.staff.sessions_table,
        "AuditTable": settings.staff.audit_table,
    }
    assert set(declared) == set(names)
    for logical_id, props in declared.items():
        table = dynamodb.describe_table(TableName=names[logical_id])["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])
        }


def test_the_models_use_the_declared_hash_keys(settings):
    models = build_models(Tables("r", "o", "c", settings.region))
    declared = load_resources()
    for model, logical_id in (
        (models.register, "RegisterTable"),
        (models.orders, "OrdersTable"),
        (models.claims, "ClaimsTable"),
    ):
        [key] = [k["AttributeName"] for k in declared[logical_id]["Properties"]["KeySchema"] if k["KeyType"] == "HASH"]
        assert model._hash_keyname == key


def test_the_fulfilment_queue_is_fifo_with_a_dead_letter_queue(settings):
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    attributes = sqs.get_queue_attributes(QueueUrl=settings.fulfilment_queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert "fulfilment-dead-letter-queue.fifo" in attributes["RedrivePolicy"]


def test_the_manufacturers_queue_role_may_only_read_the_fulfilment_queue(settings, environment):
    iam = boto3.client("iam", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    role_name = environment["MANUFACTURER_QUEUE_ROLE_ARN"].rsplit("/", 1)[-1]
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    [statement] = document["Statement"]
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    queue_arn = sqs.get_queue_attributes(QueueUrl=settings.fulfilment_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == queue_arn
    assert sorted(statement["Action"]) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]


def test_the_attempts_table_declares_its_ttl(settings):
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.region)
    ttl = dynamodb.describe_time_to_live(TableName=settings.attempts_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")

"""Create tracekit's AWS resources on moto from infra/resources.json, the file deployment uses.

CloudFormation property names are the API's parameter names for the parts used here, so the
translation is small; anything the file declares that this module cannot create is an error,
not a silent gap.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import boto3

RESOURCES_FILE = Path(__file__).resolve().parent.parent / "infra" / "resources.json"
# Declared for AWS only: alarms and their topic watch metrics moto does not produce, and the log
# group override corrects what Chalice generates for the API handler's log retention; the web ACL
# sits in front of API Gateway, which the local stack replaces with `chalice local`.
NOT_CREATED_LOCALLY = {
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::ApiGateway::Account",
    "AWS::S3::BucketPolicy",
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    # the console's API and its permission to call the console function: the local stack serves
    # the console's app with `devstack.local_api --console` instead
    "AWS::Serverless::Api",
    "AWS::Lambda::Permission",
}
# The cloud baseline's resources nothing local reads (docs/stack-findings.md): the key the tables
# and queues are encrypted with at rest (moto encrypts nothing at rest, and every resource is
# created afresh for each test), the keys of the logs and alarms, the scheduled functions' failure
# queue (Lambda's, for asynchronous runs), the exports bucket's access-log bucket and the role API
# Gateway logs with. Locally the tables use DynamoDB's own key, the queues none (moto encrypts
# nothing at rest), and a role's statements about an AWS_ONLY resource are left out.
AWS_ONLY = {"DataAtRestKey", "OperationsKey", "ScheduledFailuresQueue", "ExportsLogBucket", "ApiGatewayLogsRole"}
# Queue properties that name an AWS_ONLY resource, dropped locally.
AWS_ONLY_PROPERTIES = {"KmsMasterKeyId"}
# Chalice's own REST API, to which the merge template adds its gateway responses (the swagger's
# x-amazon-apigateway-gateway-responses); devstack.local_api serves those in front of chalice local.
CHALICE_API = "RestAPI"


def load_template() -> dict:
    return json.loads(RESOURCES_FILE.read_text())


def load_resources() -> dict:
    """The resources tracekit declares itself, not its additions to the ones Chalice generates."""
    return {lid: r for lid, r in load_template()["Resources"].items() if "Type" in r}


def gateway_responses_declared() -> dict:
    """ResponseType -> the swagger gateway response the merge template adds to Chalice's API."""
    api = load_template()["Resources"].get(CHALICE_API, {})
    return api.get("Properties", {}).get("DefinitionBody", {}).get("x-amazon-apigateway-gateway-responses", {})


def environment_names() -> dict[str, str]:
    """Logical id -> the variable the app reads its name or URL from: the same `Ref`s the template
    puts in every function's environment (its Globals, and the console function's own), plus the
    kit maker's role for the CLI."""
    template = load_template()
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    console = template["Resources"].get("Console", {}).get("Properties", {})
    variables |= console.get("Environment", {}).get("Variables", {})
    names = {value["Ref"]: name for name, value in variables.items() if isinstance(value, dict) and "Ref" in value}
    return {lid: name for lid, name in names.items() if lid in template["Resources"]} | {
        "ManufacturerQueueRole": "MANUFACTURER_QUEUE_ROLE_ARN"
    }


def physical_name(stage: str, logical_id: str, resource: dict) -> str:
    """'OrdersTable' in stage 'local' -> 'tracekit-local-orders-table' (FIFO queues end '.fifo')."""
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()
    name = f"tracekit-{stage}-{kebab}"
    return name + ".fifo" if resource["Properties"].get("FifoQueue") else name


# What the local stack passes for the template's parameters (placeholders: no real account).
LOCAL_PARAMETERS = {
    "ManufacturerAccountId": "000000000000",
    "ManufacturerExternalId": "local-external-id-0000",
    "EmailFrom": "kits@tracekit.local",
}


def create_resources(stage: str, endpoint_url: str, region: str) -> dict[str, str]:
    """Create every resource; returns the environment the app needs to find them."""
    clients = _clients(endpoint_url, region)
    created: dict[str, dict] = {}
    resources = {
        lid: r for lid, r in load_resources().items() if r["Type"] not in NOT_CREATED_LOCALLY and lid not in AWS_ONLY
    }
    for logical_id in _creation_order(resources):
        resource = resources[logical_id]
        name = physical_name(stage, logical_id, resource)
        created[logical_id] = _CREATORS[resource["Type"]](clients, name, resource["Properties"], created, region)
    names = environment_names()
    return {names[lid]: info["env"] for lid, info in created.items() if lid in names}


@functools.lru_cache(maxsize=4)
def _clients(endpoint_url: str, region: str) -> dict:
    """One set of clients per endpoint: the tests create the resources afresh for every test, and
    making botocore's clients is most of what that costs."""
    session = boto3.session.Session(region_name=region)
    return {
        svc: session.client(svc, endpoint_url=endpoint_url)
        for svc in ("dynamodb", "sqs", "s3", "iam", "ses", "kms", "cognito-idp")
    }


def _creation_order(resources: dict) -> list[str]:
    """Every resource after the ones it refers to (Fn::GetAtt): a depth-first topological order."""
    ordered: list[str] = []

    def visit(logical_id: str) -> None:
        if logical_id not in ordered:
            for dependency in _references(resources[logical_id]):
                if dependency in resources:
                    visit(dependency)
            ordered.append(logical_id)

    for logical_id in sorted(resources):
        visit(logical_id)
    return ordered


def _references(node) -> list[str]:
    if isinstance(node, dict):
        if "Fn::GetAtt" in node:
            return [node["Fn::GetAtt"][0]]
        if "Ref" in node and isinstance(node["Ref"], str):
            return [node["Ref"]]
        return [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def _create_table(clients, name: str, props: dict, created: dict, region: str) -> dict:
    dynamodb = clients["dynamodb"]
    params = {
        key: props[key]
        for key in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
        if key in props
    }
    if "SSESpecification" in props:  # with DynamoDB's own key: the data key is AWS_ONLY
        params["SSESpecification"] = {"Enabled": props["SSESpecification"]["SSEEnabled"]}
    dynamodb.create_table(TableName=name, **params)
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    if "TimeToLiveSpecification" in props:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    return {"env": name}


def _create_queue(clients, name: str, props: dict, created: dict, region: str) -> dict:
    sqs = clients["sqs"]
    attributes = {}
    for key, value in props.items():
        if key in AWS_ONLY_PROPERTIES:
            continue
        if key == "RedrivePolicy":
            target = value["deadLetterTargetArn"]["Fn::GetAtt"][0]
            value = json.dumps(
                {"deadLetterTargetArn": created[target]["arn"], "maxReceiveCount": value["maxReceiveCount"]}
            )
        attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"env": url, "arn": arn}


def _create_bucket(clients, name: str, props: dict, created: dict, region: str) -> dict:
    s3 = clients["s3"]
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if "BucketEncryption" in props:
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    return {"env": name}


def _create_role(clients, name: str, props: dict, created: dict, region: str) -> dict:
    iam = clients["iam"]
    trust = _resolve(props["AssumeRolePolicyDocument"], created)
    arn = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Description=props.get("Description", "")
    )["Role"]["Arn"]
    for policy in props.get("Policies", []):
        statements = [s for s in policy["PolicyDocument"]["Statement"] if not AWS_ONLY & set(_references(s))]
        document = policy["PolicyDocument"] | {"Statement": statements}
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(_resolve(document, created)),
        )
    return {"env": arn, "arn": arn}


def resolve_intrinsics(node, parameters: dict[str, str], attributes: dict[str, dict[str, str]]):
    """The intrinsic functions the template uses: `Ref` of a parameter (pseudo parameters
    included) or a resource, `Fn::Sub` of `${Name}` and `${Resource.Attribute}`, `Fn::GetAtt`.
    `attributes` maps a logical id to its 'Ref' and attribute values ('Arn', …)."""
    if isinstance(node, list):
        return [resolve_intrinsics(value, parameters, attributes) for value in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return parameters[node["Ref"]] if node["Ref"] in parameters else attributes[node["Ref"]]["Ref"]
    if "Fn::GetAtt" in node:
        logical_id, attribute = node["Fn::GetAtt"]
        return attributes[logical_id][attribute]
    if "Fn::Sub" in node:

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in parameters:
                return parameters[name]
            logical_id, _, attribute = name.partition(".")
            return attributes[logical_id][attribute or "Ref"]

        return re.sub(r"\$\{([\w:.]+)\}", substitute, node["Fn::Sub"])
    return {key: resolve_intrinsics(value, parameters, attributes) for key, value in node.items()}


def _resolve(node, created: dict):
    """Intrinsics against what this module has created so far, with the local parameters."""
    attributes = {
        lid: {"Ref": info["env"]} | ({"Arn": info["arn"]} if "arn" in info else {}) for lid, info in created.items()
    }
    return resolve_intrinsics(node, LOCAL_PARAMETERS, attributes)


def _create_email_identity(clients, name: str, props: dict, created: dict, region: str) -> dict:
    """moto's SES then accepts mail from this address (and keeps what is sent, for the local stack)."""
    address = _resolve(props["EmailIdentity"], created)
    clients["ses"].verify_email_identity(EmailAddress=address)
    return {"env": address}


def _create_key(clients, name: str, props: dict, created: dict, region: str) -> dict:
    """A customer-managed key; its key policy is not passed (it names the deployed roles, and moto
    does not enforce key policies: tests/integration/test_iam_policy.py checks it instead)."""
    kms = clients["kms"]
    metadata = kms.create_key(
        Description=props.get("Description", ""), KeySpec=props["KeySpec"], KeyUsage=props["KeyUsage"]
    )["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return {"env": metadata["KeyId"], "arn": metadata["Arn"]}


def _create_alias(clients, name: str, props: dict, created: dict, region: str) -> dict:
    """Named like every local resource (the template's name has the deployed stage in it)."""
    alias = f"alias/{name}"
    clients["kms"].create_alias(AliasName=alias, TargetKeyId=_resolve(props["TargetKeyId"], created))
    return {"env": alias}


# The user pool's properties passed to moto as they are. MfaConfiguration is not among them: the
# template requires the authenticator app (ON); locally it is OPTIONAL, and whether the demo staff
# must use it is STAFF_MFA's choice (devstack.staff).
USER_POOL_PROPERTIES = (
    "Policies",
    "UsernameAttributes",
    "AutoVerifiedAttributes",
    "AdminCreateUserConfig",
    "AccountRecoverySetting",
)
USER_POOL_CLIENT_PROPERTIES = (
    "ExplicitAuthFlows",
    "GenerateSecret",
    "PreventUserExistenceErrors",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


def _create_user_pool(clients, name: str, props: dict, created: dict, region: str) -> dict:
    params = {key: props[key] for key in USER_POOL_PROPERTIES if key in props}
    cognito = clients["cognito-idp"]
    pool = cognito.create_user_pool(PoolName=name, MfaConfiguration="OPTIONAL", **params)["UserPool"]
    if "SOFTWARE_TOKEN_MFA" in props.get("EnabledMfas", ()):  # the API's way of saying EnabledMfas
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool["Id"], SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
        )
    return {"env": pool["Id"], "arn": pool["Arn"]}


def _create_user_pool_client(clients, name: str, props: dict, created: dict, region: str) -> dict:
    params = {key: props[key] for key in USER_POOL_CLIENT_PROPERTIES if key in props}
    pool_id = _resolve(props["UserPoolId"], created)
    client = clients["cognito-idp"].create_user_pool_client(UserPoolId=pool_id, ClientName=name, **params)
    return {"env": client["UserPoolClient"]["ClientId"]}


def _create_user_pool_group(clients, name: str, props: dict, created: dict, region: str) -> dict:
    pool_id = _resolve(props["UserPoolId"], created)
    params = {"Description": props["Description"]} if "Description" in props else {}
    clients["cognito-idp"].create_group(UserPoolId=pool_id, GroupName=props["GroupName"], **params)
    return {"env": props["GroupName"]}


_CREATORS = {
    "AWS::Cognito::UserPool": _create_user_pool,
    "AWS::Cognito::UserPoolClient": _create_user_pool_client,
    "AWS::Cognito::UserPoolGroup": _create_user_pool_group,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::SQS::Queue": _create_queue,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::IAM::Role": _create_role,
    "AWS::SES::EmailIdentity": _create_email_identity,
    "AWS::KMS::Key": _create_key,
    "AWS::KMS::Alias": _create_alias,
}

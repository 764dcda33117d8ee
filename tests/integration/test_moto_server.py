"""The moto server the tests and the local stack share serves one request at a time, so a race
against it is decided by DynamoDB's conditions, as in AWS, and never by moto's own races."""

from __future__ import annotations

import threading

import boto3
import pytest
import requests
from botocore.config import Config

from tests.conftest import REGION

THREADS, ROUNDS = 16, 10
# No retries: a 500 from moto must surface here, not be retried away by botocore.
NO_RETRIES = Config(retries={"total_max_attempts": 1}, max_pool_connections=THREADS)


@pytest.fixture
def dynamodb(moto_url):
    """Two fresh tables, one with filler items: moto deep-copies every table a transaction touches,
    and a bigger copy is a wider window for a request running beside it."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name=REGION, config=NO_RETRIES)
    for table in ("race-claims", "race-orders"):
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    filler = [{"PutRequest": {"Item": {"key": {"S": f"filler-{n}"}, "pad": {"S": "x" * 200}}}} for n in range(100)]
    for start in range(0, len(filler), 25):
        client.batch_write_item(RequestItems={"race-orders": filler[start : start + 25]})
    return client


def claim_and_place(client, round_number: int, contender: int) -> None:
    """tracekit's shape of an order: the order's put and the certificate's conditional claim."""
    client.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "race-orders",
                    "Item": {"key": {"S": f"order-{round_number}-{contender}"}},
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": "key"},
                }
            },
            {
                "Update": {
                    "TableName": "race-claims",
                    "Key": {"key": {"S": f"certificate-{round_number}"}},
                    "UpdateExpression": "SET winner = :me ADD kits :one",
                    "ConditionExpression": "attribute_not_exists(kits) OR kits < :one",
                    "ExpressionAttributeValues": {":me": {"N": str(contender)}, ":one": {"N": "1"}},
                }
            },
        ]
    )


def race(client, round_number: int) -> tuple[list[int], list[str]]:
    """Every contender at once; (the winners, any failure other than a refused condition)."""
    barrier, winners, failures = threading.Barrier(THREADS), [], []

    def contend(contender: int) -> None:
        barrier.wait()
        try:
            claim_and_place(client, round_number, contender)
            winners.append(contender)
        except client.exceptions.TransactionCanceledException as refused:
            reasons = {r["Code"] for r in refused.response["CancellationReasons"]}
            if reasons != {"None", "ConditionalCheckFailed"}:
                failures.append(f"cancelled for {reasons}")
        except Exception as exc:  # noqa: BLE001 - any other outcome (a 500 above all) fails the test
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=contend, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return winners, failures


def test_conflicting_conditional_writes_at_once_have_one_winner_and_no_server_error(dynamodb, moto_server):
    for round_number in range(ROUNDS):
        winners, failures = race(dynamodb, round_number)
        assert failures == []
        assert len(winners) == 1
        claim = dynamodb.get_item(TableName="race-claims", Key={"key": {"S": f"certificate-{round_number}"}})["Item"]
        assert (claim["kits"]["N"], claim["winner"]["N"]) == ("1", str(winners[0]))
        placed = [
            n
            for n in range(THREADS)
            if "Item" in dynamodb.get_item(TableName="race-orders", Key={"key": {"S": f"order-{round_number}-{n}"}})
        ]
        assert placed == winners
    assert moto_server.dispatch.most_at_once == 1  # moto itself never saw two requests at once
    assert moto_server.url.startswith("http://127.0.0.1:")

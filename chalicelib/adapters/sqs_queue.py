"""The fulfilment queue: an SQS FIFO queue, deduplicated per order."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import QueueUnavailable
from ..domain.fulfilment import FulfilmentMessage


class SqsFulfilmentQueue:
    def __init__(self, sqs_client, queue_url: str):
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, message: FulfilmentMessage) -> None:
        """FIFO deduplication by order reference makes a resend within five minutes a no-op;
        the manufacturer deduplicates by the same reference beyond that."""
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(message.to_document(), separators=(",", ":"), sort_keys=True),
                MessageGroupId=message.order_reference,
                MessageDeduplicationId=message.deduplication_id,
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(type(exc).__name__) from None

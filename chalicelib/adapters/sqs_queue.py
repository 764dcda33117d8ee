"""The fulfilment queue: an SQS FIFO queue, deduplicated per order."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import QueueUnavailable
from ..domain.fulfilment import AddressAmendment, FulfilmentMessage
from .message_schema import check_amendment_message, check_fulfilment_message


class SqsFulfilmentQueue:
    def __init__(self, sqs_client, queue_url: str, dead_letter_queue_url: str | None = None):
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._dead_letter_queue_url = dead_letter_queue_url

    def dead_letter_depth(self) -> int:
        """Messages the consumer gave up on (moved after the redrive policy's receive count)."""
        if not self._dead_letter_queue_url:
            return 0
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self._dead_letter_queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(type(exc).__name__) from None
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def send(self, message: FulfilmentMessage) -> None:
        """FIFO deduplication by fulfilment id makes a resend within five minutes a no-op; the
        manufacturer deduplicates by the same id beyond that (its API calls are idempotent). A
        message that breaks its schema is refused (FulfilmentMessageRefused) and never sent."""
        document = message.to_document()
        check_fulfilment_message(document)
        self._send(document, message.order_reference, message.deduplication_id)

    def send_amendment(self, amendment: AddressAmendment) -> None:
        """In the fulfilment's own message group, so it arrives after the fulfilment message;
        deduplicated per amendment. Checked against its schema first, like the fulfilment."""
        document = amendment.to_document()
        check_amendment_message(document)
        self._send(document, amendment.message.order_reference, amendment.deduplication_id)

    def _send(self, document: dict, group: str, deduplication_id: str) -> None:
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(document, separators=(",", ":"), sort_keys=True),
                MessageGroupId=group,
                MessageDeduplicationId=deduplication_id,
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(type(exc).__name__) from None

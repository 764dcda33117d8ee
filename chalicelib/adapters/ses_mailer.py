"""Amazon SES (its v1 SendEmail, which moto's server also answers), plain text, from the service's
own verified address."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import MailUnavailable


class SesMailer:
    def __init__(self, ses_client, sender: str):
        self._ses = ses_client
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        try:
            self._ses.send_email(
                Source=self._sender,
                Destination={"ToAddresses": [to]},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                },
            )
        except (BotoCoreError, ClientError) as exc:
            # The exception's text can carry the address; only its type and code are passed on.
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            raise MailUnavailable(f"SES refused or unreachable ({code})") from None

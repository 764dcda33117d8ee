"""The local stack's outbox: moto's SES keeps every email the app sends; this writes each one to a
text file as it arrives and prints where, so a developer can read what a holder would get."""

from __future__ import annotations

import re
import threading
from pathlib import Path


class MailBox:
    def __init__(self, folder: Path, region: str, interval: float = 1.0, out=print):
        self.folder, self._region, self._interval, self._out = folder, region, interval, out
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailbox", daemon=True)

    def start(self) -> None:
        """Empty the folder of an earlier run's messages (only the files this writes), then watch."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for earlier in self.folder.glob("[0-9][0-9][0-9]-*.txt"):
            earlier.unlink()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def collect(self) -> list[Path]:
        """Write the messages sent since the last call; their files, in order."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        messages = ses_backends[DEFAULT_ACCOUNT_ID][self._region].sent_messages
        written = []
        for number, message in enumerate(messages[self._seen :], start=self._seen + 1):
            slug = re.sub(r"[^a-z0-9]+", "-", message.subject.lower()).strip("-")[:50]
            path = self.folder / f"{number:03d}-{slug}.txt"
            to = ", ".join(message.destinations.get("ToAddresses", []))
            path.write_text(f"From: {message.source}\nTo: {to}\nSubject: {message.subject}\n\n{message.body}")
            self._out(f"  Mail:    to {to}: {message.subject!r} -> {path}", flush=True)
            written.append(path)
        self._seen = len(messages)
        return written

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.collect()

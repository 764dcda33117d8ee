"""Reading form posts: size- and shape-limited, so odd input gets a clear answer, not a crash."""

from __future__ import annotations

from urllib.parse import parse_qs

MAX_FORM_BYTES = 8 * 1024
MAX_FIELD_CHARS = 500


class BodyTooLarge(Exception):
    pass


def read_form(raw_body: str | bytes | None, fields: tuple[str, ...]) -> dict[str, str]:
    """The named fields of a urlencoded body; each the first value given, trimmed to a sane length.
    Chalice gives the body as bytes (its type says `str | bytes`)."""
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body or b""
    if len(body) > MAX_FORM_BYTES:
        raise BodyTooLarge()
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=50) if text else {}
    except ValueError:  # more fields than any of our forms has
        raise BodyTooLarge() from None
    return {name: (parsed.get(name) or [""])[0][:MAX_FIELD_CHARS] for name in fields}


def read_choices(raw_body: str | bytes | None, name: str) -> list[str]:
    """Every value of a repeated field (the ticked boxes of a checkbox group), limited as above."""
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body or b""
    if len(body) > MAX_FORM_BYTES:
        raise BodyTooLarge()
    try:
        parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=False, max_num_fields=50)
    except ValueError:
        raise BodyTooLarge() from None
    return [value[:MAX_FIELD_CHARS] for value in parsed.get(name, [])]


def read_upload(
    raw_body: str | bytes | None, content_type: str, fields: tuple[str, ...], file_field: str, max_file_bytes: int
) -> tuple[dict[str, str], bytes | None]:
    """A multipart/form-data post (a form with a file): its named text fields, as read_form gives
    them, and the chosen file's bytes (None when none was chosen). A body over the file limit, or
    one that is not multipart, is refused as too large or unreadable, never parsed further."""
    from email import policy
    from email.parser import BytesParser

    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body or b""
    if len(body) > max_file_bytes + MAX_FORM_BYTES:
        raise BodyTooLarge()
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise BodyTooLarge()
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", errors="replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    answers = {name: "" for name in fields}
    upload = None
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if name == file_field and part.get_filename():
            upload = payload or None
        elif name in answers and not answers[name]:
            answers[name] = payload.decode("utf-8", errors="replace")[:MAX_FIELD_CHARS]
    return answers, upload

"""The console's POSTed forms: small urlencoded bodies, read and bounded here (no multipart parser needed)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from ingest.errors import InvalidRequest, PayloadTooLarge

MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (first value of each). Anything but a small urlencoded form is a 400/413."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidRequest(f"Expected a form ({FORM_TYPE})")
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"A console form is at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form could not be read") from None
    return {name: values[0] for name, values in fields.items()}

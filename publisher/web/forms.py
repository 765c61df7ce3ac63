"""Strict reading of the urlencoded forms the pages post back.

The sign-up form and the confirm and unsubscribe buttons are the only
bodies the service reads; anything that is not exactly such a form is
refused, never guessed at.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 10


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, strictly parsed; None for anything malformed.

    Malformed: another content type, bytes that are not UTF-8, a broken
    pair, more than MAX_FIELDS fields, or a field given twice.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        text = (await request.body()).decode("utf-8")
        fields = parse_qs(
            text,
            strict_parsing=bool(text),
            max_num_fields=MAX_FIELDS,
            errors="strict",
            keep_blank_values=True,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    if any(len(values) != 1 for values in fields.values()):
        return None
    return {key: values[0] for key, values in fields.items()}

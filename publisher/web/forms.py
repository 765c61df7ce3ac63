"""Strict reading of the urlencoded forms the pages post back.

The sign-up form, the preferences form and the confirm and unsubscribe
buttons are the only bodies the service reads; anything that is not exactly
such a form is refused, never guessed at.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 10


@dataclass(frozen=True, slots=True)
class Form:
    """A form read strictly: each field once, but those that may repeat (a box per topic)."""

    fields: dict[str, str]
    repeated: dict[str, tuple[str, ...]]


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, strictly parsed; None for anything malformed.

    Malformed: another content type, bytes that are not UTF-8, a broken
    pair, more than MAX_FIELDS fields, or a field given twice.
    """
    form = await read_form_with(request, repeated=(), max_fields=MAX_FIELDS)
    return None if form is None else form.fields


async def read_form_with(
    request: Request, *, repeated: Collection[str], max_fields: int
) -> Form | None:
    """As read_form, but the fields named in *repeated* may come any number of times.

    Those are in `Form.repeated` (in the order sent), the others in `Form.fields`.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        text = (await request.body()).decode("utf-8")
        parsed = parse_qs(
            text,
            strict_parsing=bool(text),
            max_num_fields=max_fields,
            errors="strict",
            keep_blank_values=True,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    fields = {key: values for key, values in parsed.items() if key not in repeated}
    if any(len(values) != 1 for values in fields.values()):
        return None
    return Form(
        {key: values[0] for key, values in fields.items()},
        {key: tuple(values) for key, values in parsed.items() if key in repeated},
    )

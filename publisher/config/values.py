"""Value checks for publisher.toml: each returns the cleaned value or raises ValueError.

The message of a ValueError says what is wrong with the value and what is
accepted; `Reader` adds the table and key, and collects every problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.errors import ConfigError

Check = Callable[[str, Any], Any]
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class Reader:
    """Collects every problem in the file so the user fixes them in one go."""

    def __init__(self, display_path: str) -> None:
        self.display_path = display_path
        self.problems: list[str] = []
        self.missing_tables: set[str] = set()

    def table(
        self, data: Mapping[str, Any], name: str, *, required: bool = False
    ) -> dict[str, Any]:
        value = data.get(name)
        if value is None:
            if required:
                self.problems.append(f"[{name}]: missing table")
                self.missing_tables.add(name)
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"[{name}]: expected a table, got {describe(value)}")
            return {}
        return value

    def known_keys(self, table: str, data: Mapping[str, Any], known: Mapping[str, Any]) -> None:
        for key in data:
            if key in known:
                continue
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            where = f"[{table}] " if table else ""
            accepted = ", ".join(sorted(known))
            self.problems.append(f"{where}unknown key '{key}'{hint}; known keys: {accepted}")

    def get(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        check: Check,
        *,
        required: bool = False,
        default: Any = None,
    ) -> Any:
        if key not in data:
            if required and table not in self.missing_tables:
                self.problems.append(f"[{table}] {key}: missing (required)")
            return default
        try:
            return check(key, data[key])
        except ValueError as err:
            self.problems.append(f"[{table}] {key}: {err}")
            return default

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.display_path, "\n".join(self.problems))


def describe(value: Any) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


def text_value(_key: str, value: Any) -> str:
    if not isinstance(value, str):
        message = f"expected a string, got {describe(value)}"
        raise ValueError(message)
    return value


def non_empty_text(key: str, value: Any) -> str:
    text = text_value(key, value).strip()
    if not text:
        message = "must not be empty"
        raise ValueError(message)
    return text


def absolute_url(key: str, value: Any) -> str:
    url = non_empty_text(key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        message = f"must be an absolute http(s) URL such as 'https://example.org/' ({url!r})"
        raise ValueError(message)
    if parts.query or parts.fragment:
        message = f"must not have a query or fragment ({url!r})"
        raise ValueError(message)
    return url if url.endswith("/") else url + "/"


def language(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    if not _LANGUAGE.match(text):
        message = f"expected a language tag such as 'en' or 'de-AT' ({text!r})"
        raise ValueError(message)
    return text


def timezone(key: str, value: Any) -> ZoneInfo:
    text = non_empty_text(key, value)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown time zone {text!r}; use an IANA name such as 'Europe/Vienna' or 'UTC'"
        raise ValueError(message) from None


def email(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", text):
        message = f"expected an email address such as 'desk@example.org' ({text!r})"
        raise ValueError(message)
    return text


_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def domain_name(key: str, value: Any) -> str:
    """A DNS name of two labels or more, as a DKIM d= needs (RFC 6376 §3.5)."""
    text = non_empty_text(key, value).rstrip(".").lower()
    if len(text) > 253 or not re.fullmatch(rf"{_DNS_LABEL}(\.{_DNS_LABEL})+", text):
        message = f"expected a domain name such as 'example.org' ({value!r})"
        raise ValueError(message)
    return text


def dkim_selector(key: str, value: Any) -> str:
    """A DKIM selector: DNS labels, the name under <domain>._domainkey (RFC 6376 §3.1)."""
    text = non_empty_text(key, value)
    if len(text) > 63 or not re.fullmatch(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", text):
        message = (
            "expected a selector such as 's2026' (letters, digits and '-', "
            f"dots between labels) ({value!r})"
        )
        raise ValueError(message)
    return text


def relative_path(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    return text


def positive_int(_key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        message = f"expected an integer, got {describe(value)}"
        raise ValueError(message)
    if not 1 <= value <= 10_000:
        message = f"must be between 1 and 10000 ({value})"
        raise ValueError(message)
    return value


def boolean(_key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        message = f"expected true or false, got {describe(value)}"
        raise ValueError(message)
    return value


def interval(key: str, value: Any) -> timedelta:
    text = non_empty_text(key, value)
    match = re.fullmatch(r"\s*(\d+)\s*(s|m|h)\s*", text)
    if not match or int(match.group(1)) == 0:
        message = f"expected a duration such as '30s', '5m' or '1h' ({text!r})"
        raise ValueError(message)
    amount = int(match.group(1))
    seconds = amount * {"s": 1, "m": 60, "h": 3600}[match.group(2)]
    if not 10 <= seconds <= 7 * 24 * 3600:
        message = f"must be between 10s and 168h ({text!r})"
        raise ValueError(message)
    return timedelta(seconds=seconds)


def absolute_url_as_is(key: str, value: Any) -> str:
    url = non_empty_text(key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        message = f"must be an absolute http(s) URL ({url!r})"
        raise ValueError(message)
    return url


def mailbox(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    _name, address = parseaddr(text)
    if "\n" in text or "\r" in text or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address):
        message = (
            f"expected an address such as 'Meridian Briefing <briefing@example.org>' ({text!r})"
        )
        raise ValueError(message)
    return text


def https_url(key: str, value: Any) -> str:
    url = non_empty_text(key, value)
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        message = f"must be an absolute https URL (mail providers require https) ({url!r})"
        raise ValueError(message)
    return url


def list_id(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    if not re.fullmatch(
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+", text
    ):
        message = f"expected a dotted id such as 'digest.example.org' (RFC 2919) ({text!r})"
        raise ValueError(message)
    return text


def host(key: str, value: Any) -> str:
    text = non_empty_text(key, value)
    if any(c.isspace() or c in "/:@" for c in text.strip("[]")) and ":" not in text.strip("[]"):
        message = f"expected a host name or IP address ({text!r})"
        raise ValueError(message)
    return text


def port(_key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        message = f"expected a port number from 1 to 65535, got {describe(value)}"
        raise ValueError(message)
    return value


def positive_number(_key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        message = f"expected a number more than 0, got {describe(value)}"
        raise ValueError(message)
    return float(value)


def non_negative_number(_key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        message = f"expected a number of 0 or more, got {describe(value)}"
        raise ValueError(message)
    return float(value)


def state_url(key: str, value: Any) -> str:
    """A PostgreSQL URL for the state, with no password in it (libpq finds that itself)."""
    url = non_empty_text(key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or any(c.isspace() for c in url):
        message = (
            f"expected a PostgreSQL URL such as 'postgresql://publisher@db.example:5432/meridian' "
            f"({url!r})"
        )
        raise ValueError(message)
    if parts.password is not None:
        message = (
            "must not hold a password: put it in PGPASSWORD or a libpq service file "
            "(~/.pg_service.conf and PGSERVICE), where the config file cannot leak it"
        )
        raise ValueError(message)
    if not parts.path.strip("/") and "service=" not in parts.query:
        message = f"names no database: add it after the host, as in '…:5432/meridian' ({url!r})"
        raise ValueError(message)
    return url


def choice(*choices: str) -> Check:
    def check(key: str, value: Any) -> str:
        text = text_value(key, value)
        if text not in choices:
            accepted = " or ".join(repr(c) for c in choices)
            message = f"expected {accepted} ({text!r})"
            raise ValueError(message)
        return text

    return check


def bounce_mailbox(key: str, value: Any) -> str:
    """A Maildir or mbox path relative to the site folder, or an imaps:// URL with a user."""
    text = non_empty_text(key, value)
    if "://" not in text:
        return relative_path(key, text)
    parts = urlsplit(text)
    if parts.scheme != "imaps" or not parts.hostname or not parts.username or parts.password:
        message = (
            "expected a Maildir or mbox path, or 'imaps://user@host[:port]/FOLDER' "
            f"(TLS only; the password in PUBLISHER_IMAP_PASSWORD) ({text!r})"
        )
        raise ValueError(message)
    return text


def folder_name(key: str, value: Any) -> str:
    """A mail folder's name: no path separators, nothing IMAP would need quoted oddly."""
    text = non_empty_text(key, value)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,63}", text):
        message = f"expected a folder name of letters, digits, ' ', '_' or '-' ({text!r})"
        raise ValueError(message)
    return text


def topic_arn(key: str, value: Any) -> str:
    """An Amazon SNS topic ARN: arn:aws:sns:<region>:<account>:<name>."""
    text = non_empty_text(key, value)
    if not re.fullmatch(r"arn:aws:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}", text):
        message = (
            "expected an SNS topic ARN such as "
            f"'arn:aws:sns:eu-west-1:123456789012:bounces' ({text!r})"
        )
        raise ValueError(message)
    return text

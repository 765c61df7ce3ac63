"""DKIM signatures (RFC 6376, relaxed/relaxed; RFC 8463 for Ed25519) and the keys they need.

A digest goes to thousands, and dkimpy signs an 80 KB message in about 22 ms
with RSA 2048 (its RSA is pure Python; parsing and canonicalising the whole
message again costs another 10 ms), which would make signing, not the SMTP
server, the limit. So the signature is made here: the body's relaxed form is
computed once per digest for its static pieces (each a whole number of
lines, so the per-line rules apply to each on its own), only the few
per-recipient lines are canonicalised per message, and the key signs through
OpenSSL (`cryptography`). tests/mail/test_signing.py proves the result equal
to dkimpy's and verifies every kind of message with dkimpy.

The header fields signed are exactly those of :data:`SIGNED_HEADERS` that a
message has: RFC 8058 §4 asks for List-Unsubscribe and List-Unsubscribe-Post.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.config import DkimAlgorithm, DkimOptions, SiteConfig
from publisher.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

KEY_VARIABLE = "PUBLISHER_DKIM_PRIVATE_KEY"
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
)
RSA_BITS = 2048
MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must refuse shorter keys
CRLF = b"\r\n"
_LINE = 78  # RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters
_WSP = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A private key ready to sign for *domain* under *selector*."""

    domain: str
    selector: str
    algorithm: DkimAlgorithm
    private_key: RSAPrivateKey | Ed25519PrivateKey

    def signature_of(self, data: bytes) -> bytes:
        """The b= bytes for the canonical header data *data*."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463 §3: Ed25519 signs the SHA-256 hash of the data, not the data.
        return self.private_key.sign(hashlib.sha256(data).digest())


# -- keys --------------------------------------------------------------------------


def site_key(site: SiteConfig, environ: Mapping[str, str] | None = None) -> DkimKey | None:
    """The site's signing key, or None without [delivery.dkim]: read and checked whole.

    The file [delivery.dkim] private_key if given, else $PUBLISHER_DKIM_PRIVATE_KEY.

    :raises ConfigError: for a key that cannot be read, is open to others, is
        not a PEM private key or does not suit the algorithm.
    """
    options = site.delivery.dkim
    if options is None:
        return None
    environ = os.environ if environ is None else environ
    if options.private_key is not None:
        where = site.display(options.private_key)
        pem = _read_key_file(options.private_key, where)
    else:
        where = KEY_VARIABLE
        pem = environ.get(KEY_VARIABLE, "").encode("utf-8", "replace")
        if not pem.strip():
            message = (
                "[delivery.dkim] private_key: missing; give the key file's path, or set "
                f"{KEY_VARIABLE} to the key's PEM text"
            )
            raise ConfigError(site.display_path, message)
    return load_key(options, pem, where=where)


def load_key(options: DkimOptions, pem: bytes, *, where: str) -> DkimKey:
    """*pem* as the key of *options*.

    :raises ConfigError: naming *where* for a key that is not PEM or not of the algorithm's type.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    # An environment variable often arrives with CRLF or literal "\n" line breaks.
    text = pem.replace(b"\\n", b"\n").replace(b"\r\n", b"\n").strip() + b"\n"
    try:
        key = load_pem_private_key(text, password=None)
    except TypeError as err:
        message = "the DKIM private key is encrypted; store it without a passphrase (mode 0600)"
        raise ConfigError(where, message) from err
    except (ValueError, UnsupportedAlgorithm) as err:
        message = (
            "not a PEM private key (expected a '-----BEGIN PRIVATE KEY-----' block, as "
            "`publisher dkim keygen` writes)"
        )
        raise ConfigError(where, message) from err
    if options.algorithm == "rsa-sha256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(where, _wrong_type(key, options.algorithm))
        if key.key_size < MIN_RSA_BITS:
            message = (
                f"an RSA key of {key.key_size} bits; DKIM verifiers refuse keys under "
                f"{MIN_RSA_BITS} bits (RFC 8301): make one of {RSA_BITS} with "
                "`publisher dkim keygen`"
            )
            raise ConfigError(where, message)
        return DkimKey(options.domain, options.selector, options.algorithm, key)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(where, _wrong_type(key, options.algorithm))
    return DkimKey(options.domain, options.selector, options.algorithm, key)


def _wrong_type(key: object, algorithm: DkimAlgorithm) -> str:
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"
    needed = "an RSA" if algorithm == "rsa-sha256" else "an Ed25519"
    other = "ed25519-sha256" if algorithm == "rsa-sha256" else "rsa-sha256"
    return (
        f"a private key of type {kind}, but [delivery.dkim] algorithm {algorithm!r} needs "
        f"{needed} key (or set algorithm = {other!r} if the DNS record has that key)"
    )


def _read_key_file(path: Path, where: str) -> bytes:
    """The key file's bytes, refused when group or others may read or change it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            message = (
                f"the DKIM private key is open to group or others (mode {mode:04o}); "
                f"make it private with: chmod 600 {where}"
            )
            raise ConfigError(where, message)
        return path.read_bytes()
    except OSError as err:
        message = f"cannot read the DKIM private key ({err.strerror or err})"
        raise ConfigError(where, message) from err


def generate_key(algorithm: DkimAlgorithm) -> RSAPrivateKey | Ed25519PrivateKey:
    """A new private key: RSA 2048 (RFC 8301's size, which every verifier knows) or Ed25519."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm == "rsa-sha256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(key: RSAPrivateKey | Ed25519PrivateKey) -> bytes:
    """The key as unencrypted PKCS #8 PEM, the one format both key types share."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_record(key: RSAPrivateKey | Ed25519PrivateKey) -> str:
    """The DNS TXT record's text: `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>` (RFC 6376 §3.6.1).

    For Ed25519, p= is the bare 32-byte public key (RFC 8463 §4).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kind = "rsa"
    else:
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kind = "ed25519"
    return f"v=DKIM1; k={kind}; p={base64.b64encode(der).decode('ascii')}"


def txt_strings(record: str) -> tuple[str, ...]:
    """*record* cut into the 255-octet strings a TXT record is made of (RFC 1035 §3.3.14)."""
    return tuple(record[start : start + 255] for start in range(0, len(record), 255))


def zone_line(selector: str, domain: str, record: str) -> str:
    """The record as a zone file line: `<selector>._domainkey.<domain>. IN TXT "…" "…"`."""
    strings = " ".join(f'"{part}"' for part in txt_strings(record))
    return f"{selector}._domainkey.{domain}. IN TXT {strings}"


def write_private_key(path: Path, pem: bytes, *, where: str) -> None:
    """Write *pem* to a new file of mode 0600; an existing file is never replaced.

    :raises ConfigError: when *path* exists or cannot be written.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        message = (
            "already exists; a key is never overwritten (the DNS may still publish it): "
            "choose another --out or --selector"
        )
        raise ConfigError(where, message) from None
    except OSError as err:
        raise ConfigError(where, f"cannot write the key ({err.strerror or err})") from err
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
    except OSError as err:
        path.unlink(missing_ok=True)
        raise ConfigError(where, f"cannot write the key ({err.strerror or err})") from err


# -- canonical forms (RFC 6376 §3.4.2, §3.4.4) ---------------------------------------


def canonical_header(name: str, value: bytes) -> bytes:
    """`name:value` CRLF in the relaxed form: lower-case name, unfolded, one space per run."""
    unfolded = value.replace(b"\r", b"").replace(b"\n", b"")
    return name.lower().encode("ascii") + b":" + _WSP.sub(b" ", unfolded).strip(b" ") + CRLF


def canonical_lines(segment: bytes) -> bytes:
    """The relaxed form of whole CRLF-ended lines: no trailing WSP, one space per run.

    Line by line, so the form of a body is the forms of its pieces joined,
    when each piece ends at a line's end; only the end of the whole body
    (:func:`canonical_body`) has a rule of its own.
    """
    return _WSP.sub(b" ", _TRAILING_WSP.sub(CRLF, segment))


def canonical_body(body: bytes) -> bytes:
    """The relaxed form of a whole body: its lines, and no empty line at the end."""
    text = canonical_lines(body)
    end = len(text)
    while text.endswith(CRLF, 0, end):
        end -= 2
    text = text + CRLF if end == len(text) else text[: end + 2]
    return b"" if text == CRLF else text


def body_hash(canonical_pieces: Iterable[bytes]) -> bytes:
    digest = hashlib.sha256()
    for piece in canonical_pieces:
        digest.update(piece)
    return digest.digest()


# -- the signature -----------------------------------------------------------------


def signature_header(
    key: DkimKey, signed: Sequence[tuple[str, bytes]], bh: bytes, *, timestamp: int
) -> bytes:
    """The DKIM-Signature field (CRLF-ended, folded at 78) over *signed*.

    *signed* is (name, canonical field) for each field signed, in h= order;
    *bh* is the SHA-256 of the canonical body. t= is *timestamp*, so the same
    message signed at the same time has the same bytes.
    """
    tokens = [
        " v=1;",
        f" a={key.algorithm};",
        " c=relaxed/relaxed;",
        f" d={key.domain};",
        f" s={key.selector};",
        f" t={timestamp};",
    ]
    names = [name for name, _field in signed]
    tokens.append(f" h={names[0]}")
    tokens.extend(f":{name}" for name in names[1:])
    tokens[-1] += ";"
    tokens.extend((f" bh={base64.b64encode(bh).decode('ascii')};", " b="))
    unsigned = _fold("DKIM-Signature:", tokens)
    value = unsigned[len("DKIM-Signature:") :]
    data = b"".join(field for _name, field in signed)
    data += canonical_header("DKIM-Signature", value.encode("ascii")).removesuffix(CRLF)
    signature = base64.b64encode(key.signature_of(data)).decode("ascii")
    return (unsigned + _fold_value(unsigned, signature)).encode("ascii") + CRLF


def _fold(start: str, tokens: Sequence[str]) -> str:
    """*start* and *tokens* on lines of at most 78; a token that does not fit starts a line.

    A token starting with a space breaks there; one starting with ":" (the
    next name of h=) breaks before the colon, where RFC 6376 §3.5 allows FWS.
    """
    lines = [start]
    for token in tokens:
        if len(lines[-1]) + len(token) <= _LINE:
            lines[-1] += token
        else:
            lines.append(token if token.startswith(" ") else " " + token)
    return "\r\n".join(lines)


def _fold_value(before: str, value: str) -> str:
    """*value* (base64) continuing the last line of *before*, the rest on lines of 78."""
    room = max(_LINE - len(before.rpartition("\n")[2]), 0)
    first, rest = value[:room], value[room:]
    parts = [rest[start : start + _LINE - 1] for start in range(0, len(rest), _LINE - 1)]
    return "\r\n ".join([first, *parts]) if first else "\r\n " + "\r\n ".join(parts)


def sign_message(key: DkimKey, data: bytes, *, timestamp: int) -> bytes:
    """*data* (a whole message, CRLF lines) with its DKIM-Signature field first.

    The slow, general path, for messages composed whole (confirmations): it
    canonicalises every byte of the body.
    """
    head, _blank, body = data.partition(CRLF + CRLF)
    signed = signed_fields(_fields(head + CRLF))
    bh = body_hash((canonical_body(body),))
    return signature_header(key, signed, bh, timestamp=timestamp) + data


def signed_fields(fields: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(name, canonical field) of each of SIGNED_HEADERS in *fields*, in their order.

    Of a field given twice the last counts, as verifiers take it (RFC 6376 §5.4.2).
    """
    found: dict[str, bytes] = {}
    for name, value in fields:
        lower = name.lower()
        if lower in SIGNED_HEADERS:
            found[lower] = value
    return [(name, canonical_header(name, found[name])) for name in SIGNED_HEADERS if name in found]


def _fields(head: bytes) -> list[tuple[str, bytes]]:
    """(name, raw value with its folding) of each field of a CRLF-ended *head*."""
    fields: list[tuple[str, bytes]] = []
    for line in head.split(CRLF)[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + CRLF + line)
            continue
        match = _FIELD_NAME.match(line)
        if match is None:
            message = f"not a header field: {line[:40]!r}"
            raise ValueError(message)
        fields.append((match.group(1).decode("ascii"), line[match.end() :]))
    return fields

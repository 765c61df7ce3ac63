"""Debian's Dovecot as a real IMAP server for one test: its own config, cert and port.

Everything lives in the test's tmp folder (config, run and state folders,
log, mail); it listens on 127.0.0.1 with TLS only (a self-signed certificate
made here with cryptography). Run as a normal user, every process runs as
that user; run as root (this machine, CI), Dovecot insists on its own
unprivileged users for the login and internal processes (the package's
`dovenull` and `dovecot`) and the mail is kept as `nobody`.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import ipaddress
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from support.smtp_server import free_port

REQUIRE_VARIABLE = "PUBLISHER_REQUIRE_DOVECOT"  # set by .ci/run: a missing dovecot fails
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bounces@gazette.example"
PASSWORD = "an imap password for the test"


def require_dovecot() -> str:
    if os.access(DOVECOT, os.X_OK):
        return DOVECOT
    reason = (
        f"{DOVECOT} is missing: install Debian's dovecot-imapd "
        "(apt-get install dovecot-imapd; .ci/run does) to run the IMAP test"
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


def _certificate(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "key.pem").chmod(0o600)
    cert = folder / "cert.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert


def _users() -> tuple[str, str, int, int]:
    """(internal user, login user, mail uid, mail gid) for the user running the test."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    nobody = pwd.getpwnam("nobody")
    return "dovecot", "dovenull", nobody.pw_uid, nobody.pw_gid


class ImapServer:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.cert = _certificate(folder)
        self.log = folder / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> Path:
        internal, login, uid, gid = _users()
        for sub in ("run", "state", "mail", "home"):
            (self.folder / sub).mkdir(exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.folder / sub, uid, gid)
        self.folder.chmod(0o755)
        (self.folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        config = self.folder / "dovecot.conf"
        group = "dovecot" if internal == "dovecot" else grp.getgrgid(os.getegid()).gr_name
        config.write_text(
            f"""base_dir = {self.folder}/run
state_dir = {self.folder}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{self.folder}/key.pem
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
auth_mechanisms = plain
mail_location = maildir:{self.folder}/mail/%n
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.folder}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""
        )
        return config

    def start(self) -> None:
        config = self.config()
        self.process = subprocess.Popen(
            [require_dovecot(), "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if "starting up" in (self.log.read_text() if self.log.exists() else ""):
                with contextlib.suppress(OSError):
                    self.client().logout()
                    return
            time.sleep(0.05)  # polling the server's own readiness, not a fixed wait
        log = self.log.read_text() if self.log.exists() else ""
        self.stop()
        message = f"dovecot did not start on 127.0.0.1:{self.port}:\n{log}"
        raise RuntimeError(message)

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self) -> imaplib.IMAP4_SSL:
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.context(), timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def imap_server(folder: Path) -> Iterator[ImapServer]:
    """A running server with its files in *folder*; as root, in a folder of /tmp instead.

    As root, Dovecot's own users must reach its files, and pytest's temporary
    folders are private to the user running the tests (mode 0700): the
    server's folder is then a fresh one in /tmp that they may enter,
    removed afterwards.
    """
    require_dovecot()
    own = None
    if os.geteuid() == 0:
        own = Path(tempfile.mkdtemp(prefix="publisher-dovecot-"))
        own.chmod(0o755)
        folder = own
    server = ImapServer(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if own is not None:
            shutil.rmtree(own, ignore_errors=True)

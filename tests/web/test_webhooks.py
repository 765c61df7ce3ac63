"""web.webhooks: SES (through SNS), Postmark and Mailgun bounce webhooks over real HTTP.

Signed with keys and a certificate made here; forged, replayed and malformed
requests are each refused and change nothing in the store; the ledger's
statuses are never touched (only its bounce column, through a token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from support.bounces import BOUNCE_ADDRESS
from support.cli import invoke
from support.clock import NOW, Clock
from support.service import append_config
from support.web_server import WebServer

from publisher import tokens
from publisher.config import load_config
from publisher.delivery.bounces import providers
from publisher.errors import ConfigError
from publisher.store import open_store
from publisher.web.webhooks import SNS_CERTS, Webhooks

TOPIC = "arn:aws:sns:eu-west-1:123456789012:gazette-bounces"
CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-"
    "0123456789abcdef0123456789abcdef.pem"
)
ENVIRON = {
    "PUBLISHER_POSTMARK_WEBHOOK_USER": "postmark",
    "PUBLISHER_POSTMARK_WEBHOOK_PASSWORD": "a long postmark password",
    "PUBLISHER_MAILGUN_SIGNING_KEY": "key-0123456789abcdef",
}
READERS = [f"reader{n}@example.org" for n in range(1, 5)]
TABLES = ("subscribers", "deliveries", "bounce_events", "subscriber_events", "suppressions")


def _key_and_certificate(name: str = "sns.amazonaws.com"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def sns_key():
    return _key_and_certificate()


@pytest.fixture
def hooked(runner, site_dir, monkeypatch, sns_key):
    """A site with all three webhooks on, digest 1 sent to four readers, and its server."""
    monkeypatch.setattr("publisher.cli._common.now", lambda: NOW)
    append_config(
        site_dir,
        f'\n[bounces]\naddress = "{BOUNCE_ADDRESS}"\n[bounces.ses]\ntopic_arn = "{TOPIC}"\n'
        "[bounces.postmark]\n[bounces.mailgun]\n",
    )
    for address in READERS:
        assert invoke(runner, site_dir, "subscribers", "add", address).exit_code == 0
    assert invoke(runner, site_dir, "digest", "send").exit_code == 0
    site = load_config(site_dir / "publisher.toml")
    certs = site.state_dir / SNS_CERTS
    certs.mkdir()
    (certs / f"{hashlib.sha256(CERT_URL.encode()).hexdigest()}.pem").write_bytes(sns_key[1])
    fetched = []

    def no_fetch(url):
        fetched.append(url)
        raise AssertionError(f"the test fetched {url}")

    clock = Clock(NOW)
    hooks = Webhooks(site, now=clock, environ=ENVIRON, fetch=no_fetch)
    with (
        WebServer(site, now=clock, webhooks=hooks) as server,
        httpx.Client(base_url=server.origin, timeout=10) as client,
    ):
        yield Hooked(site, client, clock, tokens.load_secret(site.state_dir), sns_key[0])
    assert fetched == []


class Hooked:
    def __init__(self, site, client, clock, secret, sns_private):
        self.site, self.client, self.clock = site, client, clock
        self.secret, self.sns_private = secret, sns_private

    def snapshot(self):
        with open_store(self.site.state) as store:
            return {
                table: sorted(map(tuple, store.conn.execute(f"SELECT * FROM {table}").fetchall()))
                for table in TABLES
            }

    def status(self, subscriber_id):
        with open_store(self.site.state) as store:
            return store.get_subscriber(subscriber_id).status

    def ledger(self):
        with open_store(self.site.state) as store:
            return store.conn.execute(
                "SELECT subscriber_id, status, bounce FROM deliveries ORDER BY subscriber_id"
            ).fetchall()

    def token(self, subscriber_id):
        return tokens.bounce_token(self.secret, 1, subscriber_id)


# -- signing, as the providers do it ----------------------------------------------------


def sns_message(hooked, kind, message, *, version="2", message_id="m-1", **extra):
    data = {
        "Type": kind,
        "MessageId": message_id,
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2026-11-27T12:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = hooked.sns_private.sign(
        providers.sns_canonical(data), padding.PKCS1v15(), algorithm
    )
    data["Signature"] = base64.b64encode(signature).decode()
    return data


def ses_bounce(token, *, bounce_type="Permanent", email="reader1@example.org", status="5.1.1"):
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": email, "status": status, "action": "failed"}
                ],
                "feedbackId": "0102018f-feedback",
            },
            "mail": {
                "messageId": "0102018f-ses-message",
                "destination": [email],
                "headers": [{"name": "X-Publisher-Delivery", "value": token}] if token else [],
            },
        }
    )


def mailgun_body(hooked, event, *, token="t" * 50, timestamp=None, key=None, **fields):
    timestamp = str(int((timestamp or hooked.clock()).timestamp()))
    key = key or ENVIRON["PUBLISHER_MAILGUN_SIGNING_KEY"]
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {"event": event, **fields},
    }


POSTMARK_AUTH = ("postmark", "a long postmark password")


# -- SES through SNS --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_signed_with_either_version_marks_bounced_and_shows_on_the_ledger(
    hooked, version
):
    data = sns_message(hooked, "Notification", ses_bounce(hooked.token(1)), version=version)
    answer = hooked.client.post("/news/webhooks/ses", content=json.dumps(data))
    assert (answer.status_code, answer.json()) == (
        200,
        {"status": "ok", "outcomes": ["hard bounce"]},
    )
    assert hooked.status(1) == "bounced"
    assert hooked.ledger()[0] == (1, "sent", "hard 5.1.1")
    again = hooked.client.post("/news/webhooks/ses", content=json.dumps(data))  # SNS retries
    assert again.json() == {"status": "ok", "outcomes": ["duplicate"]}


def test_ses_transient_bounce_and_complaint_by_recipient(hooked):
    soft = sns_message(
        hooked,
        "Notification",
        ses_bounce(None, bounce_type="Transient", email="READER2@example.org", status="4.2.2"),
        message_id="m-2",
    )
    assert hooked.client.post("/news/webhooks/ses", content=json.dumps(soft)).json()[
        "outcomes"
    ] == ["soft bounce"]
    complaint = json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "reader3@example.org"}],
                "complaintFeedbackType": "abuse",
            },
            "mail": {"messageId": "x", "headers": []},
        }
    )
    data = sns_message(hooked, "Notification", complaint, message_id="m-3")
    assert hooked.client.post("/news/webhooks/ses", content=json.dumps(data)).json()[
        "outcomes"
    ] == ["complaint"]
    assert [hooked.status(n) for n in (2, 3)] == ["active", "unsubscribed"]
    # Without a token no ledger row is touched.
    assert [row[2] for row in hooked.ledger()] == [None, None, None, None]


def test_an_sns_subscription_confirmation_is_verified_and_left_to_the_operator(hooked, caplog):
    url = f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=abc"
    data = sns_message(
        hooked,
        "SubscriptionConfirmation",
        "You have chosen to subscribe",
        SubscribeURL=url,
        Token="abc",
    )
    before = hooked.snapshot()
    answer = hooked.client.post("/news/webhooks/ses", content=json.dumps(data))
    assert answer.json() == {"status": "subscription awaits the operator's confirmation"}
    assert f"SNS asks to confirm the subscription of {TOPIC}: open {url}" in caplog.text
    assert hooked.snapshot() == before


def _forged_sns(hooked):
    good = sns_message(hooked, "Notification", ses_bounce(hooked.token(1)))
    other_key, _other_certificate = _key_and_certificate()
    forged = dict(good, Message=ses_bounce(hooked.token(2)))  # a changed message, old signature
    resigned = sns_message(hooked, "Notification", ses_bounce(hooked.token(1)))
    resigned["Signature"] = base64.b64encode(
        other_key.sign(providers.sns_canonical(resigned), padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    return [
        (forged, "forged or replayed: signature does not match"),
        (resigned, "forged or replayed: signature does not match"),
        (
            dict(
                good,
                SigningCertURL="https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-0123.pem",
            ),
            "forged or replayed: SigningCertURL is not an SNS certificate "
            "('https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-0123.pem')",
        ),
        (
            dict(
                good,
                SigningCertURL="http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem",
            ),
            "forged or replayed: SigningCertURL is not an SNS certificate "
            "('http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem')",
        ),
        (
            dict(good, TopicArn="arn:aws:sns:eu-west-1:999999999999:other"),
            "forged or replayed: not the configured topic "
            "('arn:aws:sns:eu-west-1:999999999999:other')",
        ),
        (dict(good, SignatureVersion="3"), "forged or replayed: unknown SignatureVersion '3'"),
    ]


def test_forged_sns_messages_get_401_and_change_nothing(hooked):
    before = hooked.snapshot()
    for data, error in _forged_sns(hooked):
        answer = hooked.client.post("/news/webhooks/ses", content=json.dumps(data))
        assert (answer.status_code, answer.json()) == (401, {"error": error})
    assert hooked.snapshot() == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            b"{not json",
            "malformed: not JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (b"[]", "malformed: expected a JSON object"),
        (b'{"Type": "Notification"}', "malformed: SNS: missing or not a str: 'Message'"),
        (b'{"Type": "Other"}', "malformed: SNS: unknown Type 'Other'"),
    ],
)
def test_malformed_sns_messages_get_400_and_change_nothing(hooked, body, error):
    before = hooked.snapshot()
    answer = hooked.client.post("/news/webhooks/ses", content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert hooked.snapshot() == before


def test_the_certificate_is_fetched_once_from_its_sns_url_and_kept(tmp_path, sns_key):
    fetched = []

    def fetch(url):
        fetched.append(url)
        return sns_key[1]

    verifier = providers.SnsVerifier(TOPIC, tmp_path / "certs", fetch)

    class Signer:
        sns_private = sns_key[0]

    for message_id in ("a", "b"):
        verifier.verify(sns_message(Signer, "Notification", "{}", message_id=message_id))
    assert fetched == [CERT_URL]
    assert [p.name for p in (tmp_path / "certs").iterdir()] == [
        f"{hashlib.sha256(CERT_URL.encode()).hexdigest()}.pem"
    ]


# -- Postmark ---------------------------------------------------------------------------


def _postmark_bounce(**overrides):
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": "reader2@example.org",
        "Details": "smtp; 550 5.1.1 The email account that you tried to reach does not exist",
        "Metadata": {},
        **overrides,
    }


def test_postmark_bounce_and_complaint_with_basic_auth(hooked):
    body = _postmark_bounce(Metadata={"publisher-delivery": hooked.token(2)})
    answer = hooked.client.post("/news/webhooks/postmark", json=body, auth=POSTMARK_AUTH)
    assert (answer.status_code, answer.json()) == (
        200,
        {"status": "ok", "outcomes": ["hard bounce"]},
    )
    again = hooked.client.post("/news/webhooks/postmark", json=body, auth=POSTMARK_AUTH)
    assert again.json()["outcomes"] == ["duplicate"]
    complaint = {"RecordType": "SpamComplaint", "ID": 42, "Email": "reader4@example.org"}
    answer = hooked.client.post("/news/webhooks/postmark", json=complaint, auth=POSTMARK_AUTH)
    assert answer.json()["outcomes"] == ["complaint"]
    assert [hooked.status(n) for n in (2, 4)] == ["bounced", "unsubscribed"]
    assert [row[2] for row in hooked.ledger()] == [None, "hard 5.1.1", None, None]
    with open_store(hooked.site.state) as store:
        key = tokens.suppression_key(hooked.secret, "reader4@example.org")
        assert store.suppression_reason(key) == "complained"
        assert store.subscriber_events(key)[-1].source == "webhook postmark event 42"


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        (None, {}),
        (("postmark", "wrong"), {}),
        (None, {"Authorization": "Basic !!!"}),
        (None, {"Authorization": "Bearer x"}),
    ],
)
def test_postmark_without_the_right_credentials_gets_401_and_changes_nothing(hooked, auth, headers):
    before = hooked.snapshot()
    answer = hooked.client.post(
        "/news/webhooks/postmark", json=_postmark_bounce(), auth=auth, headers=headers
    )
    assert (answer.status_code, answer.json()) == (
        401,
        {"error": "forged or replayed: wrong or missing credentials"},
    )
    assert hooked.snapshot() == before


def test_malformed_postmark_requests_get_400_and_change_nothing(hooked):
    before = hooked.snapshot()
    for body, error in [
        (
            {"ID": 1, "Email": "x@example.org"},
            "malformed: Postmark: missing or not a str: 'RecordType'",
        ),
        (_postmark_bounce(ID=None), "malformed: Postmark: missing or not a number: 'ID'"),
        (_postmark_bounce(Type=7), "malformed: Postmark: missing or not a str: 'Type'"),
    ]:
        answer = hooked.client.post("/news/webhooks/postmark", json=body, auth=POSTMARK_AUTH)
        assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert hooked.snapshot() == before


# -- Mailgun ----------------------------------------------------------------------------


def _failed(hooked, severity="permanent", **extra):
    return mailgun_body(
        hooked,
        "failed",
        id="G9Bn5sL1TNuK-b-E6yhHuA",
        severity=severity,
        recipient="reader3@example.org",
        **{"delivery-status": {"code": 550, "enhanced-code": "5.1.1"}},
        **{"user-variables": {"publisher-delivery": hooked.token(3)}},
        **extra,
    )


def test_mailgun_signed_failure_counts_once_and_a_replay_is_refused(hooked):
    body = _failed(hooked)
    answer = hooked.client.post("/news/webhooks/mailgun", json=body)
    assert (answer.status_code, answer.json()) == (
        200,
        {"status": "ok", "outcomes": ["hard bounce"]},
    )
    assert hooked.status(3) == "bounced"
    assert hooked.ledger()[2] == (3, "sent", "hard 5.1.1")
    before = hooked.snapshot()
    replay = hooked.client.post("/news/webhooks/mailgun", json=body)
    assert (replay.status_code, replay.json()) == (
        401,
        {"error": "forged or replayed: this signed request was seen before"},
    )
    assert hooked.snapshot() == before


def test_mailgun_forged_or_stale_requests_get_401_and_change_nothing(hooked):
    before = hooked.snapshot()
    stale = hooked.clock() - timedelta(minutes=6)
    cases = [
        (
            mailgun_body(
                hooked,
                "complained",
                key="key-of-someone-else",
                id="c1",
                recipient="reader1@example.org",
            ),
            "forged or replayed: signature does not match",
        ),
        (
            mailgun_body(
                hooked, "complained", timestamp=stale, id="c2", recipient="reader1@example.org"
            ),
            f"forged or replayed: timestamp {int(stale.timestamp())} is more than 5 minutes "
            "from now",
        ),
    ]
    tampered = _failed(hooked)
    tampered["signature"]["token"] = "u" * 50
    cases.append((tampered, "forged or replayed: signature does not match"))
    for body, error in cases:
        answer = hooked.client.post("/news/webhooks/mailgun", json=body)
        assert (answer.status_code, answer.json()) == (401, {"error": error})
    assert hooked.snapshot() == before


def test_mailgun_malformed_requests_get_400_and_keep_no_nonce(hooked):
    before = hooked.snapshot()
    no_id = mailgun_body(hooked, "failed", severity="permanent", recipient="reader1@example.org")
    answer = hooked.client.post("/news/webhooks/mailgun", json=no_id)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "malformed: Mailgun event-data: missing or not a str: 'id'"},
    )
    no_signature = hooked.client.post("/news/webhooks/mailgun", json={"event-data": {}})
    assert no_signature.json() == {
        "error": "malformed: Mailgun: missing or not a dict: 'signature'"
    }
    assert hooked.snapshot() == before
    with open_store(hooked.site.state) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM webhook_nonces").fetchone()[0] == 0
    # The same token, now with a readable event, is accepted: the 400 kept nothing.
    fixed = mailgun_body(hooked, "complained", id="c3", recipient="reader1@example.org")
    assert hooked.client.post("/news/webhooks/mailgun", json=fixed).json()["outcomes"] == [
        "complaint"
    ]


def test_mailgun_temporary_failure_is_soft_and_other_events_are_ignored(hooked):
    soft = _failed(hooked, severity="temporary", token="s" * 50)
    soft["event-data"]["id"] = "soft-1"
    assert hooked.client.post("/news/webhooks/mailgun", json=soft).json()["outcomes"] == [
        "soft bounce"
    ]
    delivered = mailgun_body(
        hooked, "delivered", token="d" * 50, id="d1", recipient="reader1@example.org"
    )
    assert hooked.client.post("/news/webhooks/mailgun", json=delivered).json() == {
        "status": "ok",
        "outcomes": [],
    }
    assert hooked.status(3) == "active"


# -- configuration ----------------------------------------------------------------------


def test_a_webhook_without_its_keys_in_the_environment_is_a_configuration_error(site_dir, now):
    append_config(site_dir, "\n[bounces.postmark]\n[bounces.mailgun]\n")
    site = load_config(site_dir / "publisher.toml")
    with pytest.raises(ConfigError) as raised:
        Webhooks(site, now=lambda: now, environ={})
    assert str(raised.value) == (
        "PUBLISHER_POSTMARK_WEBHOOK_USER, PUBLISHER_POSTMARK_WEBHOOK_PASSWORD: not set: "
        "[bounces.postmark] needs both (its webhook's basic auth)"
    )
    postmark_only = {k: v for k, v in ENVIRON.items() if "POSTMARK" in k}
    with pytest.raises(ConfigError) as raised:
        Webhooks(site, now=lambda: now, environ=postmark_only)
    assert str(raised.value) == (
        "PUBLISHER_MAILGUN_SIGNING_KEY: not set: [bounces.mailgun] needs the webhook signing key"
    )


def test_webhooks_that_are_not_configured_are_not_there(site, now):
    with WebServer(site, now=lambda: now) as server:
        answer = httpx.post(server.url("/news/webhooks/postmark"), json={}, timeout=10)
    assert answer.status_code in (404, 405)

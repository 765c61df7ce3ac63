"""config.reading: publisher.toml checked key by key, one exact line per bad key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from publisher.config import EACH_ARTICLE, Cadence, DkimOptions, Topic, load_config
from publisher.errors import ConfigError

VALID = """
[site]
title = "Test Gazette"
base_url = "https://gazette.example/news"
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "publisher.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "content").mkdir(exist_ok=True)
    return load_config(path)


def test_defaults(tmp_path):
    site = _load(tmp_path, VALID)
    assert site.base_url == "https://gazette.example/news/"
    assert site.description == "Test Gazette"
    assert site.language == "en"
    assert site.timezone.key == "UTC"
    assert site.author.name == "Test Gazette"
    assert site.author.email is None
    assert site.permalink == "{year}/{month}/{slug}/"
    assert site.content_dir == tmp_path.resolve() / "content"
    assert site.output_dir == tmp_path.resolve() / "feeds"
    assert site.state_dir == tmp_path.resolve() / ".publisher"
    assert site.feeds.formats == ("rss", "atom", "json")
    assert site.feeds.max_items == 50
    assert site.feeds.tag_feeds is True
    assert site.feeds.full_content is True
    assert site.feeds.url == "https://gazette.example/news/feeds/"


def test_every_key(tmp_path):
    site = _load(
        tmp_path,
        """
[site]
title = "Meridian"
description = "Diplomacy from Vienna."
base_url = "https://meridian.example/"
language = "de-AT"
timezone = "Europe/Vienna"
author = "Lena Hofbauer <lena@meridian.example>"
permalink = "news/{year}/{slug}.html"

[paths]
content = "articles"
output = "public/feeds"
state = "var/state"

[feeds]
formats = ["json", "rss"]
max_items = 10
tag_feeds = false
content = "summary"
url = "https://cdn.meridian.example/feeds"
""",
    )
    assert site.language == "de-AT"
    assert site.timezone.key == "Europe/Vienna"
    assert (site.author.name, site.author.email) == ("Lena Hofbauer", "lena@meridian.example")
    assert site.content_dir.name == "articles"
    assert site.output_dir == tmp_path.resolve() / "public" / "feeds"
    assert site.feeds.formats == ("rss", "json")
    assert (site.feeds.max_items, site.feeds.tag_feeds, site.feeds.full_content) == (
        10,
        False,
        False,
    )
    assert site.feeds.url == "https://cdn.meridian.example/feeds/"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            VALID + "\n[feeds]\nmax_item = 3\n",
            "[feeds] unknown key 'max_item' (did you mean 'max_items'?); "
            "known keys: content, formats, max_items, tag_feeds, url, websub_hub",
        ),
        (
            VALID.replace("[site]", "[sites]"),
            "unknown key 'sites' (did you mean 'site'?); "
            "known keys: bounces, delivery, digest, feeds, pages, paths, schedule, site, "
            "state, topics, web\n"
            "[site]: missing table",
        ),
        (
            '[site]\ntitle = "T"\nbase_url = "example.org"\n',
            "[site] base_url: must be an absolute http(s) URL such as 'https://example.org/' "
            "('example.org')",
        ),
        (
            '[site]\ntitle = "T"\nbase_url = "/news/"\n',
            "[site] base_url: must be an absolute http(s) URL such as 'https://example.org/' "
            "('/news/')",
        ),
        (
            '[site]\ntitle = "T"\nbase_url = "ftp://example.org/"\n',
            "[site] base_url: must be an absolute http(s) URL such as 'https://example.org/' "
            "('ftp://example.org/')",
        ),
        (
            '[site]\ntitle = 3\nbase_url = "https://e.org/"\n',
            "[site] title: expected a string, got an integer (3)",
        ),
        ('[site]\nbase_url = "https://e.org/"\n', "[site] title: missing (required)"),
        (
            'title = "T"\n',
            "unknown key 'title' (did you mean 'site'?); "
            "known keys: bounces, delivery, digest, feeds, pages, paths, schedule, site, "
            "state, topics, web\n"
            "[site]: missing table",
        ),
        (
            VALID + 'timezone = "Mars/Olympus"\n',
            "[site] timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as "
            "'Europe/Vienna' or 'UTC'",
        ),
        (
            VALID + 'language = "en_US"\n',
            "[site] language: expected a language tag such as 'en' or 'de-AT' ('en_US')",
        ),
        (
            VALID + 'permalink = "{year}/{title}/"\n',
            "[site] permalink: unknown placeholder {title} in '{year}/{title}/'; "
            "use {year}, {month}, {day} and {slug}",
        ),
        (
            VALID + 'permalink = "{year}/"\n',
            "[site] permalink: must contain {slug} so that every article gets its own URL "
            "('{year}/')",
        ),
        (
            VALID + 'author_email = "desk"\n',
            "[site] author_email: expected an email address such as 'desk@example.org' ('desk')",
        ),
        (
            VALID + "\n[feeds]\nmax_items = 0\n",
            "[feeds] max_items: must be between 1 and 10000 (0)",
        ),
        (
            VALID + '\n[feeds]\nmax_items = "50"\n',
            "[feeds] max_items: expected an integer, got a string ('50')",
        ),
        (
            VALID + "\n[feeds]\nmax_items = true\n",
            "[feeds] max_items: expected an integer, got a boolean (True)",
        ),
        (
            VALID + '\n[feeds]\nformats = ["rss", "rdf"]\n',
            "[feeds] formats: unknown format 'rdf'; choose from rss, atom, json",
        ),
        (
            VALID + "\n[feeds]\nformats = []\n",
            "[feeds] formats: expected a non-empty array of ['rss', 'atom', 'json'], "
            "got an array ([])",
        ),
        (
            VALID + '\n[feeds]\ntag_feeds = "yes"\n',
            "[feeds] tag_feeds: expected true or false, got a string ('yes')",
        ),
        (
            VALID + '\n[feeds]\ncontent = "excerpt"\n',
            "[feeds] content: expected 'full' or 'summary' ('excerpt')",
        ),
        (
            VALID + '\n[paths]\noutput = "."\n',
            "[paths] output: must be a folder of its own, not the site folder or one holding the "
            "content ('.')",
        ),
        (
            VALID + '\n[paths]\noutput = "content/feeds"\n',
            "[paths] output: must not be inside the content folder ('content/feeds')",
        ),
        (
            '[site\ntitle = "T"\n',
            "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
        ),
    ],
)
def test_bad_config(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    error = raised.value
    assert error.where == str(tmp_path / "publisher.toml")
    assert error.message == message
    assert error.exit_code == 2


def test_several_problems_are_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, '[site]\ntitle = ""\nbase_url = "x"\nlanguage = 1\n')
    assert raised.value.lines() == [
        f"{tmp_path / 'publisher.toml'}: [site] title: must not be empty",
        f"{tmp_path / 'publisher.toml'}: [site] base_url: must be an absolute http(s) URL such as "
        "'https://example.org/' ('x')",
        f"{tmp_path / 'publisher.toml'}: [site] language: expected a string, got an integer (1)",
    ]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "nowhere.toml")
    assert (
        raised.value.message == "not found (run publisher in a site folder, or pass --config PATH)"
    )


def test_not_utf8(tmp_path):
    path = tmp_path / "publisher.toml"
    path.write_bytes(b'[site]\ntitle = "\xff"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.message == "not valid UTF-8 (byte 0xff at offset 16)"


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    site_folder = tmp_path / "site"
    site_folder.mkdir()
    (site_folder / "publisher.toml").write_text(VALID, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    site = load_config(Path("site/publisher.toml"))
    assert site.content_dir == site_folder.resolve() / "content"
    assert site.display_path == "site/publisher.toml"


def test_digest_and_delivery_defaults(tmp_path):
    site = _load(tmp_path, VALID + 'author_email = "desk@gazette.example"\n')
    assert str(site.digest.cadence) == "weekly on monday at 07:00"
    assert site.digest.max_articles == 20
    assert site.digest.sender == "Test Gazette <desk@gazette.example>"
    assert site.digest.unsubscribe_url == "https://gazette.example/news/unsubscribe"
    assert site.digest.preferences_url == "https://gazette.example/news/preferences"
    assert site.digest.list_id == "digest.gazette.example"
    assert site.delivery.method == "outbox"
    assert site.delivery.outbox_dir == tmp_path.resolve() / "outbox"
    assert (site.delivery.smtp.host, site.delivery.smtp.port) == ("127.0.0.1", 25)


def test_digest_and_delivery_values(tmp_path):
    site = _load(
        tmp_path,
        VALID
        + """
[digest]
cadence = "Daily at 6:30"
from = "Briefing <briefing@gazette.example>"
preferences_url = "https://gazette.example/mail/choose"

[delivery]
method = "smtp"
rate = 20

[delivery.smtp]
host = "mail.gazette.example"
port = 587
security = "starttls"
username = "mailer"
""",
    )
    assert str(site.digest.cadence) == "daily at 06:30"
    assert site.digest.preferences_url == "https://gazette.example/mail/choose"
    assert site.digest.sender == "Briefing <briefing@gazette.example>"
    assert (site.delivery.method, site.delivery.rate) == ("smtp", 20.0)
    smtp = site.delivery.smtp
    assert (smtp.host, smtp.port, smtp.security, smtp.username) == (
        "mail.gazette.example",
        587,
        "starttls",
        "mailer",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[digest]\ncadence = "every monday"\n',
            "[digest] cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "
            "or 'each article' "
            "('every monday')",
        ),
        (
            '[digest]\ncadence = "weekly on funday at 07:00"\n',
            "[digest] cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "
            "or 'each article' "
            "('weekly on funday at 07:00')",
        ),
        (
            '[digest]\ncadence = "daily at 25:00"\n',
            "[digest] cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "
            "or 'each article' "
            "('daily at 25:00')",
        ),
        (
            '[digest]\nfrom = "nobody"\n',
            "[digest] from: expected an address such as 'Meridian Briefing <briefing@example.org>' "
            "('nobody')",
        ),
        (
            '[digest]\nunsubscribe_url = "http://gazette.example/u"\n',
            "[digest] unsubscribe_url: must be an absolute https URL "
            "(mail providers require https) ('http://gazette.example/u')",
        ),
        (
            '[digest]\npreferences_url = "/choose"\n',
            "[digest] preferences_url: must be an absolute https URL "
            "(mail providers require https) ('/choose')",
        ),
        (
            '[delivery]\nmethod = "pigeon"\n',
            "[delivery] method: expected 'outbox' or 'smtp' ('pigeon')",
        ),
        (
            "[delivery.smtp]\nport = 70000\n",
            "[delivery.smtp] port: expected a port number from 1 to 65535, got an integer (70000)",
        ),
        (
            '[delivery.smtp]\nsecurity = "ssl"\n',
            "[delivery.smtp] security: expected 'none' or 'starttls' or 'tls' ('ssl')",
        ),
        (
            '[delivery.smtp]\npassword = "hunter2"\n',
            "[delivery.smtp] password: secrets do not belong in the config file; "
            "set PUBLISHER_SMTP_PASSWORD in the environment",
        ),
        (
            "[delivery]\nrate = -1\n",
            "[delivery] rate: expected a number of 0 or more, got an integer (-1)",
        ),
    ],
)
def test_bad_digest_and_delivery(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, VALID + "\n" + text)
    assert raised.value.message == message


# -- [state]: SQLite by default, or a PostgreSQL database ------------------------------

PG_URL = "postgresql://publisher@127.0.0.1:5432/meridian"


def test_state_is_sqlite_in_the_state_folder_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    site = _load(tmp_path, VALID)
    assert site.state_url is None
    assert site.state == tmp_path.resolve() / ".publisher" / "state.db"


def test_state_url_from_the_file_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    text = VALID + f'\n[state]\nurl = "{PG_URL}"\n'
    assert _load(tmp_path, text).state == PG_URL
    other = "postgres://sender@127.0.0.1/meridian"
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"  {other} ")
    assert _load(tmp_path, text).state == other
    assert _load(tmp_path, VALID).state == other
    service = "postgresql:///?service=meridian"  # the database named in a libpq service file
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", service)
    assert _load(tmp_path, VALID).state == service


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://publisher:hunter2@db.example/meridian",
            "must not hold a password: put it in PGPASSWORD or a libpq service file "
            "(~/.pg_service.conf and PGSERVICE), where the config file cannot leak it",
        ),
        (
            "mysql://publisher@db.example/meridian",
            "expected a PostgreSQL URL such as 'postgresql://publisher@db.example:5432/meridian' "
            "('mysql://publisher@db.example/meridian')",
        ),
        (
            "postgresql://publisher@db.example:5432/",
            "names no database: add it after the host, as in '…:5432/meridian' "
            "('postgresql://publisher@db.example:5432/')",
        ),
    ],
)
def test_bad_state_url(tmp_path, monkeypatch, url, message):
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, VALID + f'\n[state]\nurl = "{url}"\n')
    assert raised.value.message == f"[state] url: {message}"
    assert "hunter2" not in str(raised.value)

    monkeypatch.setenv("PUBLISHER_DATABASE_URL", url)
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, VALID)
    assert (raised.value.where, raised.value.message) == ("PUBLISHER_DATABASE_URL", message)
    assert "hunter2" not in str(raised.value)


def test_sender_timeout(tmp_path):
    assert _load(tmp_path, VALID).delivery.sender_timeout == 60
    site = _load(tmp_path, VALID + "\n[delivery]\nsender_timeout = 15.5\n")
    assert site.delivery.sender_timeout == 15.5
    for bad, got in (
        ("0", "an integer (0)"),
        ("-1.5", "a number (-1.5)"),
        ('"60"', "a string ('60')"),
    ):
        with pytest.raises(ConfigError) as raised:
            _load(tmp_path, VALID + f"\n[delivery]\nsender_timeout = {bad}\n")
        assert raised.value.message == (
            f"[delivery] sender_timeout: expected a number more than 0, got {got}"
        )


def test_bounce_address(tmp_path):
    assert _load(tmp_path, VALID).bounces.address is None
    site = _load(tmp_path, VALID + '[bounces]\naddress = "bounces@gazette.example"\n')
    assert site.bounces.address == "bounces@gazette.example"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '"bounces"',
            "[bounces] address: expected an email address such as 'desk@example.org' ('bounces')",
        ),
        (
            '"bounces+x@gazette.example"',
            "[bounces] address: must not contain '+', which separates the token "
            "('bounces+x@gazette.example')",
        ),
    ],
)
def test_bad_bounce_address(tmp_path, value, message):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, VALID + f"[bounces]\naddress = {value}\n")
    assert message in str(caught.value)


def test_dkim_table(tmp_path):
    assert _load(tmp_path, VALID).delivery.dkim is None
    site = _load(
        tmp_path,
        VALID + '[delivery.dkim]\ndomain = "Gazette.Example."\nselector = "s2026"\n'
        'private_key = "keys/dkim.pem"\n',
    )
    assert site.delivery.dkim == DkimOptions(
        "gazette.example", "s2026", tmp_path.resolve() / "keys" / "dkim.pem", "rsa-sha256"
    )
    from_environment = _load(
        tmp_path,
        VALID + '[delivery.dkim]\ndomain = "gazette.example"\nselector = "e.2026"\n'
        'algorithm = "ed25519-sha256"\n',
    )
    assert from_environment.delivery.dkim == DkimOptions(
        "gazette.example", "e.2026", None, "ed25519-sha256"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'domain = "gazette.example"\nselector = "s1"\nalgorithm = "rsa-sha1"\n',
            "[delivery.dkim] algorithm: expected 'rsa-sha256' or 'ed25519-sha256' ('rsa-sha1')",
        ),
        ('domain = "gazette.example"\n', "[delivery.dkim] selector: missing (required)"),
        ('selector = "s1"\n', "[delivery.dkim] domain: missing (required)"),
        (
            'domain = "gazette.example"\nselector = "s_1"\n',
            "[delivery.dkim] selector: expected a selector such as 's2026' (letters, digits "
            "and '-', dots between labels) ('s_1')",
        ),
        (
            'domain = "gazette"\nselector = "s1"\n',
            "[delivery.dkim] domain: expected a domain name such as 'example.org' ('gazette')",
        ),
        (
            'domain = "gazette.example"\nselector = "s1"\nkey = "k.pem"\n',
            "[delivery.dkim] unknown key 'key'; known keys: algorithm, domain, private_key, "
            "selector",
        ),
    ],
)
def test_bad_dkim_table(tmp_path, table, message):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, VALID + "[delivery.dkim]\n" + table)
    assert str(caught.value) == f"{tmp_path / 'publisher.toml'}: {message}"


def test_bounce_intake_and_webhook_keys(tmp_path):
    default = _load(tmp_path, VALID).bounces
    assert (default.mailbox, default.every, default.processed_folder, default.soft_limit) == (
        None,
        timedelta(minutes=15),
        "Processed",
        3,
    )
    assert not default.has_webhooks
    site = _load(
        tmp_path,
        VALID + '[bounces]\nmailbox = "mail/bounces"\nevery = "5m"\nprocessed_folder = "Done"\n'
        "soft_limit = 2\n[bounces.ses]\n"
        'topic_arn = "arn:aws:sns:eu-west-1:123456789012:bounces"\n'
        "[bounces.postmark]\n[bounces.mailgun]\n",
    )
    bounces = site.bounces
    assert bounces.mailbox == str(tmp_path / "mail" / "bounces")
    assert (bounces.every, bounces.processed_folder, bounces.soft_limit) == (
        timedelta(minutes=5),
        "Done",
        2,
    )
    assert bounces.ses_topic_arn == "arn:aws:sns:eu-west-1:123456789012:bounces"
    assert (bounces.postmark, bounces.mailgun, bounces.has_webhooks) == (True, True, True)
    url = _load(
        tmp_path, VALID + '[bounces]\nmailbox = "imaps://b%40x.example@imap.x.example/INBOX"\n'
    )
    assert url.bounces.mailbox == "imaps://b%40x.example@imap.x.example/INBOX"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'mailbox = "imap://u@h/INBOX"',
            "[bounces] mailbox: expected a Maildir or mbox path, or "
            "'imaps://user@host[:port]/FOLDER' (TLS only; the password in "
            "PUBLISHER_IMAP_PASSWORD) ('imap://u@h/INBOX')",
        ),
        (
            'mailbox = "imaps://u:secret@h/INBOX"',
            "[bounces] mailbox: expected a Maildir or mbox path, or "
            "'imaps://user@host[:port]/FOLDER' (TLS only; the password in "
            "PUBLISHER_IMAP_PASSWORD) ('imaps://u:secret@h/INBOX')",
        ),
        (
            'processed_folder = "../x"',
            "[bounces] processed_folder: expected a folder name of letters, digits, ' ', '_' "
            "or '-' ('../x')",
        ),
        ("soft_limit = 0", "[bounces] soft_limit: must be between 1 and 10000 (0)"),
        ('every = "1s"', "[bounces] every: must be between 10s and 168h ('1s')"),
        (
            '[bounces.ses]\ntopic_arn = "my-topic"',
            "[bounces.ses] topic_arn: expected an SNS topic ARN such as "
            "'arn:aws:sns:eu-west-1:123456789012:bounces' ('my-topic')",
        ),
        ("[bounces.ses]", "[bounces.ses] topic_arn: missing (required)"),
        ('postmark = "yes"', "[bounces] postmark: expected a table, got a string ('yes')"),
        (
            "[bounces.mailgun]\nkey = 1",
            "[bounces.mailgun] unknown key 'key'; known keys: ",
        ),
    ],
)
def test_bad_bounce_intake_keys(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, VALID + f"[bounces]\n{text}\n")
    assert message in str(caught.value)


# -- [topics] and the cadences subscribers may choose ----------------------------------


def test_no_topics_and_one_cadence_by_default(tmp_path):
    site = _load(tmp_path, VALID)
    assert site.topics == ()
    assert site.digest.cadences == (Cadence(0, 7, 0),)
    assert site.digest.max_per_day == 5
    assert site.digest.article_subject == "{{ site_title }}: {{ articles[0].title }}"
    daily = _load(tmp_path, VALID + '\n[digest]\ncadence = "daily at 06:00"\n')
    assert daily.digest.cadences == (Cadence(None, 6, 0),)  # the default alone


def test_topics_cadences_and_the_each_article_keys(tmp_path):
    site = _load(
        tmp_path,
        VALID
        + """
[digest]
cadence = "daily at 07:00"
cadences = ["weekly on friday at 16:30", "Daily at 7:00", "each article", "daily at 07:00"]
max_per_day = 3
article_subject = "New: {{ articles[0].title }}"

[topics.energy]
title = "Energy"
tags = ["Energy", "gas prices", "Energy"]

[topics.danube-region]
title = " Danube region "
tags = ["Vienna"]
description = "The river's cities and states."
""",
    )
    assert site.topics == (
        Topic("energy", "Energy", ("Energy", "gas prices")),  # in the order written, once each
        Topic("danube-region", "Danube region", ("Vienna",), "The river's cities and states."),
    )
    assert site.digest.cadence == Cadence(None, 7, 0)
    assert site.digest.cadences == (Cadence(4, 16, 30), Cadence(None, 7, 0), EACH_ARTICLE)
    assert [str(c) for c in site.digest.cadences] == [
        "weekly on friday at 16:30",
        "daily at 07:00",
        "each article",
    ]
    assert (site.digest.max_per_day, site.digest.article_subject) == (
        3,
        "New: {{ articles[0].title }}",
    )


def test_each_article_may_be_the_default(tmp_path):
    site = _load(tmp_path, VALID + '\n[digest]\ncadence = "Each  Article"\n')
    assert site.digest.cadence is EACH_ARTICLE
    assert site.digest.cadences == (EACH_ARTICLE,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[topics.Energy]\ntitle = "Energy"\ntags = ["energy"]\n',
            "[topics.Energy]: a topic's name is lower-case letters, digits and '-', "
            "starting with one ('Energy')",
        ),
        (
            '[topics.-energy]\ntitle = "Energy"\ntags = ["energy"]\n',
            "[topics.-energy]: a topic's name is lower-case letters, digits and '-', "
            "starting with one ('-energy')",
        ),
        (
            '[topics.energy_and_gas]\ntitle = "Energy"\ntags = ["energy"]\n',
            "[topics.energy_and_gas]: a topic's name is lower-case letters, digits and '-', "
            "starting with one ('energy_and_gas')",
        ),
        (
            f'[topics.{"a" * 65}]\ntitle = "Long"\ntags = ["long"]\n',
            f"[topics.{'a' * 65}]: a topic's name is lower-case letters, digits and '-', "
            f"starting with one ('{'a' * 65}')",
        ),
        ("[topics]\nenergy = 1\n", "[topics.energy]: expected a table, got an integer (1)"),
        ('[topics.energy]\ntags = ["energy"]\n', "[topics.energy] title: missing (required)"),
        ('[topics.energy]\ntitle = "Energy"\n', "[topics.energy] tags: missing (required)"),
        (
            '[topics.energy]\ntitle = ""\ntags = ["energy"]\n',
            "[topics.energy] title: must not be empty",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntags = "energy"\n',
            "[topics.energy] tags: expected a non-empty list of tag names, got a string ('energy')",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntags = []\n',
            "[topics.energy] tags: expected a non-empty list of tag names, got an array ([])",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntags = ["energy", " "]\n',
            "[topics.energy] tags: must not be empty",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntags = ["energy", 7]\n',
            "[topics.energy] tags: expected a string, got an integer (7)",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntags = ["energy"]\ndescription = ""\n',
            "[topics.energy] description: must not be empty",
        ),
        (
            '[topics.energy]\ntitle = "Energy"\ntag = ["energy"]\n',
            "[topics.energy] unknown key 'tag' (did you mean 'tags'?); "
            "known keys: description, tags, title\n"
            "[topics.energy] tags: missing (required)",
        ),
        (
            '[digest]\ncadences = "daily at 07:00"\n',
            "[digest] cadences: expected a non-empty list of cadences, got a string "
            "('daily at 07:00')",
        ),
        (
            "[digest]\ncadences = []\n",
            "[digest] cadences: expected a non-empty list of cadences, got an array ([])",
        ),
        (
            '[digest]\ncadences = ["weekly on monday at 07:00", "hourly"]\n',
            "[digest] cadences: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "
            "or 'each article' ('hourly')",
        ),
        (
            '[digest]\ncadences = ["weekly on monday at 07:00", 7]\n',
            "[digest] cadences: expected a string, got an integer (7)",
        ),
        (
            '[digest]\ncadences = ["weekly on monday at 07:00", ""]\n',
            "[digest] cadences: must not be empty",
        ),
        (
            '[digest]\ncadences = ["daily at 07:00", "each article"]\n',
            "[digest] cadences: must include the default cadence 'weekly on monday at 07:00' "
            "(has 'daily at 07:00', 'each article')",
        ),
        (
            '[digest]\ncadence = "each article"\ncadences = ["daily at 07:00"]\n',
            "[digest] cadences: must include the default cadence 'each article' "
            "(has 'daily at 07:00')",
        ),
        (
            "[digest]\nmax_per_day = 0\n",
            "[digest] max_per_day: must be between 1 and 10000 (0)",
        ),
        (
            '[digest]\nmax_per_day = "5"\n',
            "[digest] max_per_day: expected an integer, got a string ('5')",
        ),
        (
            "[digest]\nmax_per_day = true\n",
            "[digest] max_per_day: expected an integer, got a boolean (True)",
        ),
        (
            '[digest]\narticle_subject = " "\n',
            "[digest] article_subject: must not be empty",
        ),
        (
            "[digest]\narticle_subject = 1\n",
            "[digest] article_subject: expected a string, got an integer (1)",
        ),
        (
            '[digest]\ncadence = "hourly"\ncadences = ["daily at 07:00"]\n',
            "[digest] cadence: expected 'daily at HH:MM', 'weekly on <day> at HH:MM' "
            "or 'each article' ('hourly')\n"
            "[digest] cadences: must include the default cadence 'weekly on monday at 07:00' "
            "(has 'daily at 07:00')",
        ),
    ],
)
def test_bad_topics_and_cadences(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, VALID + "\n" + text)
    assert raised.value.message == message
    assert raised.value.exit_code == 2


def test_topics_must_be_a_table(tmp_path):
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, "topics = 1\n" + VALID)
    assert raised.value.message == "[topics]: expected a table, got an integer (1)"

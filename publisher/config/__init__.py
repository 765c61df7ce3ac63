"""The site's configuration: publisher.toml read and checked into a frozen SiteConfig.

`options` holds the dataclasses, `reading` reads and checks the file table by
table, `values` checks single TOML values. Everything else imports from here.
"""

from publisher.config.options import (
    CONFIG_NAME,
    DEFAULT_ARTICLE_SUBJECT,
    DEFAULT_CADENCE,
    DEFAULT_SUBJECT,
    DKIM_ALGORITHMS,
    EACH_ARTICLE,
    FEED_FORMATS,
    WEEKDAYS,
    BounceOptions,
    Cadence,
    DeliveryOptions,
    DigestOptions,
    DkimAlgorithm,
    DkimOptions,
    FeedOptions,
    PageOptions,
    SiteConfig,
    SmtpOptions,
    Topic,
    WebOptions,
    parse_cadence,
)
from publisher.config.reading import load_config, parse_config

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_ARTICLE_SUBJECT",
    "DEFAULT_CADENCE",
    "DEFAULT_SUBJECT",
    "DKIM_ALGORITHMS",
    "EACH_ARTICLE",
    "FEED_FORMATS",
    "WEEKDAYS",
    "BounceOptions",
    "Cadence",
    "DeliveryOptions",
    "DigestOptions",
    "DkimAlgorithm",
    "DkimOptions",
    "FeedOptions",
    "PageOptions",
    "SiteConfig",
    "SmtpOptions",
    "Topic",
    "WebOptions",
    "load_config",
    "parse_cadence",
    "parse_config",
]

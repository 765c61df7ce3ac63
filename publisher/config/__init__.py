"""The site's configuration: publisher.toml read and checked into a frozen SiteConfig.

`options` holds the dataclasses, `reading` reads and checks the file table by
table, `values` checks single TOML values. Everything else imports from here.
"""

from publisher.config.options import (
    CONFIG_NAME,
    DEFAULT_CADENCE,
    DEFAULT_SUBJECT,
    DKIM_ALGORITHMS,
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
    WebOptions,
)
from publisher.config.reading import load_config, parse_config

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_CADENCE",
    "DEFAULT_SUBJECT",
    "DKIM_ALGORITHMS",
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
    "WebOptions",
    "load_config",
    "parse_config",
]

"""The site's configuration: publisher.toml read and checked into a frozen SiteConfig.

`site` holds the dataclasses and the reader; `values` the checks of single
TOML values. Everything else imports from here.
"""

from publisher.config.site import (
    CONFIG_NAME,
    DEFAULT_CADENCE,
    DEFAULT_SUBJECT,
    FEED_FORMATS,
    WEEKDAYS,
    Cadence,
    DeliveryOptions,
    DigestOptions,
    FeedOptions,
    SiteConfig,
    SmtpOptions,
    load_config,
    parse_config,
)

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_CADENCE",
    "DEFAULT_SUBJECT",
    "FEED_FORMATS",
    "WEEKDAYS",
    "Cadence",
    "DeliveryOptions",
    "DigestOptions",
    "FeedOptions",
    "SiteConfig",
    "SmtpOptions",
    "load_config",
    "parse_config",
]

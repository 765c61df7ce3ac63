"""Tell a WebSub hub that feeds changed (https://www.w3.org/TR/websub/ §7, publisher ping).

A hub that fails is logged and its feeds are pinged again after the next
change; a ping never fails a build.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

logger = logging.getLogger(__name__)

TIMEOUT = 10.0


def ping(hub: str, feed_urls: Iterable[str], *, timeout: float = TIMEOUT) -> list[str]:
    """POST hub.mode=publish for each URL; returns the URLs the hub did not accept."""
    failed: list[str] = []
    for url in sorted(set(feed_urls)):
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        request = urllib.request.Request(
            hub,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except (urllib.error.URLError, OSError, ValueError) as err:
            logger.warning(
                "websub: %s: cannot reach the hub for %s (%s); will retry after the next change",
                hub,
                url,
                getattr(err, "reason", err),
            )
            failed.append(url)
            continue
        if 200 <= status < 300:
            logger.info("websub: %s accepted %s (%d)", hub, url, status)
        else:
            logger.warning(
                "websub: %s answered %d for %s; will retry after the next change", hub, status, url
            )
            failed.append(url)
    return failed

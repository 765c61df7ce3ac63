"""The site's signing secret, the same on every machine that shares its state.

Links signed on one machine (an unsubscribe link in a digest, a sign-up's
confirmation link) are checked on another; a machine with a secret of its
own would send links that fail elsewhere. On a PostgreSQL state the first
machine to use its secret (or `state migrate`, for the SQLite site's) leaves
a fingerprint of it there, and a machine whose secret differs stops with a
clear error instead.
"""

from __future__ import annotations

from publisher import tokens
from publisher.config import SiteConfig
from publisher.errors import SubscriberError
from publisher.store import Store, settings


def site_secret(site: SiteConfig, store: Store) -> bytes:
    """The secret for tokens and suppression keys, checked against the shared state's.

    :raises SubscriberError: for no usable secret, or one that differs from
        the one other machines of this state sign with.
    """
    shared = site.state_url is not None
    secret = tokens.load_secret(site.state_dir, create=not shared)
    if shared:
        mine = tokens.fingerprint(secret)
        if store.first_setting(settings.SECRET_FINGERPRINT, mine) != mine:
            message = (
                "differs from the secret the other machines sharing this state sign links "
                "with; set PUBLISHER_SECRET to the same value on every machine, or copy the "
                "same secret file to each"
            )
            raise SubscriberError(tokens.SECRET_ENV, message)
    return secret

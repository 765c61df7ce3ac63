"""publisher: a newsletter and feed publisher.

A folder of articles becomes RSS 2.0, Atom 1.0 and JSON Feed 1.1 files and
email digests. The Python API is what the command line uses:

    from publisher import build, load_config
    report = build(load_config("publisher.toml"), now=datetime.now(UTC))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from publisher.config import SiteConfig, load_config
from publisher.errors import PublisherError
from publisher.version import __version__

if TYPE_CHECKING:
    from publisher.pipelines.build import build, check

__all__ = ["PublisherError", "SiteConfig", "__version__", "build", "check", "load_config"]


def __getattr__(name: str) -> Any:
    # The pipeline is imported on first use: `import publisher` (which every
    # command does) should not pay for the content and feed stages.
    if name == "build":
        from publisher.pipelines.build import build

        return build
    if name == "check":
        from publisher.pipelines.build import check

        return check
    message = f"module 'publisher' has no attribute {name!r}"
    raise AttributeError(message)

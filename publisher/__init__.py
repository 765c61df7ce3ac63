"""publisher: a newsletter and feed publisher.

A folder of articles becomes RSS 2.0, Atom 1.0 and JSON Feed 1.1 files.
"""

__version__ = "0.1.0"

from publisher.config import SiteConfig, load_config
from publisher.errors import PublisherError

__all__ = ["PublisherError", "SiteConfig", "__version__", "build", "check", "load_config"]

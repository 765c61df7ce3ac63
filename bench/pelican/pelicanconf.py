# Pelican 4.12 settings for bench/build_bench.py: the same feeds as publisher
# builds (site-wide and per-tag, Atom and RSS, 50 items, full content), and
# nothing else written. Pelican has no JSON Feed, so it writes two formats to
# our three.
#
#   pelican DIR/pelican-content -o DIR/pelican-output -s bench/pelican/pelicanconf.py \
#       --cache-path DIR/pelican-cache [-e CACHE_CONTENT=true LOAD_CONTENT_CACHE=true]
#
# The corpus comes from `bench/gen_corpus.py --pelican`: Markdown files with
# `Key: value` metadata, read by Pelican's own Markdown reader (no plugin).

SITENAME = "Meridian Briefing (benchmark)"
SITEURL = "https://bench.meridian.example"
FEED_DOMAIN = SITEURL
TIMEZONE = "Europe/Vienna"
DEFAULT_LANG = "en"
AUTHOR = "Meridian Desk"

# The feeds: site-wide and per tag, Atom and RSS, newest 50, full content.
FEED_ALL_ATOM = "feeds/atom.xml"
FEED_ALL_RSS = "feeds/rss.xml"
TAG_FEED_ATOM = "feeds/tags/{slug}/atom.xml"
TAG_FEED_RSS = "feeds/tags/{slug}/rss.xml"
FEED_MAX_ITEMS = 50
RSS_FEED_SUMMARY_ONLY = False
FEED_ATOM = None
FEED_RSS = None
CATEGORY_FEED_ATOM = None
CATEGORY_FEED_RSS = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
TRANSLATION_FEED_RSS = None

# Nothing but the feeds: no article, page, index, tag, category, author or
# archive pages, no theme or static files.
ARTICLE_SAVE_AS = ""
ARTICLE_LANG_SAVE_AS = ""
DRAFT_SAVE_AS = ""
DRAFT_LANG_SAVE_AS = ""
PAGE_SAVE_AS = ""
PAGE_LANG_SAVE_AS = ""
DRAFT_PAGE_SAVE_AS = ""
DRAFT_PAGE_LANG_SAVE_AS = ""
INDEX_SAVE_AS = ""
TAG_SAVE_AS = ""
TAGS_SAVE_AS = ""
CATEGORY_SAVE_AS = ""
CATEGORIES_SAVE_AS = ""
AUTHOR_SAVE_AS = ""
AUTHORS_SAVE_AS = ""
ARCHIVES_SAVE_AS = ""
YEAR_ARCHIVE_SAVE_AS = ""
MONTH_ARCHIVE_SAVE_AS = ""
DAY_ARCHIVE_SAVE_AS = ""
STATIC_PATHS = []
THEME_STATIC_PATHS = []
PAGE_PATHS = []
USE_FOLDER_AS_CATEGORY = False  # year folders are not categories

DELETE_OUTPUT_DIRECTORY = False
# Cold builds: no content cache. build_bench.py turns it on for its second
# series with -e CACHE_CONTENT=true LOAD_CONTENT_CACHE=true (reader-level cache,
# modification checked by mtime).
CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
CONTENT_CACHING_LAYER = "reader"
CHECK_MODIFIED_METHOD = "mtime"

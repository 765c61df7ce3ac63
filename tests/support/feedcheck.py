"""Feed checks for the test suite, after the W3C Feed Validation Service and JSON Feed 1.1.

The W3C validator (https://github.com/w3c/feedvalidator, the code behind
https://validator.w3.org/feed/) is not on PyPI, so the rules of it that can
apply to what publisher generates are written again here with lxml and the
standard library. Each problem is one string that starts with the validator's
message key ("ContainsRelRef: item[2]/description: …"), so a failing test
reads like the validator's report. Rules cite the validator module that holds
them (src/feedvalidator/…); tests/schemas/ holds the two schemas.

Where this checker is stricter than the validator, the rule says so: relative
links are refused in every format (readers ignore xml:base), no date may lie
after `now`, a permalink guid must be an http(s) URL, and an Atom content or
summary type must be text, html or xhtml.

Not checked, because they need the network or do not apply to generated
files: UnknownHost (DNS), SelfDoesntMatchLocation against the fetched URL
(pass `self_url` instead), the HTTP checks (content type, charset, gzip), and
html5lib's full list of HTML parse errors (the scan below catches mis-nested,
unclosed and stray tags, duplicate attributes and self-closed non-void tags).
"""

# The checker follows the W3C validator's own rule tables, one method per element with
# every rule in it: splitting them would lose the correspondence.

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime
from email.utils import getaddresses, mktime_tz, parsedate_tz
from html.entities import name2codepoint
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote

from lxml import etree

from support.paths import SCHEMAS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ATOM = "http://www.w3.org/2005/Atom"
XHTML = "http://www.w3.org/1999/xhtml"
XML = "http://www.w3.org/XML/1998/namespace"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

# base.py `namespaces`: the extension namespaces the validator knows, by their
# usual prefix. Others are UnknownNamespace; a usual prefix bound to another
# URI is ReservedPrefix.
KNOWN_NAMESPACES = {
    "admin": "http://webns.net/mvcb/",
    "atom": ATOM,
    "cc": "http://web.resource.org/cc/",
    "content": CONTENT,
    "creativeCommons": "http://backend.userland.com/creativeCommonsRssModule",
    "dc": DC,
    "dcterms": "http://purl.org/dc/terms/",
    "feedburner": "http://rssnamespace.org/feedburner/ext/1.0",
    "geo": "http://www.w3.org/2003/01/geo/wgs84_pos#",
    "georss": "http://www.georss.org/georss",
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "media": "http://search.yahoo.com/mrss/",
    "slash": "http://purl.org/rss/1.0/modules/slash/",
    "sy": "http://purl.org/rss/1.0/modules/syndication/",
    "thr": "http://purl.org/syndication/thread/1.0",
    "wfw": "http://wellformedweb.org/CommentAPI/",
    "xhtml": XHTML,
    "xml": XML,
}

# validators.py HTMLValidator: tags it knows (else NotHtml), tags it accepts
# (else SecurityRisk) and attributes it accepts (else SecurityRiskAttr).
HTML_TAGS = _words(
    """a abbr acronym address applet area article aside audio b base basefont bdi bdo big
    blockquote body br button canvas caption center cite code col colgroup command data
    datagrid datalist dd del details dfn dialog dir div dl dt em eventsource fieldset
    figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup
    hr html i iframe img input ins isindex kbd label legend li link m main mark map menu
    meta meter nav noframes noscript object ol optgroup option output p param picture pre
    progress q rp rt ruby s samp script section select slot small source span strike strong
    style sub summary sup table tbody td template textarea tfoot th thead time title tr
    track tt u ul var xmp plaintext embed comment listing video wbr"""
)
ACCEPTABLE_ELEMENTS = _words(
    """a abbr acronym address area article aside audio b bdi big blockquote br button
    canvas caption center cite code col colgroup command data datagrid datalist dd del
    details dfn dialog dir div dl dt em eventsource fieldset figcaption figure footer font
    form header h1 h2 h3 h4 h5 h6 hgroup hr i img input ins keygen kbd label legend li m
    main map mark menu meter multicol nav nextid ol output optgroup option p picture pre
    progress q rp rt ruby s samp section select small sound source spacer span strike
    strong sub summary sup table tbody td template textarea time tfoot th thead tr track tt
    u ul var video noscript wbr"""
)
ACCEPTABLE_ATTRIBUTES = _words(
    """abbr accept accept-charset accesskey action align allow allowfullscreen
    allowpaymentrequest alt as autoplay autocapitalize autocomplete autofocus axis
    background balance bgcolor bgproperties border bordercolor bordercolordark
    bordercolorlight bottompadding cellpadding cellspacing ch challenge char charoff choff
    charset checked cite class clear color cols colspan compact contenteditable coords
    crossorigin data datafld datapagesize datasrc datetime decoding default delay dir
    dirname disabled download draggable dynsrc enctype end enterkeyhint face for form
    formenctype frame galleryimg gutter headers height hidefocus hidden high href hreflang
    hspace icon id inputmode is ismap itemid itemprop itemref itemscope itemtype kind
    keytype label lang leftspacing loading list longdesc loop loopcount loopend loopstart
    low lowsrc max maxlength media method min minlength multiple muted name nohref nonce
    noshade nowrap open optimum pattern ping placeholder playsinline point-size poster
    preload prompt pqg radiogroup readonly referrerpolicy rel repeat-max repeat-min replace
    required rev reversed rightspacing rows rowspan rules scope selected shape size sizes
    span spellcheck src srclang srcset start step summary suppress tabindex target template
    title toppadding translate type unselectable usemap urn valign value variable volume
    vspace vrml width wrap xml:lang xmlns"""
)
ACCEPTABLE_CSS_PROPERTIES = _words(
    """azimuth background background-color border border-bottom border-bottom-color
    border-bottom-style border-bottom-width border-collapse border-color border-left
    border-left-color border-left-style border-left-width border-right border-right-color
    border-right-style border-right-width border-spacing border-style border-top
    border-top-color border-top-style border-top-width border-width clear color cursor
    direction display elevation float font font-family font-size font-style font-variant
    font-weight height letter-spacing line-height list-style-type margin margin-bottom
    margin-left margin-right margin-top overflow padding padding-bottom padding-left
    padding-right padding-top pause pause-after pause-before pitch pitch-range richness
    speak speak-header speak-numeral speak-punctuation speech-rate stress text-align
    text-decoration text-indent unicode-bidi vertical-align voice-family volume
    white-space width"""
)
ACCEPTABLE_CSS_KEYWORDS = _words(
    """aqua auto black block blue bold both bottom brown center collapse dashed dotted
    fuchsia gray green !important italic left lime maroon medium none navy normal nowrap
    olive pointer purple red right solid silver teal top transparent underline white
    yellow"""
)
VOID_ELEMENTS = _words("area base br col embed hr img input link meta param source track wbr")
# Elements whose end tag HTML lets you leave out: no "unclosed" report for them.
OPTIONAL_END_TAGS = _words(
    "p li dt dd rt rp optgroup option colgroup caption thead tbody tfoot tr td th"
)
# Start tags that close an open <p> (HTML 5 §13.2.6.4.7).
CLOSES_P = _words(
    """address article aside blockquote details dialog div dl fieldset figcaption figure
    footer form h1 h2 h3 h4 h5 h6 header hgroup hr main menu nav ol p pre section table
    ul"""
)

# iso639codes.py: the primary language subtags the validator knows (its two-letter
# part; its three-letter ISO 639-2 codes are left out, so they are reported).
ISO_639_1 = _words(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr
    cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv
    ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km
    kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mo mr ms mt my
    na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa
    sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr
    ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu x xx"""
)

# validators.py rfc2396 / rfc2396_full / rfc3987: the characters a URI may
# hold, the full-URI shape, and the urn:, urn:uuid: and tag: shapes.
URI_CHARS = frozenset(string.ascii_letters + string.digits + ";/?:@&=+$.-_!~*'()%,#")
FULL_URI = re.compile(r"[a-zA-Z][0-9a-zA-Z+\-.]*:(//)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+$")
URN = re.compile(
    r"^[Uu][Rr][Nn]:[a-zA-Z0-9][a-zA-Z0-9-]{1,31}:([a-zA-Z0-9()+,.:=@;$_!*'\-]|%[0-9A-Fa-f]{2})+$"
)
UUID_URN = re.compile(
    r"^[Uu][Rr][Nn]:[Uu][Uu][Ii][Dd]:[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}"
    r"-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"
)
TAG_URI = re.compile(
    r"^tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*(#[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*)?$"
)
IANA_SCHEMES = _words(
    """ftp http gopher mailto news nntp telnet wais file prospero z39.50s z39.50r cid mid
    vemmi service imap nfs acap rtsp tip pop data dav opaquelocktoken sip sips tel fax modem
    ldap https soap.beep soap.beeps xmlrpc.beep xmlrpc.beeps urn go h323 ipp tftp mupdate
    pres im mtqp iris.beep dict snmp crid tag dns info aaa aaas cap iax icap iris iris.xpc
    iris.xpcs iris.lwz msrp msrps shttp thismessage tv xmpp"""
)
MIME_TYPE = re.compile(
    r'[^\s()<>,;:\\"/[\]?=]+/[^\s()<>,;:\\"/[\]?=]+'
    r'(\s*;\s*[^\s()<>,;:\\"/[\]?=]+=("(\\"|[^"])*"|[^\s()<>,;:\\"/[\]?=]+))*$'
)
ABSOLUTE_REF = re.compile(r"\w+:")  # validators.py absUrlMixin.absref_re

# validators.py rfc822: the strict form, and the loose one that is only a warning.
RFC2822_DATE = re.compile(
    r"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d\d? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d\d\d\d \d\d:\d\d(:\d\d)? ([+-]?\d\d[03]0|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$"
)
RFC822_LOOSE = re.compile(
    r"((mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?\d\d?\s+"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+\d\d(\d\d)?\s+\d\d:\d\d(:\d\d)?"
    r"\s+([+-]\d\d\d\d|ut|gmt|est|edt|cst|cdt|mst|mdt|pst|pdt|[a-ik-z])?$"
)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# validators.py rfc3339 (also the JSON Feed date rule).
RFC3339_DATE = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*)?(Z|[+-]\d\d:\d\d)$")
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # implausible_822 / implausible_8601

# validators.py addr_spec and nonhtml.
EMAIL = re.compile(
    r"([A-Z0-9_\-+.']+)@(([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([A-Z0-9\-]+\.)+))"
    r"([A-Z0-9][-A-Z0-9]*)$",
    re.IGNORECASE,
)
EMAIL_LOOSE = re.compile(r"^[\w.%+-]+@[A-Za-z][\w.-]+$")
EMAIL_IN_NAME = re.compile("<" + EMAIL.pattern[:-1] + ">", re.IGNORECASE)
HTML_END_TAG = re.compile(r"</(\w+)>")
HTML_ENTITY = re.compile(r"&(#?\w+)")
CHARACTER_DATA = re.compile(r"&#[x0-9]|<[/a-zA-Z]")
BAD_CHARACTERS = re.compile("[\x80-\x9f\ufffd]")  # base.py characters: BadCharacters

# link.py validRelations (Atom) and the self link's types.
LINK_RELATIONS = _words(
    """alternate current describedby edit edit-media enclosure first hub last license next
    next-archive payment prev-archive previous related replies search self service up
    via"""
)
SELF_TYPES = ("application/atom+xml", "application/rss+xml", "application/rdf+xml")

RSS_CHANNEL = _words(
    """title link description language copyright managingEditor webMaster pubDate
    lastBuildDate category generator docs cloud ttl image rating textInput skipHours
    skipDays item"""
)
RSS_CHANNEL_ONCE = RSS_CHANNEL - {"category", "item"}
RSS_ITEM = _words(
    """title link description author category comments enclosure guid pubDate source"""
)
RSS_ITEM_ONCE = RSS_ITEM - {"category", "enclosure"} | {f"{{{CONTENT}}}encoded"}
RSS_ATTRIBUTES = {
    "guid": {"isPermaLink"},
    "category": {"domain"},
    "source": {"url"},
    "enclosure": {"url", "length", "type"},
    "cloud": {"domain", "port", "path", "registerProcedure", "protocol"},
}
# item.py / channel.py: core element + extension element that say the same.
RSS_ITEM_PAIRS = [
    ("author", f"{{{DC}}}creator"),
    ("pubDate", f"{{{DC}}}date"),
    ("category", f"{{{DC}}}subject"),
    ("guid", f"{{{ATOM}}}id"),
    ("pubDate", f"{{{ATOM}}}published"),
    ("source", f"{{{DC}}}source"),
]
RSS_CHANNEL_PAIRS = [
    ("managingEditor", f"{{{DC}}}creator"),
    ("webMaster", f"{{{DC}}}publisher"),
    ("language", f"{{{DC}}}language"),
    ("copyright", f"{{{DC}}}rights"),
    ("pubDate", f"{{{DC}}}date"),
    ("lastBuildDate", "{http://purl.org/dc/terms/}modified"),
]

ATOM_FEED = _words(
    """author category contributor generator icon id link logo rights subtitle title updated
    entry"""
)
ATOM_FEED_ONCE = {"generator", "icon", "id", "logo", "rights", "subtitle", "title", "updated"}
ATOM_ENTRY = _words(
    """author category content contributor id link published rights source summary title
    updated"""
)
ATOM_ENTRY_ONCE = {"content", "id", "published", "rights", "source", "summary", "title", "updated"}
ATOM_TEXT_CONSTRUCTS = {"title", "subtitle", "summary", "rights"}
ATOM_ATTRIBUTES = {
    "link": {"href", "rel", "type", "hreflang", "title", "length"},
    "category": {"term", "scheme", "label"},
    "generator": {"uri", "version"},
    "content": {"type", "src"},
    **{name: {"type"} for name in ATOM_TEXT_CONSTRUCTS},
}

JSON_TOP_KEYS = _words(
    """version title home_page_url feed_url description user_comment next_url icon favicon
    authors author language expired hubs items"""
)
JSON_ITEM_KEYS = _words(
    """id url external_url title content_html content_text summary image banner_image
    date_published date_modified authors author tags language attachments"""
)
JSON_EXTENSION_KEY = re.compile(r"^_[a-zA-Z][^.]*$")


# -- entry points ------------------------------------------------------------------


def rss_problems(
    data: bytes, *, now: datetime | None = None, self_url: str | None = None
) -> list[str]:
    """What the W3C validator would report for an RSS 2.0 document, and a little more."""
    return _xml_problems(data, now, self_url, "rss")


def atom_problems(
    data: bytes, *, now: datetime | None = None, self_url: str | None = None
) -> list[str]:
    """What the W3C validator would report for an Atom 1.0 feed document, and a little more."""
    return _xml_problems(data, now, self_url, "atom")


def _xml_problems(data: bytes, now: datetime | None, self_url: str | None, kind: str) -> list[str]:
    problems: list[str] = []
    root = _parse_xml(data, problems)
    if root is None:
        return problems
    check = _Checker(problems, now, self_url, data)
    if kind == "rss":
        check.rss(root)
    else:
        check.atom(root)
    return problems


def json_feed_problems(
    data: bytes, *, now: datetime | None = None, feed_url: str | None = None
) -> list[str]:
    """Breaches of https://www.jsonfeed.org/version/1.1/, with the validator's message keys."""
    problems: list[str] = []
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        return [f"SAXError: not JSON in UTF-8 ({err})"]
    _JsonChecker(problems, now, feed_url).feed(document)
    return problems


def load_atom_schema() -> etree.RelaxNG:
    """RFC 4287's RELAX NG schema (Appendix B), converted from tests/schemas/atom.rnc.

    rnc2rng declares xmlns:local="" for `namespace local = ""`, which lxml
    rejects (an empty prefixed namespace is not allowed); the declaration is
    unused, so it is dropped. Its Schematron rules are checked by atom_problems.
    """
    import rnc2rng

    rng = rnc2rng.dumps(rnc2rng.loads((SCHEMAS / "atom.rnc").read_text(encoding="utf-8")))
    rng = re.sub(r'\s+xmlns:local=""', "", rng)
    return etree.RelaxNG(etree.fromstring(rng.encode("utf-8")))


def atom_schema_problems(data: bytes, schema: etree.RelaxNG) -> list[str]:
    document = etree.fromstring(data).getroottree()
    if schema.validate(document):
        return []
    return [f"RelaxNG: line {e.line}: {e.message}" for e in schema.error_log]


def json_schema_problems(data: bytes) -> list[str]:
    """Errors against tests/schemas/jsonfeed-1.1.schema.json (JSON Schema 2020-12)."""
    import jsonschema

    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    document = json.loads(data.decode("utf-8"))
    return [
        f"JSONSchema: /{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


# -- XML ---------------------------------------------------------------------------


def _parse_xml(data: bytes, problems: list[str]) -> etree._Element | None:
    """Well-formed UTF-8 XML 1.0 with a declaration first, no DOCTYPE (xmlEncoding.py)."""
    if not data.startswith(b"<?xml"):
        if data.lstrip().startswith(b"<?xml"):
            problems.append("WPBlankLine: something comes before the XML declaration")
        else:
            problems.append("MissingEncoding: no XML declaration (expected UTF-8)")
    declaration = re.match(
        rb"\s*<\?xml\s+version\s*=\s*(['\"])(.*?)\1(\s+encoding\s*=\s*(['\"])(.*?)\4)?", data
    )
    if declaration:
        if declaration.group(2) != b"1.0":
            problems.append(f"BadXmlVersion: {declaration.group(2).decode('ascii', 'replace')}")
        encoding = declaration.group(5)
        if encoding is None:
            problems.append("MissingEncoding: the XML declaration names no encoding")
        elif encoding.lower() not in (b"utf-8", b"utf8"):
            problems.append(f"NonstdEncoding: {encoding.decode('ascii', 'replace')}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        problems.append(f"SAXError: {err}")
        return None
    if root.getroottree().docinfo.doctype:
        problems.append("InvalidDoctype: feeds need no DOCTYPE")
    for element in root.iter():
        values = [element.text or "", element.tail or "", *element.attrib.values()]
        if any(BAD_CHARACTERS.search(v) for v in values):
            problems.append(f"BadCharacters: {_path(element)}: C1 control or U+FFFD")
    return root


def _path(element: etree._Element) -> str:
    """A short XPath-like name for messages: channel/item[2]/guid."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None and node.getparent() is not None:
        parent = node.getparent()
        assert parent is not None
        same = [c for c in parent if c.tag == node.tag]
        name = _name(node)
        parts.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/".join(reversed(parts)) or _name(element)


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    if qname.namespace in (None, ATOM) or element.prefix is None:
        return qname.localname
    return f"{element.prefix}:{qname.localname}"


def _short(tag: str) -> str:
    """{http://purl.org/dc/elements/1.1/}creator -> dc:creator."""
    qname = etree.QName(tag)
    prefixes = {uri: prefix for prefix, uri in KNOWN_NAMESPACES.items()}
    if qname.namespace in prefixes:
        return f"{prefixes[qname.namespace]}:{qname.localname}"
    return tag


def _text(element: etree._Element) -> str:
    return "".join(element.itertext())


class _Checker:
    """The XML rules, shared by RSS and Atom; `problems` collects the messages."""

    def __init__(
        self, problems: list[str], now: datetime | None, self_url: str | None, data: bytes
    ) -> None:
        self.problems = problems
        self.now = now or datetime.now(UTC)
        self.self_url = self_url
        self.lines = data.decode("utf-8", "replace").splitlines()

    def report(self, key: str, where: etree._Element | str, detail: str = "") -> None:
        place = where if isinstance(where, str) else _path(where)
        self.problems.append(f"{key}: {place}" + (f": {detail}" if detail else ""))

    # -- RSS 2.0 ---------------------------------------------------------------

    def rss(self, root: etree._Element) -> None:
        if etree.QName(root).namespace is not None:
            self.report("InvalidNamespace", "rss", f"<rss> is in {etree.QName(root).namespace}")
        if etree.QName(root).localname != "rss":
            self.report("UndefinedElement", "/", f"root element is <{root.tag}>, not <rss>")
            return
        version = root.get("version")
        if version is None:
            self.report("MissingAttribute", "rss", "version")
        elif version not in ("0.91", "0.92", "2.0"):
            self.report("InvalidRSSVersion", "rss", version)
        self.namespaces(root)
        channels = [c for c in root if c.tag == "channel"]
        if len(channels) != 1:
            self.report("MissingElement" if not channels else "DuplicateElement", "rss", "channel")
        for channel in channels[:1]:
            self.rss_channel(channel)

    def rss_channel(self, channel: etree._Element) -> None:
        self.once(channel, RSS_CHANNEL_ONCE)
        for key, name in (
            ("MissingTitle", "title"),
            ("MissingLink", "link"),
            ("MissingDescription", "description"),
        ):
            if channel.find(name) is None:
                self.report(key, channel, name)
        for core, extension in RSS_CHANNEL_PAIRS:
            if channel.find(core) is not None and channel.find(extension) is not None:
                self.report("DuplicateSemantics", channel, f"{core} and {_short(extension)}")
        self_links = []
        seen_item = False
        for child in channel:
            if not isinstance(child.tag, str):
                continue
            if child.tag == "item":
                seen_item = True
                continue
            if seen_item:
                self.report("MisplacedItem", child, "channel metadata after the first item")
            if child.tag == f"{{{ATOM}}}link":
                self.atom_link(child)
                if child.get("rel") == "self":
                    self_links.append(child)
            elif etree.QName(child).namespace is None:
                self.rss_core(child, RSS_CHANNEL)
        if not self_links:
            self.report("MissingAtomSelfLink", channel, 'no atom:link rel="self"')
        guids: set[str] = set()
        for item in channel.iterfind("item"):
            self.rss_item(item, guids)

    def rss_core(self, element: etree._Element, known: AbstractSet[str]) -> None:
        """One un-namespaced child of channel or item (channel.py, item.py)."""
        name = element.tag
        if name not in known:
            self.report("UndefinedElement", element, f"<{name}> is not RSS 2.0")
            return
        allowed = RSS_ATTRIBUTES.get(name, set())
        for attribute in element.attrib:
            if etree.QName(attribute).namespace is None and attribute not in allowed:
                self.report("UnexpectedAttribute", element, attribute)
        if len(element) and name not in ("image", "cloud", "textInput", "skipHours", "skipDays"):
            self.report("UndefinedElement", element, "child elements in a text element")
        value = _text(element)
        if name in ("title", "category"):
            self.not_blank(element, value)
        parent = element.getparent()
        in_channel = parent is not None and parent.tag == "channel"
        # The item description is HTML (safeHtml); the channel's is plain text.
        if name in ("title", "copyright", "category") or (name == "description" and in_channel):
            self.non_html(element, value, "ContainsHTML")
        if name in ("link", "docs", "comments"):
            self.full_uri(element, value.strip(), "InvalidFullLink")
        elif name == "language":
            self.language(element, value)
        elif name in ("pubDate", "lastBuildDate"):
            self.rfc822(element, value)
        elif name in ("managingEditor", "webMaster", "author"):
            self.contact(element, value)
        elif name == "ttl" and not (value.strip().isdigit() and int(value) > 0):
            self.report("InvalidPositiveInteger", element, value)

    def rss_item(self, item: etree._Element, guids: set[str]) -> None:
        self.once(item, RSS_ITEM_ONCE)
        if len(item.findall("enclosure")) > 1:
            self.report("DuplicateEnclosure", item)
        if item.find("title") is None and item.find("description") is None:
            self.report("ItemMustContainTitleOrDescription", item)
        for core, extension in RSS_ITEM_PAIRS:
            if item.find(core) is not None and item.find(extension) is not None:
                self.report("DuplicateItemSemantics", item, f"{core} and {_short(extension)}")
        seen_description = False
        for child in item:
            if not isinstance(child.tag, str):
                continue
            if child.tag == "description":
                seen_description = True
                self.html(child, _text(child))
            elif child.tag == f"{{{CONTENT}}}encoded":
                if not seen_description:
                    self.report("NeedDescriptionBeforeContent", child)
                self.html(child, _text(child))
            elif child.tag == "guid":
                self.guid(child, guids)
            elif child.tag == f"{{{ATOM}}}link":
                self.atom_link(child)
            if etree.QName(child).namespace is None:
                self.rss_core(child, RSS_ITEM)
        if item.find("guid") is None:
            self.report("MissingGuid", item, "item should contain a guid element")

    def guid(self, element: etree._Element, guids: set[str]) -> None:
        """item.py guid: permalink unless isPermaLink="false", then a full http(s) URL."""
        value = _text(element)
        self.not_blank(element, value)
        flag = element.get("isPermaLink")
        if flag is not None and flag not in ("true", "false"):
            self.report("InvalidBooleanAttribute", element, f"isPermaLink={flag!r}")
        if flag != "false":
            lowered = value.lower()
            if lowered.startswith(("tag:", "urn:uuid:")):
                self.report("InvalidPermalink", element, value)
            elif not re.match(r"https?://[^/\s]", value):
                # Stricter: the validator takes any full URI as a permalink.
                self.report("InvalidHttpGUID", element, f"{value!r} is not an http(s) URL")
            else:
                self.full_uri(element, value, "InvalidHttpGUID")
        elif len(value) < 9 and value.isdigit():
            self.report("NotSufficientlyUnique", element, value)
        if value in guids:
            self.report("DuplicateValue", element, f"guid {value!r} appears twice")
        guids.add(value)

    # -- Atom 1.0 --------------------------------------------------------------

    def atom(self, root: etree._Element) -> None:
        if root.tag != f"{{{ATOM}}}feed":
            self.report("UndefinedElement", "/", f"root element is <{root.tag}>, not Atom <feed>")
            return
        self.namespaces(root)
        self.common_attributes(root)
        self.no_plain_attributes(root)
        self.once(root, {f"{{{ATOM}}}{n}" for n in ATOM_FEED_ONCE})
        for name in ("title", "id", "updated"):
            if root.find(f"{{{ATOM}}}{name}") is None:
                self.report("MissingElement", "feed", name)
        feed_has_author = False
        seen_entry = False
        self_links = []
        ids: set[str] = set()
        updates: set[str] = set()
        for child in root:
            if not isinstance(child.tag, str):
                continue
            if child.tag == f"{{{ATOM}}}entry":
                seen_entry = True
                self.atom_entry(child, feed_has_author, ids, updates)
                continue
            if seen_entry:
                self.report("MisplacedMetadata", child, "must appear before all entries")
            self.atom_child(child, ATOM_FEED)
            if child.tag == f"{{{ATOM}}}author":
                feed_has_author = True
            if child.tag == f"{{{ATOM}}}link" and child.get("rel") == "self":
                self_links.append(child)
        if not self_links:
            self.report("MissingSelf", "feed", 'no link rel="self"')
        self.alternate_links(root)

    def atom_entry(
        self, entry: etree._Element, feed_has_author: bool, ids: set[str], updates: set[str]
    ) -> None:
        self.common_attributes(entry)
        self.no_plain_attributes(entry)
        self.once(entry, {f"{{{ATOM}}}{n}" for n in ATOM_ENTRY_ONCE})
        for name in ("title", "id", "updated"):
            if entry.find(f"{{{ATOM}}}{name}") is None:
                self.report("MissingElement", entry, name)
        for child in entry:
            if isinstance(child.tag, str):
                self.atom_child(child, ATOM_ENTRY)
        has_author = (
            entry.find(f"{{{ATOM}}}author") is not None
            or entry.find(f"{{{ATOM}}}source/{{{ATOM}}}author") is not None
        )
        if not (feed_has_author or has_author):
            self.report("MissingElement", entry, "author (in the feed or in every entry)")
        content = entry.find(f"{{{ATOM}}}content")
        summary = entry.find(f"{{{ATOM}}}summary")
        alternates = [
            link
            for link in entry.iterfind(f"{{{ATOM}}}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        if content is None and not alternates:
            self.report("MissingContentOrAlternate", entry)
        if content is None and summary is None:
            self.report("MissingTextualContent", entry)
        if content is not None and summary is None:
            kind = content.get("type", "text")
            textual = kind in ("text", "html", "xhtml") or kind.startswith("text/")
            if content.get("src") is not None or not (textual or kind.endswith(("/xml", "+xml"))):
                self.report("MissingSummary", entry)
        self.alternate_links(entry)
        entry_id = entry.findtext(f"{{{ATOM}}}id")
        if entry_id is not None:
            if entry_id in ids:
                self.report("DuplicateEntries", entry, f"two entries with the id {entry_id!r}")
            ids.add(entry_id)
        updated = entry.findtext(f"{{{ATOM}}}updated")
        if updated is not None:
            if updated in updates:
                self.report("DuplicateUpdated", entry, f"two entries updated {updated}")
            updates.add(updated)

    def atom_child(self, element: etree._Element, known: AbstractSet[str]) -> None:
        qname = etree.QName(element)
        if qname.namespace != ATOM:
            return  # an extension element: not ours to judge
        name = qname.localname
        if name not in known:
            self.report("UndefinedElement", element, f"<{name}> is not Atom")
            return
        self.common_attributes(element)
        self.no_plain_attributes(element, ATOM_ATTRIBUTES.get(name, set()))
        if name in ATOM_TEXT_CONSTRUCTS:
            self.text_construct(element)
        elif name == "content":
            self.atom_content(element)
        elif name == "id":
            self.atom_id(element)
        elif name in ("updated", "published"):
            self.rfc3339(element, element.text or "")
        elif name == "link":
            self.atom_link(element)
        elif name in ("author", "contributor"):
            self.person(element)
        elif name == "category":
            self.category(element)
        elif name == "generator":
            self.not_blank(element, _text(element))
            self.non_html(element, _text(element), "ContainsHTML")
            uri = element.get("uri")
            if uri is not None and any(ord(c) < 128 and c not in URI_CHARS for c in uri):
                self.report("InvalidURIAttribute", element, f"uri={uri!r}")
        elif name in ("icon", "logo"):
            self.no_whitespace(element)
            self.not_blank(element, _text(element))
            self.full_uri(element, _text(element), "InvalidFullLink", iri=True)

    def atom_id(self, element: etree._Element) -> None:
        """validators.py canonicaluri: a full IRI, in canonical form (uri.py)."""
        value = element.text or ""
        self.no_whitespace(element)
        if len(element):
            self.report("UndefinedElement", element, "child elements in <id>")
        if self.full_uri(element, value.strip(), "InvalidFullLink", iri=True):
            canonical = canonical_uri(value.strip())
            if canonical != value:
                self.report(
                    "NonCanonicalURI",
                    element,
                    f"{value!r} is not in canonical form ({canonical or 'N/A'!r})",
                )

    def text_construct(self, element: etree._Element) -> None:
        """content.py textConstruct: type text, html or xhtml, and content to match."""
        kind = element.get("type", "text")
        if kind not in ("text", "html", "xhtml"):
            self.report("InvalidTextType", element, f'type="{kind}"')
            return
        self.typed_text(element, kind)

    def atom_content(self, element: etree._Element) -> None:
        kind = element.get("type", "text")
        if kind == "":
            self.report("AttrNotBlank", element, "type")
            return
        if kind not in ("text", "html", "xhtml"):
            # Stricter: the validator takes any MIME type but multipart/alternative.
            self.report("InvalidMIMEType", element, f'type="{kind}" (expected text, html or xhtml)')
            return
        if element.get("src") is not None:
            self.report("InvalidMIMEType", element, f'type="{kind}" with src')
            return
        self.typed_text(element, kind)

    def typed_text(self, element: etree._Element, kind: str) -> None:
        value = element.text or ""
        if kind == "xhtml":
            self.xhtml(element)
            return
        if len(element):
            self.report(
                "UndefinedElement", element, f"child elements in type={kind!r} (escape them)"
            )
        if not value.strip():
            self.report("NotBlank", element)
        if kind == "html":
            self.html(element, value)
        else:
            self.non_html(element, value, "ContainsUndeclaredHTML")

    def xhtml(self, element: etree._Element) -> None:
        """content.py diveater: one xhtml <div>, and safe XHTML inside it."""
        children = [c for c in element if isinstance(c.tag, str)]
        if (
            len(children) != 1
            or children[0].tag != f"{{{XHTML}}}div"
            or (element.text or "").strip()
            or (children[0].tail or "").strip()
        ):
            self.report("MissingXhtmlDiv", element)
            return
        for node in children[0].iterdescendants():
            if not isinstance(node.tag, str):
                continue
            qname = etree.QName(node)
            if qname.namespace != XHTML:
                self.report("NotHtml", element, f"non-XHTML element <{node.tag}>")
                continue
            attributes = [(etree.QName(a).localname, v) for a, v in node.attrib.items()]
            for key, detail in _html_tag_problems(qname.localname, attributes):
                self.report(key, element, detail)
        if (element.text or "").strip() or any(
            HTML_END_TAG.search(t) for t in children[0].itertext()
        ):
            self.report("NotInline", element, "escaped HTML inside type=xhtml")

    def atom_link(self, element: etree._Element) -> None:
        """link.py: href, rel, type, hreflang, length; the self link's type and place."""
        href = element.get("href")
        if href is None:
            self.report("MissingHref", element)
            return
        if (element.text or "").strip() or len(element):
            self.report("AtomLinkNotEmpty", element)
        rel = element.get("rel", "alternate")
        if rel == "":
            self.report("AttrNotBlank", element, "rel")
        elif rel not in LINK_RELATIONS and not FULL_URI.match(rel):
            self.report("UnregisteredAtomLinkRel", element, rel)
        kind = element.get("type")
        if kind is not None and not MIME_TYPE.match(kind):
            self.report("InvalidMIMEType", element, f"type={kind!r}")
        if element.get("hreflang") is not None:
            self.language(element, element.get("hreflang", ""))
        length = element.get("length")
        if length is not None and not length.isdigit():
            self.report("InvalidNonNegativeInteger", element, f"length={length!r}")
        if element.get("title") == "":
            self.report("AttrNotBlank", element, "title")
        # Stricter: the validator takes relative links (xml:base); readers do not.
        self.full_uri(element, href, "InvalidFullLink", iri=True)
        if rel == "self":
            if kind not in SELF_TYPES:
                self.report("SelfNotAtom", element, f"type={kind!r}")
            if not re.match(r"\w+://[^/]", href):
                self.report("RelativeSelf", element, href)
            if self.self_url is not None and href != self.self_url:
                self.report("SelfDoesntMatchLocation", element, f"{href} != {self.self_url}")

    def alternate_links(self, parent: etree._Element) -> None:
        seen: set[tuple[str | None, str | None]] = set()
        for link in parent.iterfind(f"{{{ATOM}}}link"):
            if link.get("rel", "alternate") != "alternate":
                continue
            key = (link.get("type"), link.get("hreflang"))
            if key in seen:
                self.report("DuplicateAtomLink", link, f"type={key[0]!r} hreflang={key[1]!r}")
            seen.add(key)

    def person(self, element: etree._Element) -> None:
        """author.py: a name (not blank, no HTML, no <email>), an addr-spec, an IRI."""
        names = element.findall(f"{{{ATOM}}}name")
        if not names:
            self.report("MissingElement", element, "name")
        for name in names:
            value = _text(name)
            self.not_blank(name, value)
            self.non_html(name, value, "ContainsHTML")
            if EMAIL_IN_NAME.search(value):
                self.report("ContainsEmail", name, value)
        for email in element.iterfind(f"{{{ATOM}}}email"):
            if not EMAIL.match(_text(email)) and not EMAIL_LOOSE.match(_text(email)):
                self.report("InvalidAddrSpec", email, _text(email))
        for uri in element.iterfind(f"{{{ATOM}}}uri"):
            self.no_whitespace(uri)
            if any(ord(c) < 128 and c not in URI_CHARS for c in _text(uri)):
                self.report("InvalidIRI", uri, _text(uri))

    def category(self, element: etree._Element) -> None:
        term = element.get("term")
        if term is None:
            self.report("MissingAttribute", element, "term")
        elif not term:
            self.report("AttrNotBlank", element, "term")
        scheme = element.get("scheme")
        if scheme is not None:
            self.full_uri(element, scheme, "InvalidFullLink", iri=True)
        label = element.get("label")
        if label is not None:
            self.non_html(element, label, "ContainsHTML")

    def no_plain_attributes(self, element: etree._Element, allowed: set[str] | None = None) -> None:
        """UnexpectedAttribute: un-namespaced attributes the element does not define."""
        for attribute in element.attrib:
            if etree.QName(attribute).namespace is None and attribute not in (allowed or set()):
                self.report("UnexpectedAttribute", element, attribute)

    def common_attributes(self, element: etree._Element) -> None:
        language = element.get(f"{{{XML}}}lang")
        if language is not None:
            self.language(element, language)
        base = element.get(f"{{{XML}}}base")
        if base is not None and any(ord(c) < 128 and c not in URI_CHARS for c in base):
            self.report("InvalidIRI", element, f"xml:base={base!r}")

    # -- shared rules ----------------------------------------------------------

    def namespaces(self, root: etree._Element) -> None:
        """base.py startPrefixMapping: known namespaces, their usual prefixes."""
        seen: set[tuple[str | None, str]] = set()
        for element in root.iter():
            if isinstance(element.tag, str):
                seen.update(element.nsmap.items())
        known = set(KNOWN_NAMESPACES.values())
        for prefix, uri in sorted(seen, key=lambda p: (p[0] or "", p[1])):
            if uri == "http://search.yahoo.com/mrss":
                self.report("MediaRssNamespace", "/", "the media namespace needs its final '/'")
            elif prefix in KNOWN_NAMESPACES and KNOWN_NAMESPACES[prefix] != uri:
                self.report("ReservedPrefix", "/", f"xmlns:{prefix}={uri!r}")
            elif prefix is not None and uri not in known:
                self.report("UnknownNamespace", "/", f"xmlns:{prefix}={uri!r}")
            if (
                prefix in ("atom", "xhtml")
                and uri in (ATOM, XHTML)
                and root.tag.startswith(f"{{{ATOM}}}")
            ):
                self.report("AvoidNamespacePrefix", "/", f"xmlns:{prefix}")

    def once(self, parent: etree._Element, names: Iterable[str]) -> None:
        for name in names:
            found = parent.findall(name)
            if len(found) > 1:
                self.report("DuplicateElement", found[1], "appears more than once")

    def not_blank(self, element: etree._Element, value: str) -> None:
        if not value.strip():
            self.report("NotBlank", element)

    def no_whitespace(self, element: etree._Element) -> None:
        value = _text(element)
        if value != value.strip():
            self.report("UnexpectedWhitespace", element, repr(value))

    def non_html(self, element: etree._Element, value: str, key: str) -> None:
        """validators.py nonhtml: no HTML end tags, entities or (RSS) markup characters."""
        tags = [t for t in HTML_END_TAG.findall(value) if t.lower() in HTML_TAGS]
        entities = [
            e
            for e in HTML_ENTITY.findall(value)
            if e in name2codepoint or e == "apos" or not e.isalpha()
        ]
        if tags:
            self.report(key, element, f"</{tags[0]}> in plain text")
        elif entities:
            self.report(key, element, f"&{entities[0]}; in plain text (escaped twice?)")
        elif key == "ContainsHTML" and CHARACTER_DATA.search(value):
            root = element.getroottree().getroot()
            if root.tag == "rss" and not self._source_has_hex_reference(element, value):
                self.report(
                    "CharacterData", element, 'encode "&" and "<" as hexadecimal references'
                )

    def _source_has_hex_reference(self, element: etree._Element, value: str) -> bool:
        # The validator looks for "&#x" on the source lines the element spans.
        first = (element.sourceline or 1) - 1
        return any("&#x" in line for line in self.lines[first : first + value.count("\n") + 1])

    def html(self, element: etree._Element, value: str) -> None:
        """validators.py safeHtml: HTMLValidator, then absUrlMixin (relative references)."""
        for key, detail in html_problems(value):
            self.report(key, element, detail)

    def contact(self, element: etree._Element, value: str) -> None:
        """validators.py email_with_name: "email (Name)"."""
        for key, detail in contact_problems(value):
            self.report(key, element, detail)
        self.non_html(element, value, "ContainsHTML")

    def language(self, element: etree._Element, value: str) -> None:
        if not language_ok(value):
            self.report("InvalidLanguage", element, repr(value))

    def rfc822(self, element: etree._Element, value: str) -> None:
        for key, detail in rfc822_problems(value, self.now):
            self.report(key, element, detail)

    def rfc3339(self, element: etree._Element, value: str) -> None:
        self.no_whitespace(element)
        for key, detail in rfc3339_problems(value, self.now):
            self.report(key, element, detail)

    def full_uri(self, element: etree._Element, value: str, key: str, *, iri: bool = False) -> bool:
        found = full_uri_problems(value, key, iri=iri)
        for problem_key, detail in found:
            self.report(problem_key, element, detail)
        return not found


# -- rules as functions, shared with JSON ------------------------------------------


_PRINTABLE_ASCII = "".join(chr(c) for c in range(32, 127))


def full_uri_problems(value: str, key: str, *, iri: bool = False) -> list[tuple[str, str]]:
    """validators.py rfc2396_full (and rfc3987_full when `iri`): an absolute URI."""
    # An IRI is checked as the URI it maps to (RFC 3987 §3.1): non-ASCII escaped.
    candidate = quote(value, safe=_PRINTABLE_ASCII) if iri else value
    scheme = candidate.split(":", 1)[0].lower()
    if scheme == "tag":
        return [] if TAG_URI.match(candidate) else [("InvalidTAG", repr(value))]
    if scheme == "urn":
        if candidate.lower().startswith("urn:uuid:") and not UUID_URN.match(candidate):
            return [("InvalidUUID", repr(value))]
        return [] if URN.match(candidate) else [("InvalidURN", repr(value))]
    if not FULL_URI.match(candidate):
        for c in candidate:
            if ord(c) < 128 and c not in URI_CHARS:
                return [("InvalidUriChar", f"{c!r} in {value!r}")]
        if not candidate.isascii():
            return [("UriNotIri", repr(value))]
        return [(key, f"{value!r} is not a full URL")]
    if scheme in ("http", "https", "ftp") and not re.match(r"^\w+://[^/].*", candidate):
        return [(key, f"{value!r} is not a full URL")]
    if scheme.isalpha() and scheme not in IANA_SCHEMES:
        return [("SchemeNotIANARegistered", scheme)]
    return []


def html_problems(value: str) -> list[tuple[str, str]]:
    """HTMLValidator and absUrlMixin on an HTML fragment, with html.parser."""
    scan = _HtmlScan()
    scan.feed(value)
    scan.close()
    scan.finish()
    if "<?import" in value.lower():
        scan.problems.append(("SecurityRisk", "<?import>"))
    return scan.problems


def _html_tag_problems(
    tag: str, attributes: list[tuple[str, str | None]]
) -> Iterator[tuple[str, str]]:
    """One element, as HTMLValidator.handle_tag judges it, plus its href/src."""
    if tag not in HTML_TAGS:
        yield "NotHtml", f"Non-html tag <{tag}>"
    elif tag not in ACCEPTABLE_ELEMENTS:
        yield "SecurityRisk", f"should not contain <{tag}>"
    for name, value in attributes:
        if tag not in ACCEPTABLE_ELEMENTS:
            pass  # as handle_tag: one report for the tag, none for its attributes
        elif name == "style":
            for evil in check_style(value or ""):
                yield "DangerousStyleAttr", f"<{tag} style>: {evil!r}"
        elif name not in ACCEPTABLE_ATTRIBUTES and not name.startswith("data-"):
            yield "SecurityRiskAttr", f"<{tag}> should not contain the {name} attribute"
        if name in ("href", "src", "srcset") and value is not None:
            refs = (
                [c.split()[0] for c in value.split(",") if c.split()]
                if name == "srcset"
                else [value]
            )
            for ref in refs:
                yield from _reference_problems(tag, name, ref.strip())


def _reference_problems(tag: str, attribute: str, ref: str) -> Iterator[tuple[str, str]]:
    """absUrlMixin: relative references (even "#frag") and bad URI characters."""
    bad = next((c for c in ref if ord(c) < 128 and c not in URI_CHARS), None)
    if bad is not None:
        yield "InvalidUriChar", f"<{tag} {attribute}={ref!r}>: {bad!r}"
    elif not ABSOLUTE_REF.match(ref):
        yield "ContainsRelRef", f"<{tag} {attribute}={ref!r}>"


class _HtmlScan(HTMLParser):
    """Element rules, and the parse errors html5lib (strict) would also raise as NotHtml."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[tuple[str, str]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.element(tag, attrs)
        if tag in CLOSES_P and "p" in self.open:
            self.close_to("p", implied=True)
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.element(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.problems.append(("NotHtml", f"Invalid HTML: self-closing non-void <{tag}/>"))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            self.problems.append(("NotHtml", f"Invalid HTML: end tag </{tag}> of a void element"))
        elif tag not in self.open:
            self.problems.append(("NotHtml", f"Invalid HTML: stray end tag </{tag}>"))
        else:
            self.close_to(tag, implied=False)

    def handle_pi(self, data: str) -> None:
        if data.lower().startswith("import"):
            self.problems.append(("SecurityRisk", "<?import>"))

    def element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        for name in sorted({n for n in names if names.count(n) > 1}):
            self.problems.append(
                ("NotHtml", f"Invalid HTML: duplicate attribute {name} on <{tag}>")
            )
        self.problems.extend(_html_tag_problems(tag, attrs))

    def close_to(self, tag: str, *, implied: bool) -> None:
        while self.open:
            top = self.open.pop()
            if top == tag:
                return
            if top not in OPTIONAL_END_TAGS:
                how = f"by <{tag}>" if implied else f"by </{tag}>"
                self.problems.append(("NotHtml", f"Invalid HTML: <{top}> closed {how}"))

    def finish(self) -> None:
        for tag in self.open:
            if tag not in OPTIONAL_END_TAGS:
                self.problems.append(("NotHtml", f"Invalid HTML: <{tag}> is never closed"))
        self.open = []


_STYLE_CHARACTERS = re.compile(
    r"""^([:,;#%.\sa-zA-Z0-9!]|\w-\w|'[\s\w]+'|"[\s\w]+"|\([\d,\s]+\))*$"""
)
_STYLE_DECLARATIONS = re.compile(r"^(\s*[-\w]+\s*:\s*[^:;]*(;|$))*$")
_STYLE_PROPERTY = re.compile(r"([-\w]+)\s*:\s*([^:;]*)")
_CSS_VALUE = re.compile(
    r"^(#[0-9a-f]+|rgb\(\d+%?,\d*%?,?\d*%?\)?|\d?\.?\d?\d(cm|em|ex|in|mm|pc|pt|px|%|,|\))?)$"
)


def check_style(style: str) -> list[str]:
    """validators.py checkStyle: the parts of a style attribute the validator calls unsafe."""
    if not _STYLE_CHARACTERS.match(style) or not _STYLE_DECLARATIONS.match(style):
        return [style]
    unsafe: list[str] = []
    for prop, value in _STYLE_PROPERTY.findall(style.lower()):
        if prop not in ACCEPTABLE_CSS_PROPERTIES:
            unsafe.append(prop)
        elif prop.split("-")[0] in ("background", "border", "margin", "padding"):
            unsafe.extend(
                keyword
                for keyword in value.split()
                if keyword not in ACCEPTABLE_CSS_KEYWORDS and not _CSS_VALUE.match(keyword)
            )
    return list(dict.fromkeys(unsafe))


def contact_problems(value: str) -> list[tuple[str, str]]:
    """validators.py email_with_name: "jane@example.org (Jane Doe)", nothing else."""
    if value.startswith("mailto:"):
        value = unquote(value.split(":", 1)[1])
    if value.find("@") > 0 and not value.endswith(")"):
        if value.find(" ") > 0:
            return [("EmailFormat", f"{value!r} is not 'email (Name)'")]
        return [("MissingRealName", f"{value!r} has no (Name)")]
    addresses = getaddresses([value])
    address = addresses[0][1] if len(addresses) == 1 else value
    if not EMAIL.match(address) and not EMAIL_LOOSE.match(address):
        return [("InvalidContact", f"{value!r} is not an email address")]
    return []


def language_ok(value: str) -> bool:
    """validators.py iso639: the primary subtag of a language tag is a known ISO 639 code."""
    primary = value.split("-", 1)[0].lower()
    return bool(re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", value)) and primary in ISO_639_1


def rfc822_problems(value: str, now: datetime) -> list[tuple[str, str]]:
    """validators.py rfc822: the strict RFC 2822 form, the right day, a plausible moment."""
    if not RFC2822_DATE.match(value):
        bare = re.sub(r"\\.", "", value)
        previous = None
        while previous != bare:
            previous, bare = bare, re.sub(r"\([^(]*?\)", " ", bare)
        if RFC822_LOOSE.match(bare.strip().lower()):
            return [("ProblematicalRFC822Date", repr(value))]
        return [("InvalidRFC2822Date", repr(value))]
    parsed = parsedate_tz(value)
    if parsed is None:
        return [("InvalidRFC2822Date", repr(value))]
    try:
        day = date(*parsed[:3])
        moment = datetime.fromtimestamp(mktime_tz(parsed), UTC)
    except (ValueError, OverflowError) as err:
        return [("InvalidRFC2822Date", f"{value!r}: {err}")]
    if parsed[3] > 23 or parsed[4] > 59 or parsed[5] > 60:
        return [("InvalidRFC2822Date", f"{value!r}: no such time")]
    if "," in value and DAY_NAMES[day.weekday()] != value[:3]:
        return [("IncorrectDOW", f"{value!r} was a {DAY_NAMES[day.weekday()]}")]
    return _implausible(value, moment, now)


def rfc3339_problems(value: str, now: datetime) -> list[tuple[str, str]]:
    """validators.py rfc3339: "2024-05-16T18:05:00+02:00", a real moment, a plausible one."""
    if not RFC3339_DATE.match(value):
        return [("InvalidRFC3339Date", repr(value))]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        return [("InvalidRFC3339Date", f"{value!r}: {err}")]
    return _implausible(value, moment, now)


def _implausible(value: str, moment: datetime, now: datetime) -> list[tuple[str, str]]:
    # The validator allows ten minutes (RSS) or a day (Atom) of clock skew;
    # a generated feed dated after its own `now` is simply wrong.
    if moment < EARLIEST or moment > now:
        return [("ImplausibleDate", f"{value!r} (before 1990 or after {now.isoformat()})")]
    return []


# -- URI canonical form (uri.py, after RFC 3986 §6.2.2) ---------------------------------

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_SUB_DELIMS = "!$&'()*+,;="
_PCHAR = _SUB_DELIMS + ":@"
_URI_PARTS = re.compile(r"^(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$")
_DEFAULT_PORTS = {"ftp": "21", "http": "80", "https": "443", "nntp": "119", "telnet": "23"}


def canonical_uri(uri: str) -> str | None:
    """The validator's canonical form of an absolute URI, or None if it has none.

    Lower-case scheme and host, no default port, "/" for an empty path, no dot
    segments, upper-case %-escapes, unreserved characters unescaped, non-ASCII
    escaped as NFC UTF-8.
    """
    match = _URI_PARTS.match(unicodedata.normalize("NFC", uri))
    if match is None or match.group(1) is None:
        return None
    scheme, authority, path, query, fragment = match.groups()
    scheme = scheme.lower()
    if authority is not None:
        userinfo, at, hostport = authority.rpartition("@")
        port_match = re.match(r"^(.*?)(?::(\d*))?$", hostport)
        assert port_match is not None
        host, port = port_match.group(1).lower(), port_match.group(2)
        if port and port != _DEFAULT_PORTS.get(scheme):
            host += ":" + port
        authority = userinfo + at + host
        path = _remove_dot_segments(path) or "/"
    elif path.startswith("/"):
        path = _remove_dot_segments(path)
    elif scheme == "mailto" and "@" in path:
        local, _, domain = path.partition("@")
        path = local + "@" + domain.lower()
    path = _escapes(path, _PCHAR + "/")
    query = _escapes(query, _PCHAR + "/?")
    fragment = _escapes(fragment, _PCHAR + "/?")
    if _BAD_ESCAPE in (path, query, fragment):
        return None
    result = f"{scheme}:" + (f"//{authority}" if authority is not None else "") + (path or "")
    if query is not None:
        result += f"?{query}"
    if fragment is not None:
        result += f"#{fragment}"
    return result


_BAD_ESCAPE = "%"  # what _escapes returns for a '%' that starts no escape


def _escapes(text: str | None, safe: str) -> str | None:
    if text is None:
        return None
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            digits = text[index + 1 : index + 3]
            if len(digits) != 2 or not all(d in string.hexdigits for d in digits):
                return _BAD_ESCAPE
            decoded = chr(int(digits, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + digits.upper())
            index += 3
            continue
        out.append(char if char in _UNRESERVED or char in safe else quote(char, safe=""))
        index += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = path.endswith(("/.", "/.."))
    return "/" + "/".join(output) + ("/" if trailing and output else "")


# -- JSON Feed 1.1 -----------------------------------------------------------------


def _no_constant(name: str) -> Any:
    message = f"{name} is not JSON"
    raise ValueError(message)


class _JsonChecker:
    """https://www.jsonfeed.org/version/1.1/, reported with the validator's keys."""

    def __init__(self, problems: list[str], now: datetime | None, feed_url: str | None) -> None:
        self.problems = problems
        self.now = now or datetime.now(UTC)
        self.feed_url = feed_url

    def report(self, key: str, where: str, detail: str = "") -> None:
        self.problems.append(f"{key}: {where}" + (f": {detail}" if detail else ""))

    def feed(self, document: Any) -> None:
        if not isinstance(document, dict):
            self.report("InvalidValue", "/", "the feed is not a JSON object")
            return
        if next(iter(document), None) != "version":
            self.report("MisplacedMetadata", "/", "version should come first")
        self.keys(document, JSON_TOP_KEYS, "")
        if "version" not in document:
            self.report("MissingElement", "/", "version")
        elif document["version"] != JSON_FEED_VERSION:
            self.report("InvalidValue", "/version", repr(document["version"]))
        self.string(document, "title", "", required=True, plain=True)
        if isinstance(document.get("title"), str) and not document["title"].strip():
            self.report("NotBlank", "/title")
        for key in ("description", "user_comment"):
            self.string(document, key, "", plain=key == "description")
        if "home_page_url" not in document:
            self.report("MissingLink", "/", "home_page_url")
        if "feed_url" not in document:
            self.report("MissingSelf", "/", "feed_url")
        for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
            self.url(document, key, "")
        feed_url = document.get("feed_url")
        if self.feed_url is not None and feed_url is not None and feed_url != self.feed_url:
            self.report("SelfDoesntMatchLocation", "/feed_url", f"{feed_url} != {self.feed_url}")
        if "next_url" in document and document["next_url"] == feed_url:
            self.report("InvalidValue", "/next_url", "must not equal feed_url")
        if "expired" in document and not isinstance(document["expired"], bool):
            self.report("InvalidValue", "/expired", "must be true or false")
        self.language(document, "")
        self.authors(document, "")
        hubs = document.get("hubs")
        if hubs is not None:
            if not isinstance(hubs, list):
                self.report("InvalidValue", "/hubs", "must be an array")
            else:
                for index, hub in enumerate(hubs):
                    if isinstance(hub, dict):
                        self.keys(hub, {"type", "url"}, f"/hubs/{index}")
                    if not isinstance(hub, dict) or not all(
                        isinstance(hub.get(k), str) for k in ("type", "url")
                    ):
                        self.report("MissingElement", f"/hubs/{index}", "type and url")
        items = document.get("items")
        if items is None:
            self.report("MissingElement", "/", "items")
        elif not isinstance(items, list):
            self.report("InvalidValue", "/items", "must be an array")
        else:
            ids: set[str] = set()
            for index, item in enumerate(items):
                self.item(item, f"/items/{index}", ids)

    def item(self, item: Any, where: str, ids: set[str]) -> None:
        if not isinstance(item, dict):
            self.report("InvalidValue", where, "an item must be an object")
            return
        self.keys(item, JSON_ITEM_KEYS, where)
        item_id = item.get("id")
        if item_id is None:
            self.report("MissingElement", where, "id")
        elif not isinstance(item_id, str):
            self.report("InvalidValue", f"{where}/id", f"must be a string, not {item_id!r}")
        elif not item_id.strip():
            self.report("NotBlank", f"{where}/id")
        elif item_id in ids:
            self.report("DuplicateValue", f"{where}/id", f"{item_id!r} appears twice")
        else:
            ids.add(item_id)
        for key in ("url", "external_url", "image", "banner_image"):
            self.url(item, key, where)
        self.string(item, "title", where, plain=True)
        self.string(item, "summary", where, plain=True)
        self.string(item, "content_text", where, plain=True)
        self.string(item, "content_html", where)
        if not isinstance(item.get("content_html"), str) and not isinstance(
            item.get("content_text"), str
        ):
            self.report("MissingElement", where, "content_html or content_text")
        if isinstance(item.get("content_html"), str):
            for key, detail in html_problems(item["content_html"]):
                self.report(key, f"{where}/content_html", detail)
        for key in ("date_published", "date_modified"):
            if key in item:
                if not isinstance(item[key], str):
                    self.report("InvalidRFC3339Date", f"{where}/{key}", repr(item[key]))
                else:
                    for problem, detail in rfc3339_problems(item[key], self.now):
                        self.report(problem, f"{where}/{key}", detail)
        tags = item.get("tags")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                self.report("InvalidValue", f"{where}/tags", "must be an array of strings")
            else:
                for index, tag in enumerate(tags):
                    self.plain(tag, f"{where}/tags/{index}")
        self.language(item, where)
        self.authors(item, where)
        attachments = item.get("attachments")
        if attachments is not None:
            if not isinstance(attachments, list):
                self.report("InvalidValue", f"{where}/attachments", "must be an array")
                return
            for index, attachment in enumerate(attachments):
                self.attachment(attachment, f"{where}/attachments/{index}")

    def attachment(self, attachment: Any, where: str) -> None:
        if not isinstance(attachment, dict):
            self.report("InvalidValue", where, "must be an object")
            return
        known = {"url", "mime_type", "title", "size_in_bytes", "duration_in_seconds"}
        self.keys(attachment, known, where)
        if "url" not in attachment or "mime_type" not in attachment:
            self.report("MissingAttribute", where, "url and mime_type")
        self.url(attachment, "url", where)
        mime = attachment.get("mime_type")
        if mime is not None and not (isinstance(mime, str) and MIME_TYPE.match(mime)):
            self.report("InvalidMIMEAttribute", f"{where}/mime_type", repr(mime))
        for key in ("size_in_bytes", "duration_in_seconds"):
            value = attachment.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                self.report("InvalidValue", f"{where}/{key}", "must be a number")

    def authors(self, parent: dict[str, Any], where: str) -> None:
        authors = parent.get("authors")
        if authors is not None:
            if not isinstance(authors, list):
                self.report("InvalidValue", f"{where}/authors", "must be an array of objects")
                return
            for index, author in enumerate(authors):
                self.author(author, f"{where}/authors/{index}")
        if "author" in parent:  # JSON Feed 1.0, deprecated but allowed
            self.author(parent["author"], f"{where}/author")

    def author(self, author: Any, where: str) -> None:
        if not isinstance(author, dict):
            self.report("InvalidValue", where, "an author must be an object")
            return
        self.keys(author, {"name", "url", "avatar"}, where)
        if not any(isinstance(author.get(k), str) for k in ("name", "url", "avatar")):
            self.report("MissingElement", where, "name, url or avatar")
        self.string(author, "name", where, plain=True)
        self.url(author, "url", where)
        self.url(author, "avatar", where)

    def keys(self, mapping: dict[str, Any], known: AbstractSet[str], where: str) -> None:
        for key in mapping:
            if key not in known and not JSON_EXTENSION_KEY.match(key):
                self.report("UndefinedElement", f"{where}/{key}", "not JSON Feed 1.1")

    def string(
        self,
        mapping: dict[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        plain: bool = False,
    ) -> None:
        if key not in mapping:
            if required:
                self.report("MissingElement", where or "/", key)
            return
        value = mapping[key]
        if not isinstance(value, str):
            self.report("InvalidValue", f"{where}/{key}", f"must be a string, not {value!r}")
        elif plain:
            self.plain(value, f"{where}/{key}")

    def plain(self, value: str, where: str) -> None:
        tags = [t for t in HTML_END_TAG.findall(value) if t.lower() in HTML_TAGS]
        if tags:
            self.report("ContainsHTML", where, f"</{tags[0]}> in plain text")

    def url(self, mapping: dict[str, Any], key: str, where: str) -> None:
        if key not in mapping:
            return
        value = mapping[key]
        if not isinstance(value, str):
            self.report("InvalidValue", f"{where}/{key}", f"must be a string, not {value!r}")
            return
        for problem, detail in full_uri_problems(value, "InvalidFullLink"):
            self.report(problem, f"{where}/{key}", detail)

    def language(self, mapping: dict[str, Any], where: str) -> None:
        value = mapping.get("language")
        if value is not None and not (isinstance(value, str) and language_ok(value)):
            self.report("InvalidLanguage", f"{where}/language", repr(value))

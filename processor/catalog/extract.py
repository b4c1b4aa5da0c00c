"""An article page (HTML) -> `Article`: title, byline, date, canonical URL, clean body, origin. Pure.

Metadata comes from what publishers declare for search engines and social cards, in order of
trust: JSON-LD `NewsArticle` (and its kin), OpenGraph/`article:*` meta tags, `rel=canonical`,
then the visible page (`<h1>`, byline elements, `<time>`). The body is the block of the page
with the most paragraph text; from it only paragraphs, headings, lists, quotes and inline
links survive, sanitised by nh3 (an allow-list sanitiser), with images, figures, captions,
embeds, scripts, forms, ads, promo boxes and CMS leftovers gone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import lxml.html
import nh3
from lxml import etree

from processor.catalog.origin import Origin, find_origin

BODY_TAGS = {"p", "a", "em", "strong", "i", "b", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "br", "sup", "sub"}
BODY_BLOCKS = ("p", "h2", "h3", "h4", "ul", "ol", "blockquote")
_ARTICLE_TYPES = re.compile(r"(News|Reportage|Analysis|Opinion|Review|Background|Satirical|Scholarly|Tech)?Article$|BlogPosting$|Report$")
_DROP_TAGS = (
    "script", "style", "noscript", "iframe", "form", "figure", "figcaption", "picture", "img", "video", "audio",
    "svg", "aside", "nav", "footer", "button", "input", "select", "textarea", "object", "embed", "template",
    "canvas", "map", "dialog", "header",
)
# A class or id token that starts with one of these marks page furniture, not story text.
_BOILERPLATE_TOKEN = re.compile(
    r"^(share|sharing|social|related|newsletter|promo|advert|ads?$|ad-|sponsor|subscri|donat|comment|sidebar|"
    r"widget|breadcrumb|popup|modal|sign-?up|paywall|recirc|more-stories|read-?more|outbrain|taboola|caption|"
    r"wp-caption|author-?bio|tags$|tag-list|republish|toolbar|byline|dateline|disclaimer|inline-?cta|cta$|"
    r"membership|support-us|most-?popular|trending|gallery|credit|twitter|instagram|tweet|embed|video|"
    r"photo|image|media-?(?:caption|credit)|correction)",
    re.I,
)
_SHORTCODE = re.compile(r"\[/?[a-z][a-z0-9_-]*(?:\s[^\]]*)?\]", re.I)
_TITLE_SEPARATORS = re.compile(r"\s+[|–—\-:·»]\s+")


class NotAnArticle(Exception):
    """The page has no article body to import."""


@dataclass(frozen=True)
class Article:
    canonical_url: str
    title: str
    byline: str
    published_at: datetime | None
    language: str
    body_html: str
    paragraphs: tuple[str, ...]
    site_name: str
    origin: Origin | None


def extract_article(
    html: str | bytes,
    *,
    url: str | None = None,
    wire_sources: tuple[str, ...] = (),
    own_names: tuple[str, ...] = (),
) -> Article:
    root = _parse(html)
    meta = _meta(root)
    ld = _json_ld_article(root)
    canonical = _canonical(root, meta, ld, url)
    site_name = meta.get("og:site_name", "") or _ld_name(ld.get("publisher"))
    title = _title(root, meta, ld, site_name)
    byline = _byline(root, meta, ld)
    container = _body_container(root)
    if container is None:
        raise NotAnArticle("no article body found (no block of paragraphs)")
    blocks = _body_blocks(container)
    paragraphs = tuple(_text(block) for block in blocks if _text(block))
    if not title or not paragraphs:
        raise NotAnArticle("no headline or no paragraphs found")
    body_html = sanitise_body("".join(_serialise(block, canonical) for block in blocks))
    page_host = (urlsplit(url or meta.get("og:url", "") or canonical).hostname or "").removeprefix("www.")
    canonical_host = (urlsplit(canonical).hostname or "").removeprefix("www.")
    origin = find_origin(
        paragraphs,
        page_texts=_page_texts(root, container),
        labels=_credit_labels(root),
        byline=byline,
        own_names=own_names,
        site_names=tuple(n for n in (site_name, page_host, canonical_host) if n),
        wire_sources=wire_sources,
        meta_source=meta.get("dc.source", ""),
        syndication_source=_link_href(root, "syndication-source", canonical),
    )
    if origin is None and page_host and canonical_host and not _same_site(page_host, canonical_host):
        origin = Origin(canonical_host, f'<link rel="canonical" href="{canonical[:200]}"> on {page_host}')
    return Article(
        canonical_url=canonical,
        title=title,
        byline=byline,
        published_at=_published(root, meta, ld),
        language=(root.get("lang") or meta.get("og:locale", "") or "").split("-")[0].split("_")[0].lower()[:35],
        body_html=body_html,
        paragraphs=paragraphs,
        site_name=site_name,
        origin=origin,
    )


def sanitise_body(html: str) -> str:
    """Only text structure and links: no classes, styles, images, scripts or CMS shortcodes."""
    html = _SHORTCODE.sub("", html)
    cleaned = nh3.clean(
        html,
        tags=BODY_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
        clean_content_tags={"script", "style", "figure", "figcaption", "iframe", "noscript", "object", "template"},
    )
    return re.sub(r"<p>\s*</p>", "", cleaned)


def _parse(html: str | bytes):
    text = decode_html(html) if isinstance(html, bytes) else html
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text.replace("\x00", ""))
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        raise NotAnArticle("the page is empty or not HTML") from None


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Bytes of a page -> text: the declared charset (HTTP, then <meta>), else UTF-8, else Windows-1252."""
    candidates = [declared] if declared else []
    match = _META_CHARSET.search(data[:4096])
    if match:
        candidates.append(match.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for charset in candidates:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def _meta(root) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in root.iter("meta"):
        key = (element.get("property") or element.get("name") or element.get("itemprop") or "").strip().lower()
        value = (element.get("content") or "").strip()
        if key and value and key not in found:
            found[key] = value
    return found


def _json_ld_article(root) -> dict:
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "", strict=False)
        except (ValueError, TypeError):
            continue
        for node in _walk_ld(data):
            types = node.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(isinstance(t, str) and _ARTICLE_TYPES.search(t) for t in types):
                return node
    return {}


def _walk_ld(data):
    if isinstance(data, list):
        for item in data:
            yield from _walk_ld(item)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity", "itemListElement"):
            if key in data:
                yield from _walk_ld(data[key])


def _ld_name(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return str(value.get("name") or "").strip()
    if isinstance(value, list):
        return ", ".join(n for n in (_ld_name(v) for v in value) if n)
    return ""


def _absolute(href: str, base: str | None) -> str:
    href = href.strip()
    if href.startswith("//"):
        return "https:" + href
    return urljoin(base, href) if base else href


def _is_front_page(url: str) -> bool:
    try:
        return urlsplit(url).path.strip("/") == ""
    except ValueError:
        return True


def _canonical(root, meta: dict[str, str], ld: dict, url: str | None) -> str:
    og_url = meta.get("og:url", "")
    candidates = [
        _link_href(root, "canonical", url or og_url),
        _absolute(og_url, url) if og_url else "",
        _ld_url(ld),
        url or "",
    ]
    usable = [c for c in candidates if c.startswith(("http://", "https://"))]
    for candidate in usable:
        if not _is_front_page(candidate):
            return candidate
    return usable[0] if usable else ""


def _ld_url(ld: dict) -> str:
    entity = ld.get("mainEntityOfPage")
    if isinstance(entity, dict):
        entity = entity.get("@id") or entity.get("url")
    for value in (ld.get("url"), entity):
        if isinstance(value, str) and value.startswith("http"):
            return value
    return ""


def _link_href(root, rel: str, base: str | None) -> str:
    for element in root.xpath("//link[@href]"):
        if rel in (element.get("rel") or "").lower().split():
            return _absolute(element.get("href"), base)
    return ""


def _title(root, meta: dict[str, str], ld: dict, site_name: str) -> str:
    h1 = next((_text(h) for h in root.iter("h1") if _text(h)), "")
    for candidate in (ld.get("headline"), meta.get("og:title"), meta.get("twitter:title"), h1, _title_tag(root, site_name)):
        if isinstance(candidate, str) and candidate.strip():
            return _strip_site_suffix(" ".join(candidate.split()), site_name)
    return ""


def _title_tag(root, site_name: str) -> str:
    title = root.find(".//title")
    return _text(title) if title is not None else ""


def _strip_site_suffix(title: str, site_name: str) -> str:
    """ "Headline | Site" -> "Headline", when the last part is the site's own name."""
    separators = list(_TITLE_SEPARATORS.finditer(title))
    if site_name and separators:
        last = separators[-1]
        if title[last.end():].strip().lower() == site_name.lower():
            return title[: last.start()].strip()
    return title


def _byline(root, meta: dict[str, str], ld: dict) -> str:
    authors = ld.get("author") or ld.get("creator")
    people = _ld_people(authors)
    if people:
        return people
    for key in ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator", "byl"):
        value = meta.get(key, "")
        if value and not value.startswith("http"):
            return _clean_byline(value)
    for xpath in (
        "//*[@rel='author']",
        "//*[@itemprop='author']",
        "//*[contains(concat(' ', normalize-space(@class), ' '), ' byline ')]",
        "//*[contains(@class, 'author-name') or contains(@class, 'byline__name') or contains(@class, 'article-author')]",
    ):
        for element in root.xpath(xpath):
            text = _text(element)
            if text and len(text) < 120:
                return _clean_byline(text)
    return ""


def _ld_people(value) -> str:
    if isinstance(value, list):
        names = [_ld_people(v) for v in value]
        return ", ".join(dict.fromkeys(n for n in names if n))
    if isinstance(value, dict):
        name = _ld_name(value)
        return _clean_byline(name) if name and not name.startswith("http") else ""
    if isinstance(value, str) and not value.startswith("http"):
        return _clean_byline(value)
    return ""


def _clean_byline(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"^(by|von|par|por|di)\s+", "", text, flags=re.I).strip()


def _published(root, meta: dict[str, str], ld: dict) -> datetime | None:
    candidates = [ld.get("datePublished"), ld.get("dateCreated")]
    candidates += [meta.get(k) for k in ("article:published_time", "og:article:published_time", "pubdate", "publishdate",
                                          "date", "dc.date.issued", "dc.date", "sailthru.date", "parsely-pub-date", "datepublished")]
    candidates += root.xpath("//time/@datetime")[:1]
    for value in candidates:
        parsed = parse_date(value)
        if parsed:
            return parsed
    return None


def parse_date(value) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _text(element) -> str:
    return " ".join(element.text_content().split()) if element is not None else ""


def _body_container(root):
    """The element holding the most paragraph text: the article body."""
    for element in root.xpath("//script | //style | //noscript | //template"):
        element.drop_tree()
    scores: dict = {}
    for paragraph in root.iter("p"):
        length = len(_text(paragraph))
        if length < 25 or _inside_boilerplate(paragraph):
            continue
        parent = paragraph.getparent()
        if parent is None:
            continue
        scores[parent] = scores.get(parent, 0) + length
        grandparent = parent.getparent()
        if grandparent is not None:
            scores[grandparent] = scores.get(grandparent, 0) + length / 2
    if not scores:
        return None
    return max(scores.items(), key=lambda item: item[1])[0]


def _inside_boilerplate(element) -> bool:
    node = element
    depth = 0
    while node is not None and depth < 3:
        if node.tag in ("nav", "footer", "form", "figure", "figcaption"):
            return True
        if depth > 0 and _is_boilerplate(node):
            return True
        node = node.getparent()
        depth += 1
    return False


def _body_blocks(container) -> list:
    blocks = []
    for element in container.iter(*BODY_BLOCKS):
        if any(ancestor in blocks for ancestor in element.iterancestors(*BODY_BLOCKS)):
            continue
        if _inside_boilerplate_below(element, container) or element.tag in _DROP_TAGS:
            continue
        if not _text(element):
            continue
        blocks.append(element)
    return blocks


def _inside_boilerplate_below(element, container) -> bool:
    node = element
    while node is not None and node is not container:
        if node.tag in _DROP_TAGS:
            return True
        if _is_boilerplate(node):
            return True
        node = node.getparent()
    return False


def _is_boilerplate(element) -> bool:
    if element.tag in ("body", "html", "article", "main"):
        return False
    tokens = f"{element.get('class') or ''} {element.get('id') or ''}".split()
    return any(_BOILERPLATE_TOKEN.match(token) for token in tokens)


def _serialise(block, base: str) -> str:
    for link in block.iter("a"):
        href = link.get("href")
        if href:
            link.set("href", _absolute(href, base))
    return lxml.html.tostring(block, encoding="unicode", with_tail=False)


def _page_texts(root, container) -> list[str]:
    """Short text blocks anywhere on the page outside the body, where credit lines often sit."""
    texts = []
    for element in root.iter("p", "em", "i", "div", "span", "small"):
        if element.tag in ("div", "span") and len(element) > 2:
            continue
        text = _text(element)
        if 20 <= len(text) <= 400 and (not texts or texts[-1] != text):
            texts.append(text)
    return texts


def _credit_labels(root) -> list[str]:
    """Texts of byline and credit elements (not photo credits), e.g. `<p class="credit">JIJI</p>`."""
    labels = []
    for element in root.xpath(
        "//*[contains(@class, 'byline') or contains(@class, 'credit') or contains(@class, 'author') "
        "or contains(@class, 'source')] | //a[contains(@href, '/author/') or contains(@href, '/writer/')]"
    ):
        if any(a.tag in ("figure", "figcaption") or re.search(r"caption|photo|image|img", a.get("class") or "", re.I)
               for a in (element, *element.iterancestors())):
            continue
        text = _text(element)
        if 0 < len(text) <= 80:
            labels.append(text)
    return labels[:40]


def _same_site(host_a: str, host_b: str) -> bool:
    def base(host: str) -> str:
        parts = host.split(".")
        return ".".join(parts[-3:]) if len(parts[-1]) == 2 and len(parts) >= 3 and len(parts[-2]) <= 3 else ".".join(parts[-2:])
    return base(host_a) == base(host_b)

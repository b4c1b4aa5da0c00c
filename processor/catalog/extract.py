"""An article page (HTML) -> `Article`: its metadata (`metadata.py`), clean body and origin. Pure.

The body is trafilatura's (`body.py`), else the block of the page with the most paragraph text; of
it only paragraphs, headings, lists, quotes and inline links survive, sanitised by nh3 (an allow-list
sanitiser), with images, figures, captions, embeds, scripts, forms, ads, promo boxes and CMS leftovers
gone.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import htmldate
import lxml.html
import nh3
from lxml import etree

from processor.catalog.body import article_body
from processor.catalog.metadata import (absolute_url, canonical_url, element_text, json_ld_article, ld_name,
                                        link_href, page_byline, page_meta, page_title, published_at)
from processor.catalog.origin import Origin, find_origin

BODY_TAGS = {"p", "a", "em", "strong", "i", "b", "h2", "h3", "h4", "ul", "ol", "li", "blockquote", "br", "sup", "sub"}
BODY_BLOCKS = ("p", "h2", "h3", "h4", "ul", "ol", "blockquote")
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
    summary_only: bool = False   # a feed's summary of the story, not the story
    reading: str = "page"        # how the text was read: "page" (extracted from the page) or "feed" (its content)


def extract_article(
    html: str | bytes,
    *,
    url: str | None = None,
    wire_sources: tuple[str, ...] = (),
    own_names: tuple[str, ...] = (),
) -> Article:
    root = _parse(html)
    meta = page_meta(root)
    ld = json_ld_article(root)
    canonical = canonical_url(root, meta, ld, url)
    site_name = meta.get("og:site_name", "") or ld_name(ld.get("publisher"))
    byline = page_byline(root, meta, ld)
    title = page_title(root, meta, ld, site_name, byline)
    found = article_body(root, canonical)
    container = _body_container(root)
    blocks = _body_blocks(container) if container is not None else []
    own = tuple(element_text(block) for block in blocks if element_text(block))
    if found is not None and sum(map(len, found[1])) * 2 >= sum(map(len, own)):
        body_html, paragraphs = found
    elif own:
        # trafilatura found none, or far less than the page's block of paragraphs holds (on a page it
        # read the navigation as the story): that block, then.
        body_html, paragraphs = "".join(_serialise(block, canonical) for block in blocks), own
    else:
        raise NotAnArticle("no article body found (no block of paragraphs)")
    if not title or not paragraphs:
        raise NotAnArticle("no headline or no paragraphs found")
    body_html = sanitise_body(body_html)
    page_host = (urlsplit(url or meta.get("og:url", "") or canonical).hostname or "").removeprefix("www.")
    canonical_host = (urlsplit(canonical).hostname or "").removeprefix("www.")
    signals = dict(
        page_texts=_page_texts(root),
        labels=_credit_labels(root),
        byline=byline,
        own_names=own_names,
        site_names=tuple(n for n in (site_name, page_host, canonical_host) if n),
        wire_sources=wire_sources,
        meta_source=meta.get("dc.source", ""),
        syndication_source=link_href(root, "syndication-source", canonical),
    )
    # A wire dateline or credit in either reading of the body counts: giving an agency's story away is the
    # costlier mistake, and the two extractors miss different things.
    origin = find_origin(paragraphs, **signals) or (find_origin(own, **signals) if own and own != paragraphs else None)
    if origin is None and page_host and canonical_host and not _same_site(page_host, canonical_host):
        origin = Origin(canonical_host, f'<link rel="canonical" href="{canonical[:200]}"> on {page_host}')
    return Article(
        canonical_url=canonical,
        title=title,
        byline=byline,
        published_at=published_at(root, meta, ld) or _date_from_page(root, url),
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


def _body_container(root):
    """The element holding the most paragraph text: the article body."""
    for element in root.xpath("//script | //style | //noscript | //template"):
        element.drop_tree()
    scores: dict = {}
    for paragraph in root.iter("p"):
        length = len(element_text(paragraph))
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
        if not element_text(element):
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
            link.set("href", absolute_url(href, base))
    return lxml.html.tostring(block, encoding="unicode", with_tail=False)


def _page_texts(root) -> list[str]:
    """Short text blocks anywhere on the page outside the body, where credit lines often sit."""
    texts = []
    for element in root.iter("p", "em", "i", "div", "span", "small"):
        if element.tag in ("div", "span") and len(element) > 2:
            continue
        text = element_text(element)
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
        text = element_text(element)
        if 0 < len(text) <= 80:
            labels.append(text)
    return labels[:40]


def _date_from_page(root, url: str | None) -> datetime | None:
    """htmldate's reading of the page (dates in the text, the URL, scattered markup) where its metadata has
    none: on the shared pages 27/30 dates right from the metadata alone, 29/30 with this."""
    found = htmldate.find_date(copy.deepcopy(root), original_date=True, url=url, extensive_search=False)  # it prunes
    try:
        return datetime.strptime(found, "%Y-%m-%d").replace(tzinfo=timezone.utc) if found else None
    except ValueError:
        return None


def _same_site(host_a: str, host_b: str) -> bool:
    def base(host: str) -> str:
        parts = host.split(".")
        return ".".join(parts[-3:]) if len(parts[-1]) == 2 and len(parts) >= 3 and len(parts[-2]) <= 3 else ".".join(parts[-2:])
    return base(host_a) == base(host_b)

"""What a page says about itself: canonical URL, title, byline and date, from JSON-LD `NewsArticle` (and
its kin), OpenGraph/`article:*` meta tags, `rel=canonical`, then the visible page (`<h1>`, byline
elements, `<time>`), in that order of trust. Pure."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

_ARTICLE_TYPES = re.compile(r"(News|Reportage|Analysis|Opinion|Review|Background|Satirical|Scholarly|Tech)?Article$|BlogPosting$|Report$")
_TITLE_SEPARATORS = re.compile(r"\s+[|–—\-:·»]\s+")
_DANGLING_SEPARATOR = re.compile(r"\s+[|–—\-:·»]\s*$")  # "Headline - " where a site's name was left out


def element_text(element) -> str:
    return " ".join(element.text_content().split()) if element is not None else ""


def page_meta(root) -> dict[str, str]:
    found: dict[str, str] = {}
    for element in root.iter("meta"):
        key = (element.get("property") or element.get("name") or element.get("itemprop") or "").strip().lower()
        # Some CMSs (Reuters' among them) write value= where the standard says content=.
        value = (element.get("content") or element.get("value") or "").strip()
        if key and value and key not in found:
            found[key] = value
    return found


def json_ld_article(root) -> dict:
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


def ld_name(value) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return str(value.get("name") or "").strip()
    if isinstance(value, list):
        return ", ".join(n for n in (ld_name(v) for v in value) if n)
    return ""


def absolute_url(href: str, base: str | None) -> str:
    href = href.strip()
    if href.startswith("//"):
        return "https:" + href
    return urljoin(base, href) if base else href


def _is_front_page(url: str) -> bool:
    try:
        return urlsplit(url).path.strip("/") == ""
    except ValueError:
        return True


def canonical_url(root, meta: dict[str, str], ld: dict, url: str | None) -> str:
    og_url = meta.get("og:url", "")
    candidates = [
        link_href(root, "canonical", url or og_url),
        absolute_url(og_url, url) if og_url else "",
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


def link_href(root, rel: str, base: str | None) -> str:
    for element in root.xpath("//link[@href]"):
        if rel in (element.get("rel") or "").lower().split():
            return absolute_url(element.get("href"), base)
    return ""


def page_title(root, meta: dict[str, str], ld: dict, site_name: str, byline: str = "") -> str:
    h1 = next((element_text(h) for h in root.iter("h1") if element_text(h)), "")
    for candidate in (ld.get("headline"), meta.get("og:title"), meta.get("twitter:title"), h1, _title_tag(root, site_name)):
        if isinstance(candidate, str) and candidate.strip():
            title = _strip_site_suffix(" ".join(candidate.split()), site_name)
            return _strip_author_suffix(title, byline)
    return ""


def _strip_author_suffix(title: str, byline: str) -> str:
    """ "Headline | Eleanor Ainge Roy" -> "Headline", when the last part is one of the authors."""
    separators = list(_TITLE_SEPARATORS.finditer(title))
    authors = {name.strip().lower() for name in byline.split(",") if name.strip()}
    if separators and authors and title[separators[-1].end():].strip().lower() in authors:
        return title[: separators[-1].start()].strip()
    return title


def _title_tag(root, site_name: str) -> str:
    title = root.find(".//title")
    return element_text(title) if title is not None else ""


def _strip_site_suffix(title: str, site_name: str) -> str:
    """ "Headline | Site" -> "Headline", when the last part is the site's own name, however spaced and cased,
    or the start of it ("Aktuálně.cz" of "Aktuálně.cz - Víte, co se právě děje", "La Stampa" of
    "lastampa.it"); a separator left dangling at the end goes."""
    title = _DANGLING_SEPARATOR.sub("", title)
    separators = list(_TITLE_SEPARATORS.finditer(title))
    if site_name and separators:
        last = separators[-1]
        first = _TITLE_SEPARATORS.split(site_name)[0]
        names = {_compact(name) for name in (site_name, first, first.rsplit(".", 1)[0] if "." in first else first)}
        if _compact(title[last.end():]) in names:  # "La Stampa" is lastampa.it's name too
            return title[: last.start()].strip()
    return title


def _compact(name: str) -> str:
    return re.sub(r"\W+", "", name.casefold())


def page_byline(root, meta: dict[str, str], ld: dict) -> str:
    authors = ld.get("author") or ld.get("creator")
    people = _ld_people(authors)
    if people:
        return people
    for key in ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator", "byl"):
        value = _named(_clean_byline(meta.get(key, ""))) if not meta.get(key, "").startswith("http") else ""
        if value:
            return value
    for xpath in (
        "//*[@rel='author']",
        "//*[@itemprop='author']",
        "//*[contains(@class, 'author-name') or contains(@class, 'byline__name') or contains(@class, 'article-author')]",
        "//*[contains(concat(' ', normalize-space(@class), ' '), ' byline ')]",
        "//byline",                                   # a CMS's own element (dpa-AFX)
        "//*[contains(@class, 'byline')]",            # "pb-byline", "article-byline"
        # An author page's link ("/autori/" and "/autores/" too), with a full name in it (a menu's "People"
        # is no one).
        "//a[(contains(@href, '/author/') or contains(@href, '/authors/') or contains(@href, '/autor')"
        " or contains(@href, '/people/'))"
        " and contains(normalize-space(.), ' ')]",
    ):
        for element in root.xpath(xpath):
            # Each piece of text on its own ("Howard Blume" <span>Staff Writer</span>): separate people or roles.
            text = ", ".join(piece for piece in (" ".join(t.split()) for t in element.itertext()) if piece)
            found = _named(_clean_byline(text)) if text and len(text) < 120 else ""
            if found:
                return found
    return ""


_NOBODY = {"no author", "admin", "administrator", "unknown", "anonymous", "staff", "redaktion", "redacción"}


def _named(byline: str) -> str:
    """The byline if it names someone: not a placeholder ("No Author"), a site's address ("finanztreff.de"),
    or the initials of a comment's avatar ("J")."""
    names = [name for name in byline.split(", ") if len(name) >= 2 and name.lower() not in _NOBODY
             and not re.fullmatch(r"[\w-]+(\.[\w-]+)+", name) and len(name.split()) <= 5]  # not a bio's sentence
    return ", ".join(names) if names and max(map(len, names)) >= 3 else ""


def _ld_people(value) -> str:
    if isinstance(value, list):
        names = [_ld_people(v) for v in value]
        return ", ".join(dict.fromkeys(n for n in names if n))
    if isinstance(value, dict):
        name = ld_name(value)
        return _clean_byline(name) if name and not name.startswith("http") else ""
    if isinstance(value, str) and not value.startswith("http"):
        return _clean_byline(value)
    return ""


_ROLE_WORDS = r"editor|correspondent|reporter|writer|columnist|contributor|critic|producer|analyst|chief"
_ROLE = re.compile(rf"\s+(?:\S+\s+)?(?:{_ROLE_WORDS})$", re.I)
_ROLE_ONLY = re.compile(rf"^(?:\S+\s+)?(?:{_ROLE_WORDS})$", re.I)
_PLACE = re.compile(r"\s+in\s+[A-Z][^,]*$")    # "Oliver Holmes in Jerusalem"
_PEOPLE = re.compile(r"\s*(?:,|\band\b|&|\bund\b|\bet\b|\by\b)\s*")


def clean_byline(text: str) -> str:
    """Every author's name, without "By", roles ("Diplomatic editor") or places ("in New York")."""
    # "(avec Damien Leloup et Morgane Tual)" names more authors; "(now)", "(earlier)" say when.
    text = re.sub(r"\(([^)]*)\)", lambda m: f", {m.group(1)}" if re.search(r"\b[A-Z]", m.group(1)) else " ",
                  " ".join(text.split()))
    text = re.sub(r"(?:^|(?<=, ))(?:by|von|par|por|di|avec|with|mit|con)\s+", "", text.strip(), flags=re.I)
    names = []
    for part in _PEOPLE.split(text):
        part = _PLACE.sub("", part.strip())
        if _ROLE_ONLY.match(part) or part.lower() in ("by", "von", "par", "por", "di") or re.search(r"\d", part):
            continue  # "Staff Writer", "By" or a date on its own: no one's name
        shorter = _ROLE.sub("", part)
        if len(shorter.split()) >= 2:  # a role is dropped only when a name is left
            part = shorter
        if part:
            names.append(part)
    return ", ".join(dict.fromkeys(names))


_clean_byline = clean_byline


def published_at(root, meta: dict[str, str], ld: dict) -> datetime | None:
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

"""Did a story originate with another publication? Pure; the answer names it and quotes the evidence.

Stories that came from a wire service or another outlet are not ours to give away. The
signals, strongest first: an explicit credit ("This article originally appeared on JTA.org",
"This post originally appeared on Grist", "Reprinted by permission of …"), a wire dateline
("WASHINGTON (AP) —", "(JTA) —", "【6月18日 AFP】"), a wire byline ("Associated Press",
"Fatima Hussein, The Associated Press"), a wire copyright or source line in the story body
("© Thomson Reuters 2020", "Quelle: dpa-AFX"), and page metadata (`dc.source`,
`<link rel="syndication-source">`). A publication's own name never counts against it: "(CNN)"
on cnn.com and "(Reuters)" on reuters.com are their own stories. Mentions that only look like
attribution ("Reuters cited as a source", "The Associated Press contributed to this report",
photo credits, site-wide footers outside the story) are deliberately not signals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Canonical names for the spellings wire services go by.
_ALIASES = {
    "ap": "Associated Press",
    "the associated press": "Associated Press",
    "associated press": "Associated Press",
    "jta": "JTA",
    "jta.org": "JTA",
    "jewish telegraphic agency": "JTA",
    "reuters": "Reuters",
    "thomson reuters": "Reuters",
    "afp": "AFP",
    "agence france-presse": "AFP",
    "dpa": "dpa",
    "dpa-afx": "dpa-AFX",
    "jiji": "Jiji Press",
    "jiji press": "Jiji Press",
    "cnn": "CNN",
    "cnn wire": "CNN",
    "upi": "UPI",
    "yonhap": "Yonhap",
    "kyodo": "Kyodo",
    "xinhua": "Xinhua",
    "haaretz": "Haaretz",
    "haaretz.com": "Haaretz",
}
_DATELINE_AGENCIES = r"AP|Reuters|AFP|dpa|dpa-AFX|JTA|UPI|CNN|Xinhua|Kyodo|Jiji|EFE|ANSA|Bloomberg|Yonhap"
_DATELINE = re.compile(
    rf"^\s*(?:[A-ZÀ-Þ][\w.,'’/\- ]{{0,60}}\s)?\((?P<agency>{_DATELINE_AGENCIES})\)\s*(?:--|[—–-])", re.U
)
_DATELINE_VIA = re.compile(rf"^\s*[\w .'’-]{{2,40}}\s+via\s+(?P<agency>{_DATELINE_AGENCIES})\s*(?:--|[—–-])", re.I)
_BRACKET_DATELINE = re.compile(rf"^\s*【[^】]{{0,30}}\b(?P<agency>{_DATELINE_AGENCIES})】")
_NAME = r"(?P<name>(?:the\s+)?[A-Z][\w&'’\-]*(?:\.(?:org|com|net|co\.uk|de|fr|news|us))?(?:\s+(?:[A-Z0-9][\w&'’\-]*|of|and|for|the)(?:\.(?:org|com|net))?){0,6})"
_CREDIT = [
    re.compile(r"(?i:\b(?:this|the)\s+(?:article|story|post|piece|essay|report|column|interview|op-ed|excerpt)?\s*"
               r"(?:was\s+|is\s+)?(?:originally|first)\s+(?:appeared|published|ran|posted|produced|reported)\s+"
               r"(?:on|in|by|at|with)\s+)" + _NAME),
    re.compile(r"(?i:\b(?:originally|first)\s+(?:appeared|published)\s+(?:on|in|by)\s+)" + _NAME),
    re.compile(r"(?i:\bre(?:published|printed)\s+(?:with|by)\s+(?:the\s+)?permission\s+(?:of|from)\s+)" + _NAME),
    re.compile(r"(?i:\bthis\s+(?:article|story)\s+(?:was\s+)?produced\s+by\s+)" + _NAME),
    re.compile(r"(?i:\b(?:published|republished)\s+(?:here\s+)?in\s+partnership\s+with\s+)" + _NAME),
]
_CLOSING = [
    re.compile(r"©\s*(?:\d{4}\s+)?(?P<name>(?:The\s+)?Associated Press|Thomson Reuters|Reuters|AFP|dpa)\b", re.I),
    re.compile(r"\bCopyright\s+(?:\d{4}\s+)?(?P<name>(?:The\s+)?Associated Press|Thomson Reuters|AFP)\b.*(?:may not|All Rights)", re.I),
    re.compile(r"^\s*(?:Quelle|Source|Fuente|Fonte)\s*:\s*(?P<name>dpa-AFX|dpa|AFP|Reuters|AP|Associated Press)\s*\.?\s*$", re.I),
    re.compile(r"^\s*(?P<name>JIJI|Kyodo|AFP|Reuters|AP|Associated Press|JTA|dpa)\s*$", re.I),
    re.compile(r"\b(?P<name>Reuters)\s+Health\s+Information\b"),
]


@dataclass(frozen=True)
class Origin:
    name: str        # who the story came from, e.g. "JTA"
    evidence: str    # the text or markup that says so


def canonical_name(name: str, known: tuple[str, ...] = ()) -> str:
    cleaned = re.sub(r"^(?:the\s+|www\.)", "", name.strip().rstrip(".,;:"), flags=re.I).strip()
    lowered = cleaned.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for publication in known:
        if lowered in (publication.lower(), publication.lower() + ".org", publication.lower() + ".com"):
            return publication
    return cleaned


WIRE_AGENCIES = frozenset({"Associated Press", "Reuters", "AFP", "dpa", "dpa-AFX", "JTA", "Jiji Press", "UPI", "Yonhap",
                           "Xinhua", "Kyodo", "EFE", "ANSA", "news agencies"})


def find_origin(
    body: list[str] | tuple[str, ...],
    *,
    page_texts: list[str] | tuple[str, ...] = (),
    labels: list[str] | tuple[str, ...] = (),
    byline: str = "",
    own_names: tuple[str, ...] = (),
    site_names: tuple[str, ...] = (),
    wire_sources: tuple[str, ...] = (),
    meta_source: str = "",
    syndication_source: str = "",
) -> Origin | None:
    """The publication a story originated with, or None when it is the publisher's own.

    `body` is the story's paragraphs; `page_texts` every short text block on the page (credit
    lines often sit outside the body); `labels` the texts of byline/credit elements. `own_names`
    are the importing publication's names, never held against it; `site_names` the page's own
    names, which excuse everything but a wire agency (a Reuters story on reuters.com is still
    wire copy, a CNN story on cnn.com is CNN's own).
    """
    own = {_fold(name) for name in own_names if name}
    site = {_fold(name) for name in site_names if name}

    def foreign(name: str) -> bool:
        folded = _fold(name)
        if not folded or folded in own:
            return False
        return canonical_name(name) in WIRE_AGENCIES or folded not in site

    for paragraph in [*body, *page_texts]:
        for pattern in _CREDIT:
            match = pattern.search(paragraph)
            if match and foreign(match.group("name")) and not _looks_like_time(match.group("name")):
                return Origin(canonical_name(match.group("name"), wire_sources), _excerpt(paragraph, match))
    for paragraph in body[:3]:
        for pattern in (_DATELINE, _DATELINE_VIA, _BRACKET_DATELINE):
            match = pattern.search(paragraph)
            if match and foreign(canonical_name(match.group("agency"))):
                return Origin(canonical_name(match.group("agency")), _excerpt(paragraph, match))
    for label in (byline, *labels):
        wire_byline = _wire_in_byline(label, wire_sources)
        if wire_byline and foreign(wire_byline):
            return Origin(wire_byline, f"byline: {label.strip()[:200]}")
    for paragraph in body[-4:]:
        for pattern in _CLOSING:
            match = pattern.search(paragraph)
            if match and foreign(canonical_name(match.group("name"))):
                return Origin(canonical_name(match.group("name")), _excerpt(paragraph, match))
    if meta_source and foreign(meta_source):
        return Origin(canonical_name(meta_source, wire_sources), f'<meta name="dc.source" content="{meta_source[:100]}">')
    if syndication_source:
        return Origin(syndication_source, f'<link rel="syndication-source" href="{syndication_source[:200]}">')
    return None


_AGENCIES_CREDIT = re.compile(r"\b(?:staff\s+and\s+agencies|and\s+agencies|with\s+agencies|agencies)\b", re.I)
_PLACE = re.compile(r"\s+in\s+[A-Z].*$")     # "Reuters in New York": a correspondent's place
_BY = re.compile(r"^\s*by\s+", re.I)


def _wire_in_byline(byline: str, wire_sources: tuple[str, ...]) -> str | None:
    """A wire service named as (part of) the byline, in any of the forms papers print: "Associated Press",
    "Jane Doe, The Associated Press", "Reuters in New York", "Associated Press in Palm Beach, Florida",
    "AP", "dpa/AFP", "Staff and agencies", "Jane Doe with agencies"."""
    if not byline.strip():
        return None
    if _AGENCIES_CREDIT.search(byline):
        return "news agencies"
    parts = [p.strip() for p in re.split(r",|\band\b|/|\||;|\bvia\b|\bwith\b", _BY.sub("", byline)) if p.strip()]
    for part in parts:
        name = canonical_name(_PLACE.sub("", part), wire_sources)
        if name in _ALIASES.values() or any(name.lower() == w.lower() for w in wire_sources):
            return name
    return None


def _fold(name: str) -> str:
    name = re.sub(r"^(?:the\s+|www\.)", "", name.strip().lower())
    name = re.sub(r"\.(?:org|com|net|co\.uk|de|fr)$", "", name)
    return re.sub(r"[^a-z0-9]+", "", name)


def _looks_like_time(name: str) -> bool:
    return bool(re.match(r"^\d", name))


def _excerpt(text: str, match: re.Match) -> str:
    start = max(0, match.start() - 40)
    return " ".join(text[start : match.end() + 40].split())

"""Cut quoted earlier messages out of a reply, so a thread does not re-request every story in it. Pure.

Mail clients quote in two ways: plain text with `>` prefixes or below an attribution line
("On Mon, 2 Apr 2026, Desk <desk@…> wrote:", Outlook's "From: … Sent: …" block, "-----Original
Message-----"), and HTML with `<blockquote>` or a client-specific container (Gmail's
`gmail_quote`, Outlook's `divRplyFwdMsg`, Yahoo's `yahoo_quoted`, Thunderbird's `moz-cite-prefix`).
A forwarded message is not a quote: its content *is* the request, so forwards are left whole.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I | re.S),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I | re.S),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,120}:\s*$", re.I | re.S),
    re.compile(r"^\s*El\b.{0,300}\bescribió:\s*$", re.I | re.S),
    re.compile(r"^\s*Op\b.{0,300}\bschreef\b.{0,120}:\s*$", re.I | re.S),
    re.compile(r"^\s*Il giorno\b.{0,300}\bha scritto:\s*$", re.I | re.S),
    re.compile(r"^\s*Em\b.{0,300}\bescreveu:\s*$", re.I | re.S),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*Reply message\s*-{2,}\s*$", re.I),
]
# What every attribution pattern above starts with: one test per line rules most lines out at once.
_ATTRIBUTION_START = re.compile(r"^\s*(?:On\b|Le\b|Am\b|El\b|Op\b|Il giorno\b|Em\b|-{2,})", re.I)
_OUTLOOK_SEPARATOR = re.compile(r"^\s*_{20,}\s*$")
_HEADER_LINE = re.compile(r"^\s*\*?(From|Sent|Date|To|Subject|Cc|Von|Gesendet|De|Envoyé|Enviado)\s*:\*?", re.I)

_HTML_QUOTE_XPATH = (
    "//blockquote"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_quote ')]"
    " | //*[starts-with(@id, 'OLK_SRC_BODY_SECTION')]"
    " | //*[@data-republish-reply]"
)
# Outlook puts the quoted message after these markers as siblings, not inside them.
_HTML_CUT_FROM_XPATH = "//*[@id='divRplyFwdMsg' or @id='appendonsend' or @id='stopSpelling']"


def strip_quoted_text(text: str) -> str:
    """The part of a plain-text body the sender wrote, without quoted earlier messages."""
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _starts_quote(lines, index):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _starts_quote(lines: list[str], index: int) -> bool:
    line = lines[index]
    # Attribution lines are often wrapped over two lines by the client.
    if _ATTRIBUTION_START.match(line):
        candidates = [line, " ".join(lines[index : index + 2]), " ".join(lines[index : index + 3])]
        if any(pattern.match(candidate) for pattern in _ATTRIBUTION for candidate in candidates):
            return True
    if _OUTLOOK_SEPARATOR.match(line):
        following = [l for l in lines[index + 1 : index + 4] if l.strip()]
        return bool(following) and bool(_HEADER_LINE.match(following[0]))
    if re.match(r"^\s*\*?(From|Von|De)\s*:", line, re.I):
        block = lines[index + 1 : index + 6]
        return sum(1 for l in block if _HEADER_LINE.match(l)) >= 2
    return False


def strip_quoted_html(html: str) -> str:
    """The part of an HTML body the sender wrote, serialised back to HTML."""
    root = parse_html_fragment(html)
    if root is None:
        return ""
    return lxml.html.tostring(strip_quoted_tree(root), encoding="unicode")


def strip_quoted_tree(root):
    """The same on a parsed tree, in place (parsing it again from text would cost as much again)."""
    for marker in root.xpath(_HTML_CUT_FROM_XPATH):
        _remove_with_following(marker)
    for element in root.xpath(_HTML_QUOTE_XPATH):
        _drop(element)
    return root


def parse_html_fragment(html: str):
    """lxml tree of an HTML document or fragment; None when there is nothing to parse."""
    if not html or not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html.replace("\x00", ""))
    except (etree.ParserError, ValueError):
        return None


def _drop(element) -> None:
    parent = element.getparent()
    if parent is not None:
        element.drop_tree()


def _remove_with_following(element) -> None:
    # Everything after the marker, at this level and every level above up to <body>, is quoted.
    node = element
    while node is not None and node.tag not in ("body", "html"):
        for sibling in list(node.itersiblings()):
            _drop(sibling)
        parent = node.getparent()
        if node is element:
            _drop(node)
        node = parent

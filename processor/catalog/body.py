"""An article page's body by trafilatura, the extractor made for this (body-text F1 about 0.94 on the
pages in ../shared/articles, against 0.89 for the block-of-most-paragraphs rule it replaced). Pure.

Before trafilatura reads the page, what a snippet never carries goes: figures with their captions and
credits (a caption left behind reads as a stray bullet point), asides, and furniture marked as such.
After it, the blocks that are page furniture rather than story ("Topics", "Reuse this content",
"Continue reading", newsletter and donation pleas) are dropped, and whitespace is folded.
"""

from __future__ import annotations

import copy
import re

import lxml.html
import trafilatura
from lxml import etree

from processor.catalog.metadata import absolute_url, element_text

BLOCKS = ("p", "h2", "h3", "h4", "ul", "ol", "blockquote")
SHORT_BODY_CHARS = 2000  # a body shorter than this from the precise mode is checked against the default
FURNITURE_CHARS = 400  # a caption, credit or tag list is short; an element with more text may hold the story
_NEVER_STORY = ("figure", "figcaption", "picture", "aside", "nav", "footer", "form", "script", "style",
                "noscript", "template", "iframe", "svg")
_CAPTION_CLASS = re.compile(r"(?:^|[\s_-])(?:caption|credit|byline|share|social|newsletter|related|promo|"
                            r"tags?|topics?|reuse|submeta|advert)(?:$|[\s_-])", re.I)
_FURNITURE_TEXT = re.compile(
    r"^(?:topics?\s*$|reuse this content|continue reading|read more\b|related\s*:|sign up\b|subscribe\b|"
    r"support (?:our|independent) journalism|donate\b|share this\b|follow us\b|advertisement\s*$|"
    r"photograph\s*:|image\s*:|photo\s*:)",
    re.I,
)


def article_body(root, base_url: str) -> tuple[str, tuple[str, ...]] | None:
    """(the body's HTML, its block texts), from a parsed page; None when trafilatura finds no body."""
    page = copy.deepcopy(root)
    for figure in page.xpath("//figure | //picture"):
        # A caption set as a one-item list right after its image (the Guardian's long reads): it goes too.
        following = figure.getnext()
        if following is not None and following.tag in ("ul", "ol") and len(following) == 1:
            following.drop_tree()
    for element in page.xpath("//" + " | //".join(_NEVER_STORY)):
        element.drop_tree()
    for element in page.xpath("//*[@class]"):
        # Only short ones: a wrapper of the whole story may carry "share" or "social" among its classes.
        if (element.tag not in ("html", "body", "article", "main") and _CAPTION_CLASS.search(element.get("class", ""))
                and len(element.text_content()) < FURNITURE_CHARS):
            element.drop_tree()
    found = _extract(page, base_url, precision=True)
    if found is None or len(found[1]) < SHORT_BODY_CHARS:
        # Its precise mode can keep only a story's first paragraphs; a short answer is checked against
        # the default mode, and the longer taken (F1 0.943 either way on the corpus; engadget 0.11 -> 0.99).
        broader = _extract(page, base_url, precision=False)
        if broader is not None and (found is None or len(broader[1]) > len(found[1])):
            found = broader
    if found is None:
        return None
    markup, texts = [], []
    for block in found[0].iter(*BLOCKS):
        if any(ancestor.tag in BLOCKS for ancestor in block.iterancestors()):
            continue
        text = element_text(block)
        if not text or _FURNITURE_TEXT.match(text):
            continue
        for link in block.iter("a"):
            if link.get("href"):
                link.set("href", absolute_url(link.get("href"), base_url))
        markup.append(_folded(lxml.html.tostring(block, encoding="unicode", with_tail=False)))
        texts.append(text)
    return ("".join(markup), tuple(texts)) if texts else None


def _extract(page, base_url: str, *, precision: bool):
    """(trafilatura's body as a tree, its text), or None."""
    found = trafilatura.extract(copy.deepcopy(page), url=base_url or None, output_format="html", include_links=True,
                                include_formatting=True, include_images=False, include_tables=False,
                                include_comments=False, favor_precision=precision)
    if not found:
        return None
    try:
        tree = lxml.html.fromstring(found)
    except (etree.ParserError, ValueError):
        return None
    return tree, tree.text_content()


def _folded(html: str) -> str:
    """Runs of whitespace (the page's indentation) as one space; none just inside a block's tags."""
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"(<(?:p|h[2-4]|li|blockquote|ul|ol)\b[^>]*>)\s+|\s+(</(?:p|h[2-4]|li|blockquote|ul|ol)>)",
                  lambda m: m.group(1) or m.group(2), html)

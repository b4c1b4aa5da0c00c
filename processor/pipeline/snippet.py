"""A story -> the ready-to-paste republishing snippet (HTML and plain text). Pure.

Like the best republish buttons: headline, byline and date, every paragraph with its inline
links and its paragraph style inlined (so it survives a paste into any CMS), the credit line
linking the canonical URL, a `<link rel="canonical">` tag, and the tracking pixel carrying a
per-pickup token. No images, embeds, scripts or classes: the body is sanitised again here by
nh3, whatever the catalog holds, and every other value is escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import lxml.html
import nh3
from markupsafe import Markup

from processor.catalog.stories import StoryView
from processor.config import PublicationConfig
from processor.catalog.extract import BODY_TAGS
from processor.pipeline.templating import render


@dataclass(frozen=True)
class Snippet:
    html: str
    text: str
    filename: str
    canonical_tag: str
    pixel_url: str


def pixel_url(template: str, *, story_id: int, outlet_id: int, token: str) -> str:
    return template.format(story_id=quote(str(story_id)), outlet_id=quote(str(outlet_id)), token=quote(token, safe=""))


def canonical_tag(url: str) -> str:
    return str(render("canonical_tag.html.j2", url=url)).strip()


def build_snippet(story: StoryView, publication: PublicationConfig, *, outlet_id: int, token: str) -> Snippet:
    style = publication.paragraph_style
    body, text = clean_body(story.body_html, style)
    pixel = pixel_url(publication.pixel_url, story_id=story.id, outlet_id=outlet_id, token=token)
    # Escaped here, by hand, only as HTML needs (& < > in text, and " in attributes): the partner reads this
    # source before pasting it, and "O&#39;Neil" is not what anyone wrote.
    context = {
        "story": story,
        "publication": publication,
        "title": _text(story.title),
        "byline": _text(story.byline),
        "publication_name": _text(publication.name),
        "canonical": _attribute(story.canonical_url),
        "body": Markup(body),
        "style": _attribute(style),
        "pixel": _attribute(pixel),
        "date": story.published_at.strftime("%B %-d, %Y") if story.published_at else "",
    }
    return Snippet(
        html=str(render("snippet.html.j2", **context)).strip() + "\n",
        text=render("snippet.txt.j2", autoescape=False, body_text=text, **context).strip() + "\n",
        filename=f"{story.slug}.html",
        canonical_tag=canonical_tag(story.canonical_url),
        pixel_url=pixel,
    )


# A popular story is asked for by many outlets at once: its body is cleaned once, not per pickup.
@lru_cache(maxsize=64)
def clean_body(body_html: str, style: str) -> tuple[str, str]:
    """The story's body, sanitised with the paragraph style inlined, and as plain text."""
    body = nh3.clean(
        body_html,
        tags=BODY_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
        strip_comments=True,
        set_tag_attribute_values={"p": {"style": style}, "li": {"style": style}},
    )
    return _one_block_a_line(body), body_text(body)


def _text(value: str) -> Markup:
    return Markup(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _attribute(value: str) -> Markup:
    return Markup(str(_text(value)).replace('"', "&quot;"))


def _one_block_a_line(body: str) -> str:
    """The body as readable source: each block element (and list item) on a line of its own."""
    body = re.sub(r"(</(?:p|h2|h3|h4|ul|ol|blockquote|li)>|<(?:ul|ol|blockquote)>)\s*(?=<)", r"\1\n", body)
    return body.strip()


def body_text(body_html: str) -> str:
    """Paragraphs as plain text, a blank line apart, each link's address after its words."""
    if not body_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    for link in root.iter("a"):
        href = link.get("href", "")
        words = link.text_content().strip()
        if href and href != words:
            link.tail = f" ({href})" + (link.tail or "")
    blocks = []
    for block in root:
        text = " ".join(block.text_content().split())
        if block.tag == "li" or block.tag in ("ul", "ol"):
            text = "\n".join("- " + " ".join(li.text_content().split()) for li in block.iter("li")) or text
        if text:
            blocks.append(text)
    return "\n\n".join(blocks)

"""What changed in a story between two readings, as a reader would see it.

A story is compared as a reader reads it: its title and the text of each block, whitespace folded,
typographic quotes and invisible characters evened out. Markup, attributes and link targets (with
their tracking parameters) are not text, so a page re-rendered by its CMS makes no revision; a changed
word does. What changed is given as sentences before and after, and a correction or editor's note
the new text carries is picked out, for the notice the outlets get.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import lxml.html

MAX_CHANGES = 8         # pairs of sentences kept per revision: a notice lists what changed, not a whole rewrite
MAX_SIDE_CHARS = 600    # of each side of a pair
MAX_NOTE_CHARS = 1000
_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dd", "dt", "figcaption")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_NOTE = re.compile(r"^\W*(corrections?|clarifications?|editor'?s'? note|update[sd]?|an earlier version of this"
                   r"|this (?:story|article) (?:has been|was) (?:updated|corrected))\b", re.I)


@dataclass(frozen=True)
class Revision:
    note: str                                 # the correction or editor's note, "" when the text carries none
    changes: tuple[tuple[str, str], ...]      # (before, after) sentences; "" on one side for added or removed


def reader_text(title: str, body_html: str) -> tuple[str, ...]:
    """The title, then each block's text as a reader sees it."""
    blocks = [_even(title)]
    if body_html.strip():
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
        for element in root.iter(*_BLOCKS):
            if any(True for _ in element.iterdescendants(*_BLOCKS)):
                continue  # a list item holding paragraphs: its paragraphs are the blocks
            text = _even(element.text_content())
            if text:
                blocks.append(text)
    return tuple(blocks)


def revision(before: tuple[str, ...], after: tuple[str, ...]) -> Revision | None:
    """What changed from `before` to `after` (both from `reader_text`), or None if a reader would see no
    difference."""
    if before == after:
        return None
    known = set(before)
    notes = [block for block in after if block not in known and _NOTE.match(block)]
    # The note is told on its own: the changed sentences are those of the story itself.
    old, new = _sentences(before), _sentences(tuple(block for block in after if block not in notes))
    changes = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changes.append((_bounded(" ".join(old[i1:i2])), _bounded(" ".join(new[j1:j2]))))
    if not changes and not notes:
        return None  # the same sentences, only split into blocks differently
    return Revision(note=_bounded(notes[0], MAX_NOTE_CHARS) if notes else "", changes=tuple(changes[:MAX_CHANGES]))


def _even(text: str) -> str:
    return " ".join(text.translate(_INVISIBLE).translate(_QUOTES).split())


def _sentences(blocks: tuple[str, ...]) -> list[str]:
    return [sentence for block in blocks for sentence in _SENTENCE_END.split(block) if sentence]


def _bounded(text: str, limit: int = MAX_SIDE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " […]"

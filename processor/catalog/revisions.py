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
_NOTE = re.compile(r"^\W*(?:(?:corrections?|clarifications?|editor'?s'? note|update)\b|an earlier version of this\b"
                   r"|this (?:story|article) (?:has been|was) (?:updated|corrected)\b)", re.I)
# A block that only says when ("Updated 9:15 a.m.", "Posted 5 minutes ago", "Last updated: Dec. 7, 2026"):
# no reader reads it as the story, and on a live page it changes at every reading.
_WHEN = re.compile(r"^(?:(?:last\s+)?(?:updated?|posted|published|modified)\b[\s:,]*)?"
                   r"(?:[\d:./,-]+|a\.?m\.?|p\.?m\.?|on|at|today|yesterday|\d+\s+(?:seconds?|minutes?|hours?|days?)\s+ago"
                   r"|(?:jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?"
                   r"|utc|gmt|[a-z]{2,3}t|\s)+$", re.I)
_WHEN_WORDS = re.compile(r"\b(?:updated?|posted|published|modified|ago|a\.?m|p\.?m|\d{1,2}:\d{2})\b", re.I)
_CONTROLS = dict.fromkeys(c for c in range(0x20) if chr(c) not in "\t\n") | dict.fromkeys(range(0x7f, 0xa0))
MAX_COMPARED = 40_000   # sentence pairs SequenceMatcher may weigh (its time grows with their product)


@dataclass(frozen=True)
class Revision:
    note: str                                 # the correction or editor's note, "" when the text carries none
    changes: tuple[tuple[str, str], ...]      # (before, after) sentences; "" on one side for added or removed


def reader_text(title: str, body_html: str) -> tuple[str, ...]:
    """The title, then each block's text as a reader sees it (a block that only says when it was
    posted or updated is left out)."""
    blocks = [_even(title)]
    if body_html.strip():
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
        for element in root.iter(*_BLOCKS):
            if any(True for _ in element.iterdescendants(*_BLOCKS)):
                continue  # a list item holding paragraphs: its paragraphs are the blocks
            text = _even(element.text_content())
            if text and not _only_when(text):
                blocks.append(text)
    return tuple(blocks)


def _only_when(text: str) -> bool:
    return len(text) <= 80 and bool(_WHEN_WORDS.search(text)) and bool(_WHEN.match(text))


def revision(before: tuple[str, ...], after: tuple[str, ...]) -> Revision | None:
    """What changed from `before` to `after` (both from `reader_text`), or None if a reader would see no
    difference."""
    if before == after:
        return None
    known = set(before)
    notes = [block for block in after if block not in known and _NOTE.match(block)]
    # The note is told on its own: the changed sentences are those of the story itself.
    old, new = _sentences(before), _sentences(tuple(block for block in after if block not in notes))
    changes = _changed(old, new)
    if not changes and not notes:
        return None  # the same sentences, only split into blocks differently
    return Revision(note=_bounded(notes[0], MAX_NOTE_CHARS) if notes else "", changes=tuple(changes[:MAX_CHANGES]))


def _changed(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """(before, after) pairs of changed sentences. A correction changes a few sentences in place: what both
    readings share at the start and the end is set aside in linear time, and SequenceMatcher pairs up the
    rest when it is small; a middle too large to weigh in time (a live page rewritten) is told as the
    sentences that went and those that came."""
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    old, new = old[start:len(old) - end], new[start:len(new) - end]
    if len(old) * len(new) <= MAX_COMPARED:
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        return [(_bounded(" ".join(old[i1:i2])), _bounded(" ".join(new[j1:j2])))
                for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]
    kept_old, kept_new = set(old), set(new)
    return ([(_bounded(sentence), "") for sentence in old if sentence not in kept_new][:MAX_CHANGES]
            + [("", _bounded(sentence)) for sentence in new if sentence not in kept_old][:MAX_CHANGES])


def _even(text: str) -> str:
    """Whitespace folded, typographic quotes evened out, invisible and control characters gone (a terminal
    shows this text too: `stories show`)."""
    return " ".join(text.translate(_INVISIBLE).translate(_CONTROLS).translate(_QUOTES).split())


def _sentences(blocks: tuple[str, ...]) -> list[str]:
    return [sentence for block in blocks for sentence in _SENTENCE_END.split(block) if sentence]


def _bounded(text: str, limit: int = MAX_SIDE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " […]"

"""How titles are compared: the catalog keys each story's title this way, and the pipeline keys the
headlines partners type the same way, so the two meet in one indexed column."""

from __future__ import annotations

import re
import unicodedata


def title_key(title: str) -> str:
    """Case-, accent-, quote- and punctuation-folded title, for matching titles typed in emails."""
    text = title or ""
    if not text.isascii():  # ASCII has no accents to take off (NFKD leaves it as it is)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("’", "'").replace("‘", "'")
    text = text.replace("'", "")
    text = re.sub(r"[\W_]+", " ", text)
    return " ".join(text.split())


PREFIX_WORDS = 5  # a run this long of a title's start is distinctive enough to name the story


def title_prefix(key: str) -> str:
    """The first PREFIX_WORDS words of a title key, for a title longer than that ("" otherwise: a short
    title is found by its whole key)."""
    words = key.split()
    return " ".join(words[:PREFIX_WORDS])[:300] if len(words) > PREFIX_WORDS else ""

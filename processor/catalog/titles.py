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


RUN_WORDS = 5  # a run this long of a title, found in one story only, is distinctive enough to name it


def title_runs(key: str) -> list[str]:
    """Every run of RUN_WORDS words of a title key, for a title longer than that (none otherwise: a short
    title is found by its whole key)."""
    words = key.split()
    if len(words) <= RUN_WORDS:
        return []
    return list(dict.fromkeys(" ".join(words[start:start + RUN_WORDS])[:300]
                              for start in range(len(words) - RUN_WORDS + 1)))

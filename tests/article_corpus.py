"""Reads ../shared/articles: the 78 real pages with their upstream expectations."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from processor.catalog.titles import title_key
from processor.urls import url_key

SHARED_ARTICLES = Path(__file__).resolve().parents[2] / "shared" / "articles"


# Upstream expectations found wrong by reading the page, with what the page shows. Readability keeps the
# author suffix of the Guardian's og:title; newspaper4k glued two author elements together; GoOse took
# the byline element with the date that sits in it.
CORRECTED = {
    "theguardian.com-maori-whale-strandings": {
        "title": "'What is the sea telling us?': Māori tribes fearful over whale strandings"},
    "investmentexecutive.com-imf-outlook-ap": {"byline": "Paul Wiseman, Fatima Hussein, The Associated Press"},
    "yahoo.com-abc-news-flag-baby-photo": {"byline": "Gillian Mohney"},
}


@dataclass
class PageCase:
    name: str
    path: Path
    site: str
    url: str
    notes: str
    expected: dict

    @property
    def expected_title(self) -> str | None:
        for key in ("title", "Title"):
            if isinstance(self.expected.get(key), str):
                return self.expected[key]
        return None

    @property
    def expected_byline(self) -> str | None:
        for key in ("byline", "author"):
            value = self.expected.get(key)
            if isinstance(value, dict):
                value = value.get("value")
            if isinstance(value, str) and value.strip():
                return value
        authors = self.expected.get("authors")
        if isinstance(authors, list) and authors:
            return ", ".join(a if isinstance(a, str) else a.get("name", "") for a in authors)
        return None

    @property
    def expected_date(self) -> str | None:
        """The publication day (YYYY-MM-DD) the upstream expectation gives, if any."""
        import re

        for key in ("publishedTime", "publish_date", "date", "datePublished", "published"):
            value = self.expected.get(key)
            if isinstance(value, dict):
                value = value.get("value")
            if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value.strip()):
                return value.strip()[:10]
        return None

    @property
    def expected_wire(self) -> bool:
        note = self.notes.lower()
        return note.startswith(("wire:", "syndicated:", "reprint:")) or "; wire:" in note or note.startswith("wire ")


def page_cases() -> list[PageCase]:
    cases = []
    with open(SHARED_ARTICLES / "MANIFEST.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["kind"] != "page":
                continue
            folder = SHARED_ARTICLES / Path(row["path"]).parent
            meta_file = folder / "expected-metadata.json"
            expected = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
            expected = {**expected, **CORRECTED.get(folder.name, {})}
            cases.append(PageCase(folder.name, SHARED_ARTICLES / row["path"], row["site"], row["url"].lstrip("*"), row["notes"], expected))
    return cases


def same_title(got: str, expected: str) -> bool:
    return title_key(got) == title_key(expected)


def same_byline(got: str, expected: str) -> bool:
    def names(text: str) -> set[str]:
        # Authors listed any way: "A and B", "A (avec B et C)", "By A"
        import re

        parts = re.split(r",|\(|\)|\band\b|\bavec\b|\bet\b|\bwith\b", re.sub(r"\b[Bb]y ", "", text))
        return {title_key(part) for part in parts if title_key(part)}
    g, e = names(got), names(expected)
    return bool(g) and (g == e or g <= e or e <= g)


def same_url(got: str, expected: str) -> bool:
    return bool(got) and url_key(got) == url_key(expected)


def expected_body(case: PageCase) -> str | dict | None:
    """The page's expected body: text (Readability's expected HTML, or an expected-text file), or the
    must-contain / must-not-contain segments of trafilatura's evaluation set; None when there is none."""
    import lxml.html

    folder = case.path.parent
    if (folder / "expected-content.html").exists():
        return lxml.html.fromstring((folder / "expected-content.html").read_text(encoding="utf-8")).text_content()
    if (folder / "expected-text.txt").exists():
        return (folder / "expected-text.txt").read_text(encoding="utf-8")
    if (folder / "expected-segments.json").exists():
        return json.loads((folder / "expected-segments.json").read_text(encoding="utf-8"))
    return None


def shingle_f1(got: str, expected: str, size: int = 4) -> float:
    """F1 of the two texts' sets of `size`-word shingles (words lower-cased, punctuation ignored)."""
    import re

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i:i + size]) for i in range(max(0, len(words) - size + 1))}

    g, e = shingles(got), shingles(expected)
    common = len(g & e)
    return 0.0 if not common else 2 * common / (len(g) + len(e))


def segments_found(got: str, segments: dict) -> tuple[int, int, int, int]:
    """(must-contain found, of how many, must-not-contain absent, of how many)."""
    text = " ".join(got.split())
    with_, without = segments.get("with", []), segments.get("without", [])
    return (sum(" ".join(s.split()) in text for s in with_), len(with_),
            sum(" ".join(s.split()) not in text for s in without), len(without))

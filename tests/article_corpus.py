"""Reads ../shared/articles: the 78 real pages with their upstream expectations."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from processor.catalog.titles import title_key
from processor.urls import url_key

SHARED_ARTICLES = Path(__file__).resolve().parents[2] / "shared" / "articles"


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
            cases.append(PageCase(folder.name, SHARED_ARTICLES / row["path"], row["site"], row["url"].lstrip("*"), row["notes"], expected))
    return cases


def same_title(got: str, expected: str) -> bool:
    return title_key(got) == title_key(expected)


def same_byline(got: str, expected: str) -> bool:
    def names(text: str) -> set[str]:
        text = text.replace(" and ", ",").replace("By ", "").replace("by ", "")
        return {title_key(part) for part in text.split(",") if title_key(part)}
    g, e = names(got), names(expected)
    return bool(g) and (g == e or g <= e or e <= g)


def same_url(got: str, expected: str) -> bool:
    return bool(got) and url_key(got) == url_key(expected)

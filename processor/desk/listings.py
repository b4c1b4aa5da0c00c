"""Stories, outlets, requests and the review queue as an editor reads them: a table that fits the
terminal (rich), CSV or JSON. Pure: records in, text out."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import asdict
from datetime import datetime

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from processor.desk.csv_export import csv_text

if TYPE_CHECKING:  # only named in annotations: importing them would load the whole pipeline for a listing
    from processor.desk.inbound_log import RequestDetail, RequestRow
    from processor.desk.outlets import OutletRow
    from processor.desk.review import ReviewItem
    from processor.desk.story_stats import StoryRow
    from processor.desk.verify import Verified

# What a terminal would act on (cursor moves, colours, a window title): never printed from stored text, which
# comes from partners' mail and pages. Newlines and tabs stay.
_CONTROLS = dict.fromkeys(c for c in range(0x20) if chr(c) not in "\t\n") | dict.fromkeys(range(0x7f, 0xa0))


def printable(text: str) -> str:
    return text.translate(_CONTROLS)


# Columns that may be folded onto several lines; the others stay whole.
_FOLDABLE = {"story", "url", "title", "reason", "subject", "from", "stories", "display_name"}


def render(records: list[dict], columns: list[str], output: str, *, empty: str, width: int | None = None) -> str:
    """`records` as JSON (every field), CSV (every field) or a table of `columns`."""
    if output == "json":
        return json.dumps(records, indent=2, ensure_ascii=False, default=_plain) + "\n"
    if output == "csv":
        fields = list(records[0]) if records else columns
        return csv_text([{key: _cell(value) for key, value in record.items()} for record in records], fields)
    if not records:
        return empty + "\n"
    records = [{key: printable(value) if isinstance(value, str) else value for key, value in record.items()}
               for record in records]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        foldable = column in _FOLDABLE
        table.add_column(column.replace("_", " ").upper(), overflow="fold", no_wrap=not foldable,
                         ratio=1 if foldable else None)
    for record in records:
        table.add_row(*(_cell(record[column]) for column in columns))
    return _to_text(table, width)


def format_stories(rows: list[StoryRow], output: str) -> str:
    records = [{"id": r.id, "published": r.published_at.date() if r.published_at else "", "granted": r.granted,
                "declined": r.declined, "origin": r.origin, "title": r.title, "url": r.url,
                "free": "no: " + r.origin if r.origin else "yes"} for r in rows]
    # Which stories are not free shows in the table too: an editor should not have to ask for JSON to see it.
    return render(records, ["id", "published", "granted", "declined", "free", "title", "url"], output,
                  empty="no stories match (import some with `republish stories import`)")


def format_outlets(rows: list[OutletRow], output: str) -> str:
    records = [{"outlet": r.key, "display_name": r.display_name, "pickups": r.pickups, "requests": r.requests,
                "blocked": "BLOCKED: " + r.blocked_reason if r.blocked else "",
                "alias_of": r.merged_into} for r in rows]
    return render(records, ["outlet", "display_name", "pickups", "requests", "blocked", "alias_of"], output,
                  empty="no outlets yet")


def format_requests(rows: list[RequestRow], output: str) -> str:
    records = [{"id": r.id, "processed": r.processed_at, "outlet": r.outlet, "from": r.from_address,
                "subject": r.subject, "outcome": r.outcome + (" (person)" if r.needs_person else ""),
                "resolution": r.resolution, "reason": r.reason} for r in rows]
    return render(records, ["id", "processed", "outlet", "outcome", "resolution", "reason"], output,
                  empty="no requests match")


def format_review_queue(items: list[ReviewItem], width: int | None = None) -> str:
    records = [{"id": i.request_id, "processed": i.processed_at, "outlet": i.outlet or i.from_address,
                "reason": i.reason, "stories": " ".join(url for _, url, _, _ in i.stories),
                "replied": "yes" if i.has_reply else ""} for i in items]
    return render(records, ["id", "processed", "outlet", "replied", "reason", "stories"], "table",
                  empty="nothing to review", width=width)


def format_verified(results: list[Verified]) -> str:
    if not results:
        return "no live copies to check (give one with --url URL --story URL)\n"
    lines = []
    for result in results:
        lines.append(f"{result.status:<11} {result.url}  (of {result.story_url})")
        lines += [f"  - {problem}" for problem in result.problems.splitlines() if problem]
        if result.review_request_id:
            lines.append(f"  in the review queue as request {result.review_request_id}")
    return "\n".join(lines) + "\n"


def format_request_detail(detail: RequestDetail) -> str:
    row = detail.row
    lines = [
        f"Request {row.id}",
        f"  From:        {row.from_address or '(none)'}" + (f" (Reply-To: {detail.reply_to})" if detail.reply_to else ""),
        f"  Outlet:      {row.outlet or '(none)'}",
        f"  Subject:     {row.subject}",
        f"  Message-ID:  {detail.message_id or '(none)'}",
        f"  Sent:        {_cell(detail.sent_at) or '(no date)'}",
        f"  Processed:   {_cell(row.processed_at)} from {detail.mailbox or '?'}",
        f"  Outcome:     {row.outcome}" + (" (needs a person)" if row.needs_person else ""),
        f"  Reason:      {row.reason or '-'}",
    ]
    lines.append("They wrote:" if detail.words else "They wrote:  (nothing of their own)")
    lines += ["  " + line for line in detail.words.splitlines()]
    if row.resolution:
        lines.append(f"  Resolution:  {row.resolution} by {detail.resolved_by or '?'} at {_cell(detail.resolved_at)}")
    lines.append("Pickups:" if detail.pickups else "Pickups:     none")
    lines += [f"  {decision:<9} {url}  ({title})" for url, title, decision in detail.pickups]
    if not detail.replies:
        lines.append("Reply:       none sent")
    for reply in detail.replies:
        name = {"reply": "Reply", "answer": "Answer from the desk", "correction": "Correction notice"}.get(
            reply.kind, reply.kind)
        lines.append(f"{name} ({reply.status}{': ' + reply.error if reply.error else ''}):")
        lines += ["  " + line if line else "" for line in reply.text.splitlines()]
    if detail.earlier:
        lines.append("Earlier requests from this outlet:" if row.outlet else "Earlier requests from this sender:")
        lines += [f"  {r.id:>6}  {_cell(r.processed_at)}  {r.outcome}{' / ' + r.resolution if r.resolution else ''}"
                  f"  {r.subject[:60]}" for r in detail.earlier]
    return printable("\n".join(lines)) + "\n"


def _to_text(table: Table, width: int | None) -> str:
    width = width or shutil.get_terminal_size((100, 24)).columns
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def _cell(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, bool):
        return "yes" if value else ""
    return "" if value is None else str(value)


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)

"""The pickup log as an editor reads it: a terminal table, CSV or JSON. Pure."""

from __future__ import annotations

import csv
import io
import json

from processor.records.pickups import PickupRow


def format_pickups(rows: list[PickupRow], output: str) -> str:
    records = [
        {
            "outlet": row.outlet,
            "story": row.story_url,
            "title": row.story_title,
            "decision": row.decision,
            "first_requested": row.first_requested_at.isoformat(timespec="seconds"),
            "last_requested": row.last_requested_at.isoformat(timespec="seconds"),
            "requests": row.requests,
            "replies": list(row.reply_message_ids),
        }
        for row in rows
    ]
    if output == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["outlet", "story", "decision"])
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "replies": " ".join(record["replies"])})
        return buffer.getvalue()
    if not records:
        return "no pickups yet\n"
    columns = ["last_requested", "outlet", "decision", "requests", "story"]
    table = [[str(r[c]) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in table]
    return "\n".join(line.rstrip() for line in lines) + "\n"

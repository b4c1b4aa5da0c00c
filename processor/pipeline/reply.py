"""A decision -> the reply message, threaded and marked as automatic (RFC 3834); a story's revision ->
the correction notice an outlet gets in the thread of the reply it received. Pure.

The reply goes to Reply-To, else From; its subject is always "Re: republish" (never the
partner's own subject, so nothing from their message reaches our headers but two checked
addresses and Message-IDs). Text and HTML alternatives carry the same content; each granted
story's snippet is also attached as SLUG.html.

The message is written as bytes by processor/mime.py: every header here is ours or checked, and
the `email` package's generator was most of the time a reply took (see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr

from models import Decision
from processor.config import PublicationConfig
from processor.pipeline.decide import Plan
from processor.pipeline.mime import Multipart, Part, UnsafeHeader, message_bytes
from processor.pipeline.parse import Inbound
from processor.pipeline.recipients import safe_address
from processor.pipeline.snippet import Snippet
from processor.pipeline.templating import render

_MESSAGE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+$")  # printable ASCII, no < > or spaces
MAX_REFERENCES = 20
MAX_MESSAGE_ID = 250  # longer ones (seen in broken mailers) are left out of the threading headers


@dataclass(frozen=True)
class ReplyContext:
    publication: PublicationConfig
    from_address: str
    message_id: str
    now: datetime
    from_name: str = ""   # the From header's display name; "" : the publication's name
    answered_by: str = ""  # the editor who answered from the review desk; "": the worker, automatically
    note: str = ""         # the editor's own words to the partner (a grant's note, a decline's reason)
    guidelines: bool = False  # the guidelines even with no snippet (an editor's own answer)


@dataclass(frozen=True)
class StoredMessage:
    """What the database keeps of an answered-later request: enough to reply to it and thread the reply.

    Stands in for `Inbound` when an editor answers a request from the review queue; the display
    name and the References chain are not stored, so the greeting is plain and the thread starts
    at the request itself.
    """

    from_address: str
    reply_to_address: str
    message_id: str
    from_name: str = ""
    references: tuple[str, ...] = ()


def build_reply(plan: Plan, inbound: Inbound | StoredMessage, snippets: dict[int, Snippet], context: ReplyContext,
                recipient: str) -> bytes:
    """The reply as it goes on the wire (CRLF line ends), for SMTP and the Sent copy alike, to `recipient`
    (chosen by `recipients.choose_recipient`)."""
    if not safe_address(recipient):
        raise UnsafeHeader("no safe address to reply to")
    publication = context.publication
    granted = [d for d in plan.stories if d.decision == Decision.GRANTED]
    declined = [d for d in plan.stories if d.decision == Decision.DECLINED]
    values = {
        "publication": publication,
        "greeting_name": _first_name(inbound.from_name),
        "granted": [(d.story, snippets[d.story.id]) for d in granted],
        "declined": declined,
        "needs_person": plan.needs_person,
        "unmatched_links": plan.unmatched_links[:10],
        "answered_by": context.answered_by,
        "note": context.note,
        "guidelines": context.guidelines or bool(granted),
    }
    body: Part | Multipart = Multipart("alternative", (
        Part(render("reply.txt.j2", autoescape=False, **values), "plain"),
        Part(str(render("reply.html.j2", **values)), "html"),
    ))
    if granted:
        body = Multipart("mixed", (body, *(Part(s.html, "html", s.filename) for _, s in values["granted"])))
    message_id = _checked_id(context.message_id)
    headers: list[tuple[str, str | list[str]]] = [
        ("From", formataddr((context.from_name or publication.name, context.from_address), charset="utf-8")),
        ("To", recipient),
        ("Subject", "Re: republish"),
        ("Date", format_datetime(context.now)),
        ("Message-ID", f"<{message_id}>"),
    ]
    if _usable_id(inbound.message_id):
        references = [r for r in inbound.references if _usable_id(r)][-MAX_REFERENCES + 1 :]
        headers += [("In-Reply-To", f"<{inbound.message_id}>"),
                    ("References", [f"<{r}>" for r in [*references, inbound.message_id]])]
    headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"),
                ("X-Loop", context.from_address)]
    return message_bytes(headers, body, seed=message_id)


@dataclass(frozen=True)
class NoticeThread:
    """The conversation a correction notice goes into: the partner's request and our reply to it."""

    recipient: str            # where our reply went (never an address from the feed or the page)
    request_message_id: str
    reply_message_id: str
    from_name: str = ""       # the partner's display name, to greet them


def build_notice(story, note: str, changes: list[tuple[str, str]], snippet: Snippet, thread: NoticeThread,
                 context: ReplyContext) -> bytes:
    """The notice that `story`, which the outlet was granted, changed: the correction note (or the changed
    sentences, before and after) and the updated snippet, as a reply to our reply (CRLF line ends)."""
    if not safe_address(thread.recipient):
        raise UnsafeHeader("no safe address to send the notice to")
    values = {"publication": context.publication, "greeting_name": _first_name(thread.from_name), "story": story,
              "note": note, "changes": changes, "snippet": snippet}
    body = Multipart("mixed", (
        Multipart("alternative", (Part(render("correction.txt.j2", autoescape=False, **values), "plain"),
                                  Part(str(render("correction.html.j2", **values)), "html"))),
        Part(snippet.html, "html", snippet.filename),
    ))
    message_id = _checked_id(context.message_id)
    headers: list[tuple[str, str | list[str]]] = [
        ("From", formataddr((context.from_name or context.publication.name, context.from_address), charset="utf-8")),
        ("To", thread.recipient),
        ("Subject", "Re: republish"),  # the thread's own subject: mail clients (Gmail) thread by it too
        ("Date", format_datetime(context.now)),
        ("Message-ID", f"<{message_id}>"),
    ]
    chain = [mid for mid in (thread.request_message_id, thread.reply_message_id) if _usable_id(mid)]
    if chain:
        headers += [("In-Reply-To", f"<{chain[-1]}>"), ("References", [f"<{mid}>" for mid in chain])]
    headers += [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"),
                ("X-Loop", context.from_address)]
    return message_bytes(headers, body, seed=message_id)


def _usable_id(message_id: str | None) -> bool:
    return bool(message_id) and len(message_id) <= MAX_MESSAGE_ID and bool(_MESSAGE_ID.match(message_id))


def _checked_id(message_id: str) -> str:
    if not _MESSAGE_ID.match(message_id):
        raise UnsafeHeader("generated Message-ID is not valid")
    return message_id


def _first_name(display_name: str) -> str:
    name = re.sub(r"[^\w .'-]", "", display_name or "").strip()
    if not name or "@" in display_name:
        return ""
    first = name.split()[0]
    return first if len(first) <= 40 else ""

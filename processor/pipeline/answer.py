"""From a plan to rows and a reply: what the worker and the review desk both record.

The records wing takes plain data, so the mapping of an inbound message and its plan to row values
lives here, as does the one place a reply is built (snippets for the granted stories, then the
message), for a request the worker answers and for one an editor answers later alike.
"""

from __future__ import annotations

from datetime import datetime

from models import Decision, Outcome
from processor.config import Config
from processor.pipeline.decide import Plan
from processor.pipeline.parse import Inbound
from processor.pipeline.reply import ReplyContext, StoredMessage, build_reply
from processor.pipeline.snippet import build_snippet
from processor.records.pickups import PickupState


def request_values(inbound: Inbound, plan: Plan, *, outlet_id: int | None, mailbox: str, now: datetime) -> dict:
    """The row a request is logged as."""
    return {
        "message_key": inbound.message_key,
        "content_digest": inbound.content_digest,
        "message_id": inbound.message_id[:998],
        "mailbox": mailbox[:255],
        "outlet_id": outlet_id,
        "from_address": inbound.from_address[:320],
        "from_name": inbound.from_name[:320],
        "reply_to": inbound.reply_to_address[:320],
        "words": partner_words(inbound.text),
        "subject": inbound.subject[:998],
        "sent_at": inbound.date,
        "processed_at": now,
        "outcome": Outcome.PENDING if plan.reply else plan.outcome,
        "needs_person": plan.needs_person,
        "reason": plan.reason,
        "size": inbound.size,
        "reply_message_id": None,
    }


WORDS_KEPT = 4000  # characters of what the partner wrote: a note, a question; never a whole pasted story


def partner_words(text: str) -> str:
    """What the partner wrote, for the editor: quotes are already cut by the parse step; lines folded,
    at most WORDS_KEPT characters (shown escaped wherever it is shown)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    kept = "\n".join(line for line in lines if line).strip()
    return kept if len(kept) <= WORDS_KEPT else kept[:WORDS_KEPT].rstrip() + " […]"


def story_decisions(plan: Plan) -> list[tuple[int, str, str]]:
    """(story id, decision, reason) for each story of the plan: what its pickups record."""
    return [(decision.story.id, decision.decision, decision.reason) for decision in plan.stories]


def compose_reply(plan: Plan, message: Inbound | StoredMessage, *, recipient: str, outlet_id: int,
                  pickups: dict[int, PickupState], config: Config, message_id: str, now: datetime,
                  answered_by: str = "", note: str = "", guidelines: bool = False) -> bytes:
    """The reply to a request, to `recipient`, as it goes on the wire: a snippet (with its pickup's
    tracking token) for each granted story, a polite no for each declined one."""
    publication = config.publication
    snippets = {
        decision.story.id: build_snippet(decision.story, publication, outlet_id=outlet_id,
                                         token=pickups[decision.story.id].token)
        for decision in plan.stories if decision.decision == Decision.GRANTED
    }
    context = ReplyContext(publication, config.reply_from, message_id, now, from_name=config.reply_name,
                           answered_by=answered_by, note=note, guidelines=guidelines)
    return build_reply(plan, message, snippets, context, recipient)

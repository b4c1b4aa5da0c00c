"""The pure half of handling a message: parse it and classify it, with no database and no network."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from processor.mail.mailbox import RawMessage
from processor.pipeline.classify import (StoryRefs, automation_reason, is_delivery_report, is_republish_subject,
                                         question_reason, story_refs)
from processor.pipeline.parse import (Inbound, UnreadableMessage, clean_header, message_key, normalise_message_id,
                                      parse_message, raw_digest_key)

log = logging.getLogger(__name__)


class Kind(Enum):
    REQUEST = "request"          # subject "republish": recorded, and answered or handed to a person
    REPORT = "report"            # a delivery report that may be returning one of our replies
    OTHER = "other"              # none of ours: left exactly as it is
    OVERSIZED = "oversized"      # not downloaded (over max_message_bytes)
    UNREADABLE = "unreadable"    # could not be parsed: kept for a person


@dataclass(frozen=True)
class Rules:
    """What classification needs to know about us."""

    allowed_hosts: tuple[str, ...]
    own_addresses: tuple[str, ...]
    loop_marker: str
    mailbox: str                 # the source's name, part of the key of a message known by nothing else


@dataclass(frozen=True)
class Prepared:
    kind: Kind
    key: str                               # what the request is recorded under (its Message-ID, else a digest)
    inbound: Inbound | None = None
    refs: StoryRefs | None = None           # requests only, and only when not automated
    automated: str | None = None           # why it must never get an automatic reply
    question: str | None = None
    error: str = ""                        # unreadable: why


def prepare(message: RawMessage, rules: Rules) -> Prepared:
    if message.raw is None:
        # Too big to download: its Message-ID alone still keys it, so it is recorded only once.
        message_id = normalise_message_id(clean_header(message.message_id))
        return Prepared(Kind.OVERSIZED, message_key(message_id, f"oversized:{rules.mailbox}:{message.ref}:{message.size}"))
    try:
        inbound = parse_message(message.raw)
    except UnreadableMessage as exc:
        return Prepared(Kind.UNREADABLE, raw_digest_key(message.raw), error=str(exc))
    except Exception as exc:  # a bug or a library surprise: the message still goes to a person, with the reason
        log.exception("message %s could not be parsed", message.ref)
        return Prepared(Kind.UNREADABLE, raw_digest_key(message.raw),
                        error=f"internal error while parsing: {type(exc).__name__}: {exc}")
    key = inbound.message_key
    if is_republish_subject(inbound.subject):
        automated = automation_reason(inbound, rules.own_addresses, rules.loop_marker)
        if automated:
            return Prepared(Kind.REQUEST, key, inbound, automated=automated)
        return Prepared(Kind.REQUEST, key, inbound, refs=story_refs(inbound, rules.allowed_hosts),
                        question=question_reason(inbound.text))
    if is_delivery_report(inbound) and inbound.embedded_message_ids:
        return Prepared(Kind.REPORT, key, inbound)
    return Prepared(Kind.OTHER, key, inbound)


def prepare_all(messages: list[RawMessage], rules: Rules) -> list[Prepared]:
    return [prepare(message, rules) for message in messages]

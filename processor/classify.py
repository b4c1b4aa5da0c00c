"""What an inbound message is: a republish request or not, automated or not, who sent it,
which stories it names, whether it also asks something. Pure; every answer carries its reason.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from processor.parse import Inbound
from processor.urls import host_matches, unique, url_host, url_key

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|odp|ynt|res|r|fwd?|fw|wg|tr|rv|enc|i)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.I
)
_SUBJECT_TAG = re.compile(r"^\s*\[[^\]]{0,40}\]\s*|^\s*\([^)]{0,40}\)\s*")

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com", "hotmail.co.uk",
        "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com", "proton.me",
        "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com",
        "yandex.com", "yandex.ru", "fastmail.com", "hey.com", "comcast.net", "verizon.net", "att.net",
        "qq.com", "163.com", "naver.com", "mail.ru", "tutanota.com", "duck.com",
    }
)

_NO_REPLY_LOCALPART = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|noreply[-.].*|bounces?|bounce[-+].*|"
    r"auto-?reply|autoresponder|notifications?|listserv|majordomo|.*-request|.*-bounces(\+.*)?|owner|owner-.*|.*-owner)$",
    re.I,
)

# Topics that need a person even when the stories themselves can be answered automatically.
_QUESTION_TOPICS = {
    "images": r"\b(image|images|photo|photos|photograph|picture|pictures|illustration|graphic|graphics|video)\b",
    "print": r"\b(print|printed|newspaper edition|print edition|magazine)\b",
    "payment": r"\b(pay|paid|payment|fee|fees|invoice|cost|price|charge|licen[cs]e|licensing)\b",
    "changes": r"\b(edit|edited|shorten|shortened|trim|translate|translation|excerpt|headline change|update)\b",
}
_QUESTION_SENTENCE = re.compile(r"[^.!?\n]*\?")
_ROUTINE_QUESTION = re.compile(r"\b(republish|re-publish|run|use|reprint|repost|share|pick up|picking up)\b", re.I)


def is_republish_subject(subject: str) -> bool:
    """True if the subject, with reply/forward prefixes and [tags] stripped, is "republish"."""
    text = unicodedata.normalize("NFKC", subject or "")
    previous = None
    while previous != text:
        previous = text
        text = _SUBJECT_PREFIX.sub("", text)
        text = _SUBJECT_TAG.sub("", text)
    return text.strip().strip(".!:;\"'“”").strip().casefold() == "republish"


def automation_reason(inbound: Inbound, own_addresses: tuple[str, ...], loop_marker: str) -> str | None:
    """Why this message must never get an automatic reply (RFC 3834 and friends), or None."""
    auto_submitted = inbound.header("auto-submitted").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    precedence = inbound.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe", "list-post", "list-help", "list-subscribe", "list-owner",
                 "list-archive", "mailing-list", "x-mailing-list"):
        if inbound.has_header(name):
            return f"mailing-list header {name}"
    for name in ("x-autoreply", "x-autorespond"):
        if inbound.has_header(name):
            return f"auto-reply header {name}"
    suppress = inbound.header("x-auto-response-suppress").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return f"sender asked for no automatic replies (X-Auto-Response-Suppress: {suppress})"
    if inbound.has_header("return-path") and inbound.header("return-path").strip() in ("<>", ""):
        return "empty Return-Path (a bounce)"
    if inbound.content_type == "multipart/report":
        return "delivery or read report (multipart/report)"
    localpart = inbound.from_address.split("@", 1)[0]
    if _NO_REPLY_LOCALPART.match(localpart):
        return f"automated sender {inbound.from_address}"
    if inbound.from_address in own_addresses:
        return "sent from our own address"
    if loop_marker and loop_marker.lower() in inbound.header("x-loop").lower():
        return "carries our X-Loop header"
    return None


def is_delivery_report(inbound: Inbound) -> bool:
    """A bounce or delivery/read report: worth a look only when it returns one of our replies."""
    localpart = inbound.from_address.split("@", 1)[0]
    return inbound.content_type == "multipart/report" or localpart in ("mailer-daemon", "postmaster")


def outlet_key(address: str) -> str:
    """The sender's domain; the whole address for free-mail domains, where the domain says nothing."""
    address = address.strip().lower()
    domain = address.rsplit("@", 1)[-1]
    return address if domain in FREE_MAIL_DOMAINS else domain


@dataclass(frozen=True)
class StoryRefs:
    """What a message points at: own-site link keys, other links, and title candidates."""

    own_links: tuple[str, ...]        # the links themselves (for fetching), on the publication's hosts
    own_keys: tuple[str, ...]         # their url_key, for matching the catalog
    title_keys: tuple[str, ...]


def story_refs(inbound: Inbound, allowed_hosts: tuple[str, ...], max_title_spans: int = 4000) -> StoryRefs:
    own_links = []
    for link in inbound.links:
        candidate = link if "://" in link else "https://" + link
        if host_matches(url_host(candidate), allowed_hosts) and url_key(candidate):
            own_links.append(candidate)
    own_links = unique(own_links)
    keys = unique(url_key(link) for link in own_links)
    return StoryRefs(tuple(own_links), tuple(k for k in keys if k), title_spans(inbound.text, max_title_spans))


def title_key(title: str) -> str:
    """Case-, accent-, quote- and punctuation-folded title, for matching titles typed in emails."""
    text = unicodedata.normalize("NFKD", title or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("’", "'").replace("‘", "'")
    text = re.sub(r"'", "", text)
    text = re.sub(r"[\W_]+", " ", text)
    return " ".join(text.split())


def title_spans(text: str, limit: int) -> tuple[str, ...]:
    """Every run of 3 to 30 words within a line of the text, folded like `title_key`.

    A partner may type a headline on a line of its own, in quotes, or inside a sentence
    ("we'd like to run Israel and Japan sign new defense agreement"); the catalog index is
    then asked for all of these in one query. `limit` bounds the work for huge bodies.
    """
    spans: list[str] = []
    for line in text.splitlines():
        words = title_key(line).split()
        if len(words) < 3:
            continue
        words = words[:60]
        for start in range(len(words)):
            for end in range(start + 3, min(len(words), start + 30) + 1):
                spans.append(" ".join(words[start:end]))
                if len(spans) >= limit:
                    return tuple(unique(spans))
    return tuple(unique(spans))


def question_reason(text: str) -> str | None:
    """Why the message needs a person besides its stories (a question about images, print, payment…)."""
    text = re.sub(r"(?i)\b(?:https?://|www\.)\S+", " ", text)  # a "?" inside a link is not a question
    topics = [name for name, pattern in _QUESTION_TOPICS.items() if re.search(pattern, text, re.I)]
    if topics:
        return "asks about " + ", ".join(topics)
    for sentence in _QUESTION_SENTENCE.findall(text):
        if not _ROUTINE_QUESTION.search(sentence):
            return f"asks a question: {sentence.strip()[:120]}"
    return None

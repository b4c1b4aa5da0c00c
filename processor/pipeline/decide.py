"""What to do with a request: small ordered rules over plain data. Pure.

The first rule that applies sets the outcome; every rule that fires adds its reason, so the
log always says why (Mailman's `rule_hits`). Per story: our own story -> grant; a story that
originated elsewhere -> decline, naming the publication.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models import Decision, Outcome
from processor.catalog.stories import StoryView


@dataclass(frozen=True)
class StoryDecision:
    story: StoryView
    decision: Decision
    reason: str


@dataclass(frozen=True)
class Plan:
    outcome: Outcome
    needs_person: bool
    reply: bool
    reasons: tuple[str, ...]
    stories: tuple[StoryDecision, ...] = ()
    unmatched_links: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, gathered by the earlier steps."""

    automated: str | None
    sent_at: datetime | None
    stories: tuple[StoryView, ...]
    unmatched_links: tuple[str, ...]
    question: str | None
    recipient: str | None
    now: datetime
    max_age: timedelta
    unauthenticated: str | None = None   # why the sender could not be trusted, when that is required
    blocked: str | None = None           # "outlet X is blocked: why", when the sender's outlet is blocked
    over_cap: str | None = None          # the reply cap one more reply would break, when it would
    recipient_note: str = ""             # a Reply-To not followed, for the editor
    ambiguous: tuple[str, ...] = ()      # typed title starts that fit several stories
    max_stories: int = 10


def decide_story(story: StoryView) -> StoryDecision:
    if story.free_to_republish:
        return StoryDecision(story, Decision.GRANTED, "our own story: free to republish")
    return StoryDecision(story, Decision.DECLINED, f"originated with {story.origin}: not ours to give")


def decide(facts: Facts) -> Plan:
    if facts.automated:
        return Plan(Outcome.IGNORED, needs_person=False, reply=False, reasons=(f"automated message ({facts.automated})",))
    decisions = tuple(decide_story(story) for story in facts.stories)
    story_reasons = tuple(f"{d.story.canonical_url}: {d.reason}" for d in decisions)
    if facts.blocked:
        # No pickup is recorded either: whatever the editor decides is recorded when they resolve it.
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False,
                    reasons=(facts.blocked, *(f"asks for {story.canonical_url}" for story in facts.stories)),
                    unmatched_links=facts.unmatched_links)
    if facts.sent_at is not None and facts.now - facts.sent_at > facts.max_age:
        age = (facts.now - facts.sent_at).days
        return Plan(Outcome.BACKFILLED, needs_person=False, reply=False,
                    reasons=(f"sent {age} days ago, older than the {facts.max_age.days}-day answer window: logged, not answered",
                             *story_reasons),
                    stories=decisions, unmatched_links=facts.unmatched_links)
    if not decisions and facts.ambiguous:
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False,
                    reasons=(f"the title typed fits more than one story ({'; '.join(facts.ambiguous)}): a person decides",),
                    unmatched_links=facts.unmatched_links)
    if not decisions:
        reason = "no story could be identified"
        if facts.unmatched_links:
            reason += f" ({len(facts.unmatched_links)} link(s) on our site not in the catalog)"
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False, reasons=(reason,),
                    unmatched_links=facts.unmatched_links)
    # A story known only by a feed's summary is never sent as if it were the story: a person sends it.
    incomplete = tuple(d for d in decisions if d.decision == Decision.GRANTED and d.story.summary_only)
    if incomplete:
        decisions = tuple(d for d in decisions if d not in incomplete)
        story_reasons = tuple(f"{d.story.canonical_url}: {d.reason}" for d in decisions)
        summaries = "; ".join(f"only a summary of {d.story.canonical_url} is known (its page could not be "
                              f"fetched): a person sends the story" for d in incomplete)
        if not decisions:
            return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False, reasons=(summaries,),
                        unmatched_links=facts.unmatched_links)
    if not facts.recipient:
        why = f" ({facts.recipient_note})" if facts.recipient_note else ""
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False,
                    reasons=(f"no usable address to reply to{why}", *story_reasons), stories=decisions)
    if facts.unauthenticated:
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False,
                    reasons=(f"sender not authenticated: {facts.unauthenticated}", *story_reasons), stories=decisions)
    if facts.over_cap:
        return Plan(Outcome.NEEDS_PERSON, needs_person=True, reply=False,
                    reasons=(f"{facts.over_cap}: not answered automatically", *story_reasons), stories=decisions)
    extra = []
    if len(decisions) > facts.max_stories:
        extra.append(f"names {len(decisions)} stories: answered the first {facts.max_stories}, the rest need a person")
        decisions = decisions[: facts.max_stories]
        story_reasons = story_reasons[: facts.max_stories]
    if incomplete:
        extra.append(summaries)
    if facts.question:
        extra.append(facts.question)
    if facts.unmatched_links:
        extra.append(f"{len(facts.unmatched_links)} link(s) could not be matched to a story")
    noted = (facts.recipient_note,) if facts.recipient_note else ()
    return Plan(Outcome.ANSWERED, needs_person=bool(extra), reply=True, reasons=(*story_reasons, *noted, *extra),
                stories=decisions, unmatched_links=facts.unmatched_links)


def decide_report(reply_message_id: str, recipient: str, diagnostic: str) -> Plan:
    """A delivery report about one of our replies: a failure goes to a person, a delay is only logged."""
    about = f"our reply {reply_message_id} to {recipient}: {diagnostic or 'no diagnostic given'}"
    if "action: delayed" in diagnostic.lower() or "status: 4." in diagnostic.lower():
        return Plan(Outcome.IGNORED, needs_person=False, reply=False, reasons=(f"delivery delay notice for {about}",))
    return Plan(Outcome.IGNORED, needs_person=True, reply=False, reasons=(f"delivery failure report for {about}",))

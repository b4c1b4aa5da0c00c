from datetime import datetime, timedelta, timezone

from models import Decision, Outcome
from processor.catalog.stories import StoryView
from processor.pipeline.decide import Facts, decide

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
OWN = StoryView(1, "https://s.example/a/", "A", "a", "", None, "", None, "")
WIRE = StoryView(2, "https://s.example/b/", "B", "b", "", None, "", "JTA", "(JTA) —")


def facts(**overrides):
    values = dict(automated=None, sent_at=NOW - timedelta(hours=1), stories=(OWN,), unmatched_links=(), question=None,
                  recipient="p@v.example", now=NOW, max_age=timedelta(days=14))
    values.update(overrides)
    return Facts(**values)


def test_rules_in_order():
    cases = [
        (facts(), Outcome.ANSWERED, False, True),
        (facts(automated="Auto-Submitted: auto-replied"), Outcome.IGNORED, False, False),
        (facts(sent_at=NOW - timedelta(days=30)), Outcome.BACKFILLED, False, False),
        (facts(stories=()), Outcome.NEEDS_PERSON, True, False),
        (facts(recipient=None), Outcome.NEEDS_PERSON, True, False),
        (facts(question="asks about images"), Outcome.ANSWERED, True, True),
        (facts(unmatched_links=("https://s.example/zzz",)), Outcome.ANSWERED, True, True),
        (facts(sent_at=None), Outcome.ANSWERED, False, True),
    ]
    for given, outcome, needs_person, reply in cases:
        plan = decide(given)
        assert (plan.outcome, plan.needs_person, plan.reply) == (outcome, needs_person, reply), given
        assert plan.reason


def test_wire_story_is_declined_naming_its_origin():
    plan = decide(facts(stories=(OWN, WIRE)))
    assert [d.decision for d in plan.stories] == [Decision.GRANTED, Decision.DECLINED]
    assert "JTA" in plan.stories[1].reason


def test_a_request_over_a_reply_cap_goes_to_a_person_without_a_reply():
    plan = decide(facts(over_cap="5 replies already sent to x@y.example in the last 24 hours (limit 5)"))
    assert (plan.outcome, plan.needs_person, plan.reply) == (Outcome.NEEDS_PERSON, True, False)
    assert "limit 5" in plan.reason and "not answered automatically" in plan.reason
    assert decide(facts(over_cap=None)).reply


def test_a_reply_to_not_followed_is_noted_for_the_editor_without_flagging_the_request():
    plan = decide(facts(recipient_note="Reply-To victim@elsewhere.example not followed"))
    assert plan.reply and not plan.needs_person and "victim@elsewhere.example not followed" in plan.reason


def test_too_many_stories_answers_the_first_ones_and_flags():
    many = tuple(StoryView(i, f"https://s.example/{i}/", f"T{i}", f"t{i}", "", None, "", None, "") for i in range(1, 14))
    plan = decide(facts(stories=many, max_stories=10))
    assert plan.reply and plan.needs_person
    assert [d.story.id for d in plan.stories] == list(range(1, 11))
    assert "names 13 stories" in plan.reason


def test_unauthenticated_sender_goes_to_a_person():
    plan = decide(facts(unauthenticated="dmarc=fail"))
    assert (plan.outcome, plan.needs_person, plan.reply) == (Outcome.NEEDS_PERSON, True, False)
    assert "dmarc=fail" in plan.reason


def test_blocked_outlet_goes_to_a_person_without_a_reply_or_pickup():
    plan = decide(facts(blocked="outlet v.example is blocked: removed the credit line"))
    assert (plan.outcome, plan.needs_person, plan.reply, plan.stories) == (Outcome.NEEDS_PERSON, True, False, ())
    assert plan.reasons[0] == "outlet v.example is blocked: removed the credit line"
    assert "asks for https://s.example/a/" in plan.reason


def test_a_story_known_only_by_its_summary_is_never_sent_as_the_story():
    teaser = StoryView(3, "https://s.example/c/", "C", "c", "", None, "<p>A few words.</p>", None, "", summary_only=True)
    alone = decide(facts(stories=(teaser,)))
    assert (alone.outcome, alone.needs_person, alone.reply) == (Outcome.NEEDS_PERSON, True, False)
    assert "only a summary of https://s.example/c/" in alone.reason
    both = decide(facts(stories=(OWN, teaser)))
    assert both.reply and both.needs_person and [d.story.id for d in both.stories] == [1]
    wire_teaser = StoryView(4, "https://s.example/d/", "D", "d", "", None, "", "AP", "byline", summary_only=True)
    assert decide(facts(stories=(wire_teaser,))).stories[0].decision == Decision.DECLINED  # a no needs no text

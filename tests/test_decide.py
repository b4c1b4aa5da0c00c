from datetime import datetime, timedelta, timezone

from models import Decision, Outcome
from processor.catalog import StoryView
from processor.decide import Facts, decide

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

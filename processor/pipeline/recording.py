"""Recording a group of prepared messages in one transaction: decide each request with what the
database knows about the whole group (read in a few queries), then write its rows in a few bulk
statements, the replies into the outbox in the same transaction as the requests they answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import Outcome, Outlet, Request
from processor.catalog import stories as catalog
from processor.mail.mailbox import Mark, RawMessage
from processor.pipeline.answer import compose_reply, request_values, story_decisions
from processor.pipeline.authres import sender_check
from processor.pipeline.classify import StoryRefs, live_copy_links, outlet_key
from processor.pipeline.decide import Facts, Plan, decide, decide_report
from processor.pipeline.edges import Edges
from processor.pipeline.prepare import Prepared
from processor.pipeline.recipients import Caps, Recipient, ReplyBudget, choose_recipient, mailbox_key
from processor.records import outbox, pickups as pickup_rows, requests
from processor.records.pickups import PickupState
from processor.urls import url_key

log = logging.getLogger(__name__)
MAX_STORIES_BY_TITLE = 5

Item = tuple[RawMessage, Prepared]


@dataclass
class Handled:
    ref: str
    mark: Mark | None          # None: leave the message as it is (not a request, or retry later)
    outbox_id: int | None = None
    outcome: str = ""


@dataclass
class _GroupFacts:
    stories: dict[str, tuple[tuple, tuple[str, ...], tuple[str, ...]]]  # {key: (stories, links not found, ambiguous)}
    outlets: dict[str, Outlet]
    recipients: dict[str, Recipient]                   # {message key: where its reply would go}
    pickups: dict[tuple[int, int], PickupState]
    budget: ReplyBudget


class Recorder:
    def __init__(self, edges: Edges) -> None:
        self.edges = edges
        self.config = edges.config

    def unseen(self, session: Session, items: list[Item]) -> tuple[list[Item], list[Handled]]:
        """The items not recorded before, and what is left to do for the others (never redone)."""
        keys = [key for _, ready in items for key in (ready.inbound.message_key, ready.inbound.digest_key)]
        existing = requests.requests_by_keys(session, keys)
        fresh, done = [], []
        for message, ready in items:
            inbound = ready.inbound
            request = existing.get(inbound.message_key)
            if request is not None and request.content_digest not in ("", inbound.content_digest):
                # A different message reusing a Message-ID: it is a request of its own.
                ready = replace(ready, inbound=replace(inbound, message_key=inbound.digest_key))
                request = existing.get(inbound.digest_key)
            if request is None:
                fresh.append((message, ready))
            else:
                done.append(already_handled(message, request))
        return fresh, done

    def requests(self, session: Session, items: list[Item], imported: dict[str, str]) -> list[Handled]:
        """Record a group of requests and commit; `imported` maps links imported just before to their stories."""
        now = self.edges.clock()
        fresh, results = self.unseen(session, items)
        facts = self._group_facts(session, fresh, imported, now)
        rows = requests.NewRows(facts.pickups)
        recorded = [(message, ready, *self._record_request(rows, ready, facts, now)) for message, ready in fresh]
        rows.write(session)
        for _, ready, _, pickups, _ in recorded:
            self._record_live_copy(session, ready, pickups, now)
        session.commit()
        # One id everywhere: the request's own (the one `republish review` takes), the mailbox's handle beside it.
        for (message, ready, plan, _, reply), request in zip(recorded, rows.requests, strict=True):
            log.info("request %s (message %s): %s (%s)", request.id, message.ref, plan.outcome, plan.reason)
            results.append(Handled(message.ref, mark_for(plan), reply.id if reply else None, str(plan.outcome)))
        return results

    def _group_facts(self, session: Session, items: list[Item], imported: dict[str, str],
                     now: datetime) -> _GroupFacts:
        """What deciding on a group of requests needs from the database, in a few queries for the group."""
        answerable = [ready for _, ready in items if not ready.automated]
        url_keys = [key for ready in answerable for key in ready.refs.own_keys]
        named = catalog.stories_named(session, url_keys + [imported[key] for key in url_keys if key in imported],
                                      [key for ready in answerable for key in ready.refs.title_keys])
        stories = {ready.key: _stories(ready.refs, named, imported) for ready in answerable}
        unnamed = [ready for ready in answerable if not stories[ready.key][0]]
        if unnamed:  # nothing named by link or whole title: a run of a title's words, typed short, may be
            catalog.add_title_runs(session, named, [key for ready in unnamed for key in ready.refs.title_keys])
            stories.update((ready.key, _stories(ready.refs, named, imported)) for ready in unnamed)
        senders: dict[str, str] = {}
        for ready in answerable:
            if ready.inbound.from_address:
                senders.setdefault(outlet_key(ready.inbound.from_address), ready.inbound.from_name)
        outlets = requests.outlets_for(session, senders, now) if senders else {}
        pairs = [(outlets[outlet_key(ready.inbound.from_address)].id, story.id) for ready in answerable
                 if ready.inbound.from_address for story in stories[ready.key][0]]
        worker = self.config.worker
        caps = Caps(worker.max_replies_per_sender_per_day, worker.max_replies_per_domain_per_day,
                    worker.max_replies_per_hour)
        return _GroupFacts(
            stories=stories,
            outlets=outlets,
            recipients=_recipients(session, answerable, outlets),
            pickups=pickup_rows.pickups_for(session, pairs) if pairs else {},
            budget=ReplyBudget(caps, now, outbox.replies_since(session, now - timedelta(days=1))),
        )

    def _record_request(self, rows: requests.NewRows, ready: Prepared, facts: _GroupFacts,
                        now: datetime) -> tuple[Plan, dict[int, PickupState], requests.ReplyRow | None]:
        worker = self.config.worker
        inbound = ready.inbound
        stories, unmatched, ambiguous = facts.stories.get(ready.key, ((), (), ()))
        chosen = facts.recipients.get(ready.key, Recipient(None))
        if inbound.from_problem:
            chosen = Recipient(None, inbound.from_problem)
        recipient = chosen.address
        over_cap = facts.budget.over(recipient) if recipient else None
        unauthenticated = (sender_check(inbound.headers, worker.authserv_id, inbound.from_address)
                           if worker.require_authenticated_sender else None)
        if worker.require_authenticated_sender and chosen.note and not unauthenticated:
            unauthenticated = chosen.note  # strict: a Reply-To that does not align is not trusted either
        outlet = facts.outlets.get(outlet_key(inbound.from_address)) if inbound.from_address else None
        plan = decide(Facts(
            automated=ready.automated,
            sent_at=inbound.date,
            stories=stories,
            unmatched_links=unmatched,
            question=ready.question,
            recipient=recipient,
            now=now,
            max_age=timedelta(days=worker.max_age_days),
            unauthenticated=unauthenticated,
            over_cap=over_cap,
            recipient_note=chosen.note,
            ambiguous=ambiguous,
            max_stories=worker.max_stories_per_request,
            blocked=(f"outlet {outlet.key} is blocked: {outlet.blocked_reason or 'no reason given'}"
                     if outlet is not None and outlet.blocked else None),
        ))
        if over_cap and over_cap in plan.reason:
            log.warning("reply cap reached: request %s goes to a person (%s)", ready.key, over_cap)
        request = rows.add_request(request_values(inbound, plan, outlet_id=outlet.id if outlet else None,
                                                  mailbox=self.edges.source.name, now=now))
        pickups = (rows.add_pickups(request, outlet.id, story_decisions(plan), when=inbound.date or now,
                                    new_token=self.edges.new_token) if outlet else {})
        if not plan.reply:
            return plan, pickups, None
        facts.budget.spend(recipient)
        message_id = self.edges.new_message_id(self.config.reply_domain)
        raw = compose_reply(plan, inbound, recipient=recipient, outlet_id=outlet.id, pickups=pickups,
                            config=self.config, message_id=message_id, now=now)
        return plan, pickups, rows.add_reply(request, raw=raw, message_id=message_id, recipient=recipient, now=now)

    def _record_live_copy(self, session: Session, ready: Prepared, pickups: dict[int, PickupState],
                          now: datetime) -> None:
        """With one story named, a link to the outlet's own site is where it went live."""
        if len(pickups) != 1:
            return
        (story_id, pickup), = pickups.items()
        outlet = session.get(Outlet, pickup.outlet_id)
        for link in live_copy_links(ready.inbound, outlet.key, self.config.publication.allowed_hosts):
            pickup_rows.record_live_copy(session, story_id=story_id, url=link, source="email", now=now,
                                         pickup_id=pickup.id)

    def reports(self, session: Session, items: list[Item]) -> list[Handled]:
        """Bounces and delay notices: one that returns one of our replies means that reply failed; a person is told."""
        fresh, results = self.unseen(session, items)
        rows = requests.NewRows({})
        reports = []
        for message, ready in fresh:
            inbound = ready.inbound
            reply = outbox.by_message_ids(session, (*inbound.embedded_message_ids, inbound.in_reply_to,
                                                    *inbound.references))
            if reply is None:
                self.edges.source.skip(message.ref)  # someone else's bounce: not ours to touch
                results.append(Handled(message.ref, None))
                continue
            plan = decide_report(reply.message_id, reply.recipients, inbound.report_diagnostic)
            rows.add_request(request_values(inbound, plan, outlet_id=None, mailbox=self.edges.source.name,
                                            now=self.edges.clock()))
            if plan.needs_person:
                outbox.record_bounced(reply, inbound.report_diagnostic)
            reports.append((message, plan))
        rows.write(session)
        session.commit()
        for message, plan in reports:
            log.warning("message %s: %s", message.ref, plan.reason)
            results.append(Handled(message.ref, mark_for(plan), outcome=str(plan.outcome)))
        return results


def _stories(refs: StoryRefs, named: catalog.Named, imported: dict[str, str]
             ) -> tuple[tuple, tuple[str, ...], tuple[str, ...]]:
    found, by_title, ambiguous = named.for_refs(refs.own_keys, refs.title_keys)
    unmatched = []
    for link in refs.own_links:
        key = url_key(link)
        story = found.get(key) or named.by_url.get(imported.get(key, ""))
        if story is not None:
            found[key] = story
        else:
            unmatched.append(link)
    by_id = {story.id: story for story in found.values()}
    for story in by_title[:MAX_STORIES_BY_TITLE]:
        by_id.setdefault(story.id, story)
    return tuple(by_id.values()), tuple(unmatched), ambiguous


def already_handled(message: RawMessage, request: Request) -> Handled:
    """Seen before (a restart, a copy in another folder): finish what is left, never redo it."""
    if request.replies:
        return Handled(message.ref, None, request.replies[0].id)  # marked once its reply is sent
    log.info("message %s was already handled as request %s (%s)", message.ref, request.id, request.outcome)
    return Handled(message.ref, _mark(request.outcome, request.needs_person))


def _recipients(session: Session, items: list[Prepared], outlets: dict[str, Outlet]) -> dict[str, Recipient]:
    """{message key: where its reply may go}. A Reply-To outside From's organisation is followed only when
    the outlet has written from it before: looked up for those few only."""
    chosen = {ready.key: choose_recipient(ready.inbound.from_address, ready.inbound.reply_to_address)
              for ready in items}
    doubtful = {ready.key: outlets[outlet_key(ready.inbound.from_address)] for ready in items
                if chosen[ready.key].note and outlet_key(ready.inbound.from_address) in outlets}
    if doubtful:
        used = requests.addresses_used(session, sorted({outlet.id for outlet in doubtful.values()}))
        for ready in items:
            if ready.key in doubtful:
                known = frozenset(mailbox_key(address) for address in used[doubtful[ready.key].id] if address)
                chosen[ready.key] = choose_recipient(ready.inbound.from_address, ready.inbound.reply_to_address, known)
    return chosen


def mark_for(plan: Plan) -> Mark:
    return _mark(plan.outcome, plan.needs_person)


def _mark(outcome: str, needs_person: bool) -> Mark:
    if needs_person:
        return Mark.PERSON
    return {Outcome.IGNORED: Mark.IGNORED, Outcome.BACKFILLED: Mark.LOGGED}.get(outcome, Mark.DONE)

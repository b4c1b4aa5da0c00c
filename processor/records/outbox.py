"""The outbox: every reply is a row that goes through these states, and only this module moves it.

    pending --(claimed; committed before its SMTP transaction starts)--> sending
    sending --(all of it with the server; committed before the final ".")--> handed_over
    handed_over --(the server accepted it)--> sent
    sending, handed_over --(4xx, or refused)--> pending again, due after a backoff ("retry")
    sending, handed_over --(5xx)--> failed                      } the request goes to a person
    pending or sending, not accepted within retry_give_up_hours --> failed  }
    handed_over, connection lost before the answer --> unknown  } it may or may not have arrived:
    handed_over, found by a worker that did not start it --> unknown } never resent blindly
    sending, found by a worker that did not start it --> sending again (the server kept nothing)
    sent, then a delivery failure report comes back --> bounced

Until its DATA ends the server keeps nothing, so a worker that dies leaves in doubt only a reply whose
final "." was on its way: at most one per SMTP connection, and a reply that never reached the server
is sent by the next run. The caller owns the session and commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from models import MailboxSync, OutboxContent, OutboxMessage, Outcome, ReplyKind, Request, SendStatus

ERROR_CHARS = 2000


def new_reply(*, message_id: str, recipient: str, now: datetime, kind: str = ReplyKind.REPLY) -> dict:
    """The row of a reply just built: pending, due at once."""
    return {"message_id": message_id, "recipients": recipient, "status": SendStatus.PENDING, "attempts": 0,
            "last_error": "", "created_at": now, "next_attempt_at": now, "kind": kind}


@dataclass(frozen=True)
class Claimed:
    """A reply now "sending", with what its SMTP transaction needs."""

    id: int
    message_id: str
    recipient: str
    raw: bytes
    attempts: int


@dataclass(frozen=True)
class Settled:
    """A claimed reply that was not to be sent: why (for the log)."""

    id: int
    message_id: str
    status: str
    reason: str


def _statements():
    """The statements sending runs for every reply, built once: building one costs more than running it."""
    outbox, content, requests = OutboxMessage.__table__, OutboxContent.__table__, Request.__table__
    ids = bindparam("ids", expanding=True)
    due = and_(outbox.c.status == SendStatus.PENDING,
               or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= bindparam("now")))
    # "sending" and ours (the caller holds its claim): left by a worker that stopped before its DATA ended
    claim = (update(outbox).where(outbox.c.id.in_(ids), or_(due, outbox.c.status == SendStatus.SENDING),
                                  outbox.c.created_at >= bindparam("oldest"))
             .values(status=SendStatus.SENDING, attempts=outbox.c.attempts + 1)
             .returning(outbox.c.id, outbox.c.message_id, outbox.c.recipients, outbox.c.attempts))
    raws = select(content.c.outbox_id, content.c.raw).where(content.c.outbox_id.in_(ids))
    sent = (update(outbox).where(outbox.c.id == bindparam("sent_id"))
            .values(status=SendStatus.SENT, sent_at=bindparam("accepted_at", type_=outbox.c.sent_at.type),
                    next_attempt_at=None))
    # A correction notice answers no request: the one it threads onto was answered before.
    answered = (update(requests).where(requests.c.id.in_(select(outbox.c.request_id).where(
        outbox.c.id.in_(ids), outbox.c.kind != ReplyKind.CORRECTION).scalar_subquery()))
                .values(outcome=Outcome.ANSWERED))
    handed_over = (update(outbox).where(outbox.c.id == bindparam("handed_id"), outbox.c.status == SendStatus.SENDING)
                   .values(status=SendStatus.HANDED_OVER))
    return claim, raws, sent, answered, handed_over


_CLAIM, _RAWS, _SENT, _ANSWERED, _HANDED_OVER = _statements()
IN_FLIGHT = (SendStatus.SENDING, SendStatus.HANDED_OVER)


def start_sending(session: Session, outbox_ids: list[int], *, now: datetime, give_up_after: timedelta,
                  accepted: dict[int, datetime] | None = None) -> list[Claimed | Settled]:
    """Take replies this worker holds the claims on: pending and due, or left "sending" by a worker that
    stopped -> "sending" (returned with their message).

    Found "handed_over", nobody is sending it (whoever did holds the claim): this process saw it accepted
    (`accepted`, {id: when}) and could not record it -> sent; else -> unknown. Pending or "sending" past
    `give_up_after` -> failed. In the order of `outbox_ids`; one left out is not this worker's to send now
    (sent or settled meanwhile, or not due)."""
    if not outbox_ids:
        return []
    accepted = accepted or {}
    # The common case, in one statement for them all; the status is checked again in it.
    claimable = [outbox_id for outbox_id in outbox_ids if outbox_id not in accepted]
    taken = {row.id: row for row in session.execute(
        _CLAIM, {"ids": claimable, "now": now, "oldest": now - give_up_after})} if claimable else {}
    raws = dict(session.execute(_RAWS, {"ids": list(taken)}).all()) if taken else {}
    results: list[Claimed | Settled] = []
    for outbox_id in outbox_ids:
        row = taken.get(outbox_id)
        if row is not None:
            results.append(Claimed(outbox_id, row.message_id, row.recipients, raws[outbox_id], row.attempts))
        else:
            settled = _settle(session, outbox_id, now=now, give_up_after=give_up_after,
                              accepted_at=accepted.get(outbox_id))
            if settled is not None:
                results.append(settled)
    return results


def _settle(session: Session, outbox_id: int, *, now: datetime, give_up_after: timedelta,
            accepted_at: datetime | None) -> Settled | None:
    """A claimed reply that could not be taken for sending: settle it if it must not be sent (see above)."""
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.id == outbox_id)
                          .options(selectinload(OutboxMessage.request)).with_for_update()).first()
    if row is None:
        return None
    if row.status in IN_FLIGHT and accepted_at is not None:
        record_sent(session, {row.id: accepted_at})
        return Settled(row.id, row.message_id, SendStatus.SENT, "accepted before, recorded now")
    if row.status == SendStatus.HANDED_OVER:
        reason = (f"the worker stopped while this reply was being sent to {row.recipients}: it may or may not "
                  f"have arrived; check the Sent folder before answering by hand")
        _not_delivered(row, reason, SendStatus.UNKNOWN)
        return Settled(row.id, row.message_id, SendStatus.UNKNOWN, reason)
    if row.status in (SendStatus.PENDING, SendStatus.SENDING) and now - row.created_at > give_up_after:
        reason = (f"the mail server did not take the reply within {give_up_after.total_seconds() / 3600:g} hours "
                  f"(last error: {row.last_error})")
        _not_delivered(row, reason, SendStatus.FAILED)
        return Settled(row.id, row.message_id, SendStatus.FAILED, reason)
    return None  # sent or settled meanwhile, or not due yet


def record_handed_over(session: Session, outbox_id: int) -> bool:
    """All of a reply this worker is sending is with the server, which will keep it once told the message
    ends: from now on a crash leaves it in doubt. False when it is no longer this worker's "sending"."""
    return session.execute(_HANDED_OVER, {"handed_id": outbox_id}).rowcount == 1


def record_sent(session: Session, accepted: dict[int, datetime]) -> None:
    """The server took these replies (at these times): sent, and their requests answered.

    Accepted is the truth, whatever another worker assumed meanwhile: no need to look first."""
    if not accepted:
        return
    session.execute(_SENT, [{"sent_id": outbox_id, "accepted_at": at} for outbox_id, at in accepted.items()])
    session.execute(_ANSWERED, {"ids": list(accepted)})


def record_not_sent(session: Session, outbox_id: int, error: str, *, status: SendStatus,
                    next_attempt_at: datetime | None = None) -> bool:
    """A reply this worker was sending was not accepted: back to pending, due at `next_attempt_at` (a retry),
    or failed / unknown for a person. False when the reply is no longer in flight: if our claim was lost
    (its database connection dropped), another worker may have settled it, and a failure must not put it
    back in the queue."""
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.id == outbox_id)
                          .options(selectinload(OutboxMessage.request)).with_for_update()).first()
    if row is None or row.status not in IN_FLIGHT:
        return False
    if status == SendStatus.PENDING:
        row.status = SendStatus.PENDING
        row.last_error = error[:ERROR_CHARS]
        row.next_attempt_at = next_attempt_at
    else:
        _not_delivered(row, error, status)
    return True


def record_bounced(row: OutboxMessage, diagnostic: str) -> None:
    """A delivery failure report returned this sent reply."""
    if row.status == SendStatus.SENT:
        _not_delivered(row, f"the reply bounced: {diagnostic or 'no diagnostic given'}", SendStatus.BOUNCED)


def _not_delivered(row: OutboxMessage, error: str, status: SendStatus) -> None:
    """The reply did not (or may not have) reached the partner: the request goes to a person for good."""
    row.status = status
    row.last_error = error[:ERROR_CHARS]
    row.next_attempt_at = None
    request = row.request
    if row.kind == ReplyKind.CORRECTION:
        # The request was answered long ago; what a person must know is that this outlet missed a correction.
        error = f"correction notice {row.message_id}: {error}"
    elif status in (SendStatus.FAILED, SendStatus.UNKNOWN):
        request.outcome = Outcome.NEEDS_PERSON
    request.needs_person = True
    request.reason += f"; {error}"
    if request.resolution is not None:  # an editor's reply that did not arrive: back on the queue, and flagged
        request.resolution = None
        request.mailbox_sync = MailboxSync.REOPENED


def replies_due(session: Session, now: datetime, limit: int, exclude=()) -> list[int]:
    """Replies whose (next) attempt is due, then any left in flight (by a worker that may have died, or
    that is sending them right now), leaving out `exclude`."""
    due = or_(and_(OutboxMessage.status == SendStatus.PENDING, OutboxMessage.next_attempt_at <= now),
              OutboxMessage.status.in_(IN_FLIGHT))
    if exclude:
        due = and_(due, OutboxMessage.id.notin_(list(exclude)))
    sending_last = case((OutboxMessage.status.in_(IN_FLIGHT), 1), else_=0)
    return list(session.scalars(select(OutboxMessage.id).where(due)
                                .order_by(sending_last, OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


def left_in_doubt(session: Session, exclude=()) -> dict[int, str]:
    """{id: Message-ID} of replies left "handed_over" (by a worker that stopped, or that is awaiting the
    server's answer now)."""
    query = select(OutboxMessage.id, OutboxMessage.message_id).where(OutboxMessage.status == SendStatus.HANDED_OVER)
    if exclude:
        query = query.where(OutboxMessage.id.notin_(list(exclude)))
    return dict(session.execute(query).all())


def record_found_sent(session: Session, outbox_ids: list[int], now: datetime) -> None:
    """Replies left "handed_over" whose copy is in the Sent folder went out: sent (at about `now`)."""
    still = list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(outbox_ids),
                                                                 OutboxMessage.status == SendStatus.HANDED_OVER)))
    record_sent(session, {outbox_id: now for outbox_id in still})


def waiting_count(session: Session) -> int:
    """Replies still to send: pending (a retry due later) or being sent."""
    return session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status.in_((SendStatus.PENDING, *IN_FLIGHT)))) or 0


def next_attempt_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(OutboxMessage.next_attempt_at))
                          .where(OutboxMessage.status == SendStatus.PENDING))


def reply_states(session: Session, outbox_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """{outbox id: (send status, whether its request needs a person)}"""
    states = {}
    for start in range(0, len(outbox_ids), 5000):
        rows = session.execute(select(OutboxMessage.id, OutboxMessage.status, Request.needs_person)
                               .join(Request, OutboxMessage.request_id == Request.id)
                               .where(OutboxMessage.id.in_(outbox_ids[start:start + 5000]))).all()
        states.update((row_id, (status, needs_person)) for row_id, status, needs_person in rows)
    return states


def by_message_ids(session: Session, message_ids: tuple[str, ...]) -> OutboxMessage | None:
    """The reply with one of these Message-IDs (a delivery report names the message it returns)."""
    if not message_ids:
        return None
    return session.scalars(select(OutboxMessage).where(OutboxMessage.message_id.in_(message_ids))
                           .options(selectinload(OutboxMessage.request))).first()


def replies_since(session: Session, since: datetime) -> list[tuple[str, datetime]]:
    """(recipient, when) of every reply queued or sent since then (what the caps count); refused ones do
    not count. The caps keep these few: at most max_replies_per_hour an hour."""
    return [(recipient, created_at) for recipient, created_at in session.execute(
        select(OutboxMessage.recipients, OutboxMessage.created_at).where(
            OutboxMessage.created_at >= since, OutboxMessage.status != SendStatus.FAILED)).all()]


def latest_reply_of(session: Session, request_id: int) -> int | None:
    """The outbox id of a request's latest reply, if it has one."""
    return session.scalar(select(OutboxMessage.id).where(OutboxMessage.request_id == request_id)
                          .order_by(OutboxMessage.id.desc()).limit(1))

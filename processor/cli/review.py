"""`republish review`: the requests left for a person; show one, grant, decline, answer, dismiss or reopen it."""

from __future__ import annotations

import os

import click

from processor.cli.common import Context, now, ready_engine, session_for
from processor.cli.requests import requests_show
from processor.config import Config


@click.group(invoke_without_command=True)
@click.pass_context
def review(ctx: click.Context) -> None:
    """Requests waiting for a person, oldest first; show, grant, decline, answer, dismiss or reopen one."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.corrections import format_waiting, waiting_notices
    from processor.desk.listings import format_review_queue
    from processor.desk.review import review_queue

    with session_for(ctx.obj.config) as session:
        items = review_queue(session)
        notices = waiting_notices(session)
    click.echo(format_review_queue(items), nl=False)
    if notices:
        click.echo("\n" + format_waiting(notices), nl=False)


_editor_option = click.option("--editor", default=lambda: os.environ.get("USER", ""), show_default="$USER",
                              help="Who decided (recorded with the resolution).")
_story_option = click.option("--story", "story_refs", multiple=True, metavar="URL|WORDS",
                             help="The story meant, by its address or words of its title (repeatable); "
                                  "default: the stories the request named.")


# One request in full, as `requests show` prints it: the same command under the queue's name.
review.add_command(requests_show, name="show")


@review.command(name="grant")
@click.argument("request_id", type=int)
@_story_option
@_editor_option
@click.option("--note", default="", metavar="TEXT", help="Your own words to the partner, in the reply.")
@click.pass_obj
def review_grant(obj: Context, request_id: int, story_refs: tuple[str, ...], editor: str, note: str) -> None:
    """Grant the request: the reply with the snippets, signed by you, is sent now."""
    _resolve(obj.config, request_id, "grant", editor, story_refs, note)


@review.command(name="decline")
@click.argument("request_id", type=int)
@_story_option
@_editor_option
@click.option("--reason", default="", metavar="TEXT", help="Why, in your own words to the partner.")
@click.pass_obj
def review_decline(obj: Context, request_id: int, story_refs: tuple[str, ...], editor: str, reason: str) -> None:
    """Decline the request: a polite no, signed by you, is sent now."""
    _resolve(obj.config, request_id, "decline", editor, story_refs, reason)


@review.command(name="answer")
@click.argument("request_id", type=int)
@click.option("--text", required=True, metavar="TEXT", help="Your answer, in your own words (the guidelines follow it).")
@_editor_option
@click.pass_obj
def review_answer(obj: Context, request_id: int, text: str, editor: str) -> None:
    """Answer in your own words, in the thread, with the guidelines; sent now (also after the worker's reply)."""
    _resolve(obj.config, request_id, "answer", editor, (), text)


@review.command(name="dismiss")
@click.argument("request_id", type=int)
@_editor_option
@click.pass_obj
def review_dismiss(obj: Context, request_id: int, editor: str) -> None:
    """Take the request off the queue without sending anything (answered by hand, or not a request)."""
    _resolve(obj.config, request_id, "dismiss", editor, ())


@review.command(name="reopen")
@click.argument("request_id", type=int)
@_editor_option
@click.pass_obj
def review_reopen(obj: Context, request_id: int, editor: str) -> None:
    """Put a resolved request back on the queue (what was sent stays sent)."""
    from processor.desk.review import ReviewError, reopen

    if not editor:
        raise click.ClickException("say who reopens it with --editor NAME ($USER is not set)")
    with session_for(obj.config) as session:
        try:
            summary = reopen(session, request_id, editor=editor, now=now())
        except ReviewError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(summary)


@review.command(name="send-notice")
@click.argument("notice_id", type=int)
@_editor_option
@click.pass_obj
def review_send_notice(obj: Context, notice_id: int, editor: str) -> None:
    """Send a correction notice that waits for an editor (review mode, or over a cap)."""
    _decide_notice(obj.config, notice_id, True, editor)


@review.command(name="drop-notice")
@click.argument("notice_id", type=int)
@_editor_option
@click.pass_obj
def review_drop_notice(obj: Context, notice_id: int, editor: str) -> None:
    """Drop a waiting correction notice: that outlet is not told of that change."""
    _decide_notice(obj.config, notice_id, False, editor)


def _decide_notice(config: Config, notice_id: int, send: bool, editor: str) -> None:
    from processor.app import send_from_outbox
    from processor.pipeline.corrections import NoticeError, decide_notice
    from processor.pipeline.edges import new_message_id
    from processor.records.notices import outbox_of

    if not editor:
        raise click.ClickException("say who decides with --editor NAME ($USER is not set)")
    with session_for(config) as session:
        try:
            summary = decide_notice(session, notice_id, send, editor=editor, config=config, now=now(),
                                    new_message_id=new_message_id)
        except NoticeError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        queued = outbox_of(session, notice_id)
    click.echo(summary)
    if send and queued is not None:
        sent = send_from_outbox(config, [queued])
        click.echo("the running worker sends it" if sent is None else ("sent" if sent else "not sent yet: it waits "
                                                                      "in the outbox, the worker retries it"))


def _resolve(config: Config, request_id: int, action: str, editor: str, story_refs: tuple[str, ...],
             note: str = "") -> None:
    from processor.records import db  # here, not at the top: --help stays quick
    from processor.app import reply_sender
    from processor.desk.review import ReviewError, resolve, send_now

    if not editor:
        raise click.ClickException("say who decides with --editor NAME ($USER is not set)")
    with session_for(config) as session:
        try:
            summary = resolve(session, request_id, action, editor=editor, config=config, now=now(),
                              story_refs=story_refs, note=note)
        except ReviewError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(summary)
    if action == "dismiss":
        return
    engine = ready_engine(config)
    try:
        click.echo(send_now(db.make_session_factory(engine), request_id, reply_sender(config)))
    finally:
        engine.dispose()

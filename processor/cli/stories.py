"""`republish stories`: the catalog, and importing pages and feeds into it."""

from __future__ import annotations

import os
import sys

import click

from processor.cli.common import Context, now, output_option, ready_engine, session_for


@click.group(invoke_without_command=True)
@click.option("--search", metavar="TEXT", help="Only stories whose title or URL contains TEXT.")
@output_option
@click.pass_context
def stories(ctx: click.Context, search: str | None, output: str) -> None:
    """The story catalog, with how often each story was granted and declined."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.listings import format_stories
    from processor.desk.story_stats import story_counts

    with session_for(ctx.obj.config) as session:
        rows = story_counts(session, search=search)
    click.echo(format_stories(rows, output), nl=False)


@stories.command(name="import")
@click.argument("sources", nargs=-1, required=True)
@click.pass_obj
def import_(obj: Context, sources: tuple[str, ...]) -> None:
    """Import article pages and RSS/Atom feeds, by URL (publication hosts only) or file."""
    from processor.records import db  # here, not at the top: --help stays quick
    from processor.catalog.stories import ImportFailed, complete_summaries, import_articles, parse_source, read_source
    from processor.app import send_from_outbox, site_fetcher
    from processor.pipeline.corrections import tell_outlets
    from processor.pipeline.edges import new_message_id

    config = obj.config
    engine = ready_engine(config)
    sessions = db.make_session_factory(engine)
    failures = 0
    notices: list[int] = []
    for source in _with_progress(sources, "importing"):
        try:
            data, url, charset = read_source(source, publication=config.publication,
                                             timeout=config.worker.fetch_timeout, max_bytes=config.worker.fetch_max_bytes)
            articles = parse_source(data, url=url, publication=config.publication, charset=charset)
            articles = complete_summaries(articles, publication=config.publication, fetch=site_fetcher(config))
        except ImportFailed as exc:
            failures += 1
            click.echo(f"{source}: not imported: {exc}", err=True)
            continue
        with sessions() as session:
            report = import_articles(session, articles, source=source, now=now())
            told = tell_outlets(session, report.revised, config=config, now=now(), new_message_id=new_message_id)
            session.commit()
        notices += told.queued
        not_free = [a for a in articles if a.origin]
        click.echo(f"{source}: {len(report.created)} new, {len(report.updated)} updated"
                   f"{f', {len(not_free)} not free to republish' if not_free else ''}"
                   f"{f', {len(report.failed)} skipped' if report.failed else ''}")
        summaries = sum(1 for a in articles if a.summary_only)
        if summaries:
            click.echo(f"  {summaries} known by their feed's summary only (pages not fetched yet or not to be had): "
                       f"completed at their first request, or handed to a person")
        for article in not_free:  # what the importer read, so an editor can overrule it (set-origin)
            click.echo(f"  not free: {article.canonical_url} ({article.origin.name}): {article.origin.evidence}")
        if report.revised:
            click.echo(f"  {len(report.revised)} changed since last read: {len(told.queued)} outlet(s) told"
                       f"{f', {told.waiting} notice(s) wait for an editor' if told.waiting else ''}")
    engine.dispose()
    if notices:
        sent = send_from_outbox(config, notices)
        click.echo("the running worker sends the correction notices" if sent is None
                   else f"correction notices: {sent} of {len(notices)} sent now")
    if failures:
        sys.exit(1)


@stories.command(name="show")
@click.argument("reference", metavar="URL|ID")
@click.option("--snippet", type=click.Choice(["html", "text"]), help="Also print the exact snippet a partner gets.")
@click.pass_obj
def show(obj: Context, reference: str, snippet: str | None) -> None:
    """One story: its metadata, its origin with the evidence, its revisions and who was told of them, and
    what a partner would receive."""
    from processor.desk.corrections import format_revisions, revision_count, revisions_of
    from processor.desk.story_preview import find_story, format_preview, preview

    with session_for(obj.config) as session:
        story = find_story(session, reference)
        if story is None:
            raise click.ClickException(f"{reference} is not in the story catalog")
        click.echo(format_preview(preview(story, obj.config.publication), snippet,
                                  format_revisions(revisions_of(session, story.id), revision_count(session, story.id))),
                   nl=False)


@stories.command(name="set-origin")
@click.argument("url")
@click.option("--free", is_flag=True, help="The story is the publication's own: free to republish.")
@click.option("--origin", "origin", metavar="NAME", help="The story came from NAME (a wire service, an outlet).")
@click.option("--editor", default=lambda: os.environ.get("USER", ""), show_default="$USER",
              help="Who rules (recorded with the time).")
@click.pass_obj
def set_origin(obj: Context, url: str, free: bool, origin: str | None, editor: str) -> None:
    """Overrule the importer on where a story came from; kept across re-imports."""
    from processor.catalog.stories import set_origin as rule

    if free == bool(origin):
        raise click.UsageError("give either --free or --origin NAME")
    if not editor.strip():
        raise click.UsageError("say who rules: --editor NAME")
    with session_for(obj.config) as session:
        try:
            story = rule(session, url, None if free else origin.strip(), editor=editor.strip(), now=now())
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"{story.canonical_url}: {'free to republish' if story.origin is None else f'from {story.origin}'} "
                   f"({story.origin_evidence})")


def _with_progress(items: tuple[str, ...], label: str):
    """The items, with a progress bar on stderr while there is more than one."""
    if len(items) < 2:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=len(items))
        for item in items:
            progress.update(task, description=item[-60:])
            yield item
            progress.advance(task)

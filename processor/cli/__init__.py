"""The `republish` command: thin click commands that parse arguments, call one function, format its result.

One module per area; each command imports what it uses when it runs, so `republish --help` stays quick.
"""

from __future__ import annotations

import click

from processor import logs
from processor.cli import catalog, database, outlets, pickups, requests, review, stories, verify, web, worker
from processor.cli.common import Context
from processor.config import ConfigError


class _Commands(click.Group):
    """A secret is read when a command first needs it: one it cannot read ends the command with the key's
    name, as a config error at start-up would."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
@click.option("--config", "config_option", metavar="PATH", help="Config file (default: $REPUBLISH_CONFIG, else ./config.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.version_option(package_name="republish-processor")
@click.pass_context
def main(ctx: click.Context, config_option: str | None, verbose: bool) -> None:
    """Answer a newsroom's "republish" inbox and keep the log of who picked up which story."""
    logs.configure(verbose)
    ctx.obj = Context(config_option)


for command in (worker.demo, worker.run, database.db_group, stories.stories, catalog.catalog, pickups.pickups, outlets.outlets,
                requests.requests, review.review, verify.verify, web.serve, web.web):
    main.add_command(command)

"""`republish serve` (the dashboard) and `republish web` (its set-up)."""

from __future__ import annotations

import logging
import sys

import click

from processor.cli.common import Context, ready_engine

log = logging.getLogger("processor")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """The dashboard: pickup log, charts, outlets, stories, the review queue, and the tracking pixel."""
    import uvicorn

    from processor.app import reply_sender
    from processor.config import is_loopback
    from processor.desk.web.app import build_app

    config = obj.config
    if config.web is None:
        raise click.ClickException("config table [web] is missing: see config.example.toml (republish web hash-password)")
    if config.web.trusted_user_header and not is_loopback(host):
        click.echo(f"warning: trusting {config.web.trusted_user_header} from anyone who can reach {host}:{port}; "
                   "only the login proxy must be able to", err=True)
    engine = ready_engine(config)
    try:
        proxies = config.web.trusted_proxies
        uvicorn.run(build_app(config, engine, send_reply=reply_sender(config)), host=host, port=port,
                    proxy_headers=bool(proxies), forwarded_allow_ips=list(proxies) or None, server_header=False,
                    access_log=False,  # it writes every reader's address (the pixel's too); none is kept
                    log_level="info" if log.isEnabledFor(logging.INFO) else "warning")
    finally:
        engine.dispose()


@click.group()
def web() -> None:
    """The dashboard's set-up."""


@web.command(name="hash-password")
def hash_password_command() -> None:
    """Read the dashboard password (prompt or stdin) and print the [web] password_hash line for config.toml."""
    from processor.passwords import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Dashboard password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        raise click.ClickException("use a password of at least 12 characters")
    click.echo(f'password_hash = "{hash_password(password)}"')

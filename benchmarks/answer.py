"""A batch of fresh requests, answered: replies per second against the SMTP server's own accept rate.

    .venv/bin/python -m benchmarks.answer [--requests 1000] [--runs 3] [--rtt 0 --rtt 0.04] [--smtp-connections N]
                                          [--profile FILE]

A private Dovecot and an aiosmtpd server, both behind the latency proxy (server and proxies in a
process of their own, see sidecar.py), SQLite; the worker runs here. Baselines measured in the same run: the SMTP server's accept rate on one connection (smtplib sending reply-sized messages
back to back) and the naive peer (imaplib, one FETCH per message, one new SMTP connection per reply).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import platform
import smtplib
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.mail import prepare_database, start_dovecot
from benchmarks.profiling import profiled
from benchmarks.sidecar import Sidecar
from processor.app import build_worker
from tests.helpers import load, request_message, write_config

STORY = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
NAIVE_SAMPLE = 100


def deliver(dovecot, user: dict, count: int) -> None:
    """Fresh requests from `count` different outlets (the daily cap per sender stays out of the way)."""
    _, _, uid, gid = dovecot._accounts()
    maildir = dovecot.root / "mail" / user["username"]
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for path in (maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
        os.chown(path, uid, gid)
    for index in range(count):
        path = maildir / "new" / f"{1700000000 + index}.M{index}P2.bench"
        path.write_bytes(request_message(sender=f"Desk <desk@outlet{index}.example>", body=f"Running {STORY}",
                                         message_id=f"<fresh-{index}@outlet{index}.example>"))
        os.chown(path, uid, gid)


def smtp_accept_rate(port: int, message: bytes, count: int) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(count):
            smtp.sendmail("republish@riversideledger.example", ["desk@outlet.example"], message)
    return count / (time.perf_counter() - started)


def naive_rate(imap_port: int, smtp_port: int, user: dict, message: bytes) -> float:
    started = time.perf_counter()
    client = imaplib.IMAP4("127.0.0.1", imap_port)
    client.login(user["username"], user["password"])
    client.select("INBOX", readonly=True)
    numbers = client.search(None, "SUBJECT", "republish")[1][0].split()[:NAIVE_SAMPLE]
    for number in numbers:
        client.fetch(number, "(RFC822)")
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:  # a new connection per reply
            smtp.sendmail("republish@riversideledger.example", ["desk@outlet.example"], message)
    client.logout()
    return len(numbers) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rtt", type=float, action="append", help="round-trip time in seconds (default: 0 and 0.04)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smtp-connections", type=int, help="[worker] smtp_connections (default: the config's default)")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile of the worker's last run here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    sidecar = Sidecar()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.requests} fresh requests, median of {args.runs} runs")
    try:
        smtp_port = sidecar.smtp()
        for rtt in args.rtt or [0.0, 0.04]:
            imap_port, smtp_proxy = sidecar.proxy(dovecot.imap_port, rtt), sidecar.proxy(smtp_port, rtt)
            figures: dict[str, list[float]] = {"worker": [], "accept": [], "naive": []}
            for run in range(args.runs):
                user = dovecot.add_user(f"answer{uuid.uuid4().hex[:8]}@test.example")
                deliver(dovecot, user, args.requests)
                folder = root / f"run-{uuid.uuid4().hex[:6]}"
                folder.mkdir()
                config = load(write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}",
                                           imap={**user, "port": imap_port}, smtp_port=smtp_proxy, batch_size=None,
                                           extra=(f"smtp_connections = {args.smtp_connections}\n"
                                                  if args.smtp_connections else "")),
                              user["password"])
                prepare_database(config)
                worker, engine = build_worker(config)
                before = sidecar.count()
                profile = args.profile.with_suffix(f".rtt{rtt * 1000:.0f}.txt") if args.profile else None
                with profiled(profile if run == args.runs - 1 else None):
                    started = time.perf_counter()
                    stats = worker.run(once=True)
                    elapsed = time.perf_counter() - started
                worker.close()
                engine.dispose()
                replies = sidecar.count() - before
                if replies != args.requests:
                    print(f"  warning: {replies} replies for {args.requests} requests ({stats.by_outcome})")
                reply = sidecar.last(folder / "reply.eml")
                figures["worker"].append(replies / elapsed)
                print(f"  run {run + 1}: {replies / elapsed:,.0f} replies/s", flush=True)
                figures["accept"].append(smtp_accept_rate(smtp_proxy, reply, min(args.requests, 300 if rtt else 1000)))
                figures["naive"].append(naive_rate(imap_port, smtp_proxy, user, reply))
            rate, accept, naive = (statistics.median(figures[name]) for name in ("worker", "accept", "naive"))
            print(f"RTT {rtt * 1000:.0f} ms: {rate:,.0f} replies/s = {rate / accept:.0%} of the SMTP server's accept "
                  f"rate on one connection ({accept:,.0f}/s), {rate / naive:.1f}x the naive peer ({naive:,.1f}/s)")
    finally:
        sidecar.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()

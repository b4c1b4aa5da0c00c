"""A batch of fresh requests, answered: replies per second against the SMTP server's own accept rate.

    .venv/bin/python -m benchmarks.answer [--requests 1000] [--rtt 0 --rtt 0.04]

A private Dovecot and an aiosmtpd server, both behind the latency proxy, SQLite. Baselines measured in
the same run: the SMTP server's accept rate on one connection (smtplib sending reply-sized messages
back to back) and the naive peer (imaplib, one FETCH per message, one new SMTP connection per reply).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import smtplib
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.latency_proxy import LatencyProxy
from benchmarks.mail import prepare_database, start_dovecot
from processor.app import build_worker
from tests.helpers import load, request_message, write_config
from tests.servers import SmtpServer

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
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    smtp = SmtpServer()
    smtp.start()
    try:
        for rtt in args.rtt or [0.0, 0.04]:
            imap_proxy = LatencyProxy(dovecot.imap_port, rtt).start()
            smtp_proxy = LatencyProxy(smtp.port, rtt).start()
            user = dovecot.add_user(f"answer{uuid.uuid4().hex[:8]}@test.example")
            deliver(dovecot, user, args.requests)
            folder = root / f"run-{uuid.uuid4().hex[:6]}"
            folder.mkdir()
            config = load(write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}",
                                       imap={**user, "port": imap_proxy.port}, smtp_port=smtp_proxy.port, batch_size=None),
                          user["password"])
            prepare_database(config)
            worker, engine = build_worker(config)
            before = len(smtp.messages)
            started = time.perf_counter()
            stats = worker.run(once=True)
            elapsed = time.perf_counter() - started
            worker.close()
            engine.dispose()
            replies = len(smtp.messages) - before
            reply = smtp.messages[-1][2] if smtp.messages else b"x"
            accept = smtp_accept_rate(smtp_proxy.port, reply, min(args.requests, 300 if rtt else 1000))
            naive = naive_rate(imap_proxy.port, smtp_proxy.port, user, reply)
            rate = replies / elapsed
            print(f"RTT {rtt * 1000:.0f} ms: {replies} replies ({stats.replies_sent} sent) at {rate:,.0f}/s = "
                  f"{rate / accept:.0%} of the SMTP server's accept rate on one connection ({accept:,.0f}/s), "
                  f"{rate / naive:.1f}x the naive peer ({naive:,.1f}/s)")
            imap_proxy.stop()
            smtp_proxy.stop()
    finally:
        smtp.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()

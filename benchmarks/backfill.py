"""First run on a big old mailbox: how fast the worker logs (not answers) years of requests.

    .venv/bin/python -m benchmarks.backfill [--messages 10000] [--runs 3] [--rtt 0 --rtt 0.04]

Against a private Dovecot (as in the tests) behind a proxy adding a round-trip time, on SQLite. Each
figure is the median of `--runs` runs, next to two baselines measured in the same run:
  limit  - only what cannot be skipped: imapclient SEARCH, UID FETCH BODY.PEEK[] in batches of 500,
           mail-parser on each message;
  naive  - what a cron script does: stdlib imaplib, one FETCH per message (on a sample, since it is slow).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import imapclient
import mailparser

from benchmarks.mail import fill_maildir, prepare_database, start_dovecot
from benchmarks.profiling import profiled
from benchmarks.sidecar import Sidecar
from processor.app import build_worker
from tests.helpers import load, write_config

CRITERIA = ["NOT", "DELETED", "OR", "SUBJECT", "republish", "OR", "HEADER", "Content-Type", "report",
            "FROM", "mailer-daemon"]
NAIVE_SAMPLE = 200


def limit_rate(port: int, user: dict) -> float:
    started = time.perf_counter()
    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False)
    client.login(user["username"], user["password"])
    client.select_folder("INBOX", readonly=True)
    uids = client.search(CRITERIA)
    for start in range(0, len(uids), 500):
        for data in client.fetch(uids[start:start + 500], ["BODY.PEEK[]"]).values():
            mailparser.parse_from_bytes(data[b"BODY[]"])
    client.logout()
    return len(uids) / (time.perf_counter() - started)


def naive_rate(port: int, user: dict) -> float:
    started = time.perf_counter()
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(user["username"], user["password"])
    client.select("INBOX", readonly=True)
    _, data = client.search(None, "SUBJECT", "republish")
    numbers = data[0].split()[:NAIVE_SAMPLE]
    for number in numbers:
        _, parts = client.fetch(number, "(RFC822)")
        mailparser.parse_from_bytes(parts[0][1])
    client.logout()
    return len(numbers) / (time.perf_counter() - started)


def worker_rate(port: int, user: dict, folder: Path, profile: Path | None = None) -> tuple[float, dict]:
    path = write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}",
                        imap={**user, "port": port}, outbox=folder / "outbox", batch_size=None)
    config = load(path, user["password"])
    config = replace(config, worker=replace(config.worker, sink="outbox"))
    prepare_database(config)
    worker, worker_engine = build_worker(config)
    with profiled(profile):
        started = time.perf_counter()
        stats = worker.run(once=True)
        elapsed = time.perf_counter() - started
    worker.close()
    worker_engine.dispose()
    return stats.seen / elapsed, stats.by_outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt", type=float, action="append", help="round-trip time in seconds (default: 0 and 0.04)")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile of the worker's last run here")
    args = parser.parse_args()
    rtts = args.rtt or [0.0, 0.04]
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    sidecar = Sidecar()  # the proxy runs there, not in the measured process
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.messages} messages, median of {args.runs} runs")
    try:
        for rtt in rtts:
            port = sidecar.proxy(dovecot.imap_port, rtt)
            figures: dict[str, list[float]] = {"limit": [], "naive": [], "worker": []}
            outcomes = {}
            for _ in range(args.runs):
                user = dovecot.add_user(f"bench{uuid.uuid4().hex[:8]}@test.example")
                fill_maildir(dovecot, user, args.messages, old=True)
                figures["limit"].append(limit_rate(port, user))
                figures["naive"].append(naive_rate(port, user))
                with tempfile.TemporaryDirectory() as folder:
                    profile = args.profile.with_suffix(f".rtt{rtt * 1000:.0f}.txt") if args.profile else None
                    rate, outcomes = worker_rate(port, user, Path(folder), profile)
                figures["worker"].append(rate)
            limit, naive, worker = (statistics.median(figures[name]) for name in ("limit", "naive", "worker"))
            print(f"RTT {rtt * 1000:.0f} ms: worker {worker:,.0f} msg/s = {worker / limit:.0%} of the limit "
                  f"({limit:,.0f} msg/s), {worker / naive:.1f}x the naive peer ({naive:,.1f} msg/s); outcomes {outcomes}")
    finally:
        sidecar.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()

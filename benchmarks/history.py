"""A pass must not cost more as the mailbox's history grows.

    .venv/bin/python -m benchmarks.history [--messages 100000] [--passes 5] [--rtt 0 --rtt 0.04]
                                           [--server dovecot --server exchange]

A folder of `--messages` requests the worker has already handled (a real first run logs them all), then
one new request at a time: each pass must download that one message, and take about what a pass takes
on a folder holding nothing but it (the baseline, measured in the same run). On Dovecot, which keeps our
keywords, and on the Exchange Online double (tests/provider_emulation.py: no keywords, so only the folder
ledger tells a pass what is new), each behind a proxy adding a round-trip time; SQLite, replies written
to an outbox folder. The proxies run in the sidecar process; the Exchange double in this one.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import imapclient

from benchmarks.mail import fill_maildir, prepare_database, start_dovecot
from benchmarks.sidecar import Sidecar
from processor.app import build_worker
from tests.helpers import load, request_message, write_config
from tests.provider_emulation import ExchangeLikeImapProxy

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def _worker(port: int, user: dict, folder: Path):
    path = write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}", imap={**user, "port": port},
                        outbox=folder / "outbox", batch_size=None)
    config = load(path, user["password"])
    config = replace(config, worker=replace(config.worker, sink="outbox"))
    prepare_database(config)
    return build_worker(config)


def _deliver(dovecot, user: dict, index: int) -> None:
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False)
    client.login(user["username"], user["password"])
    client.append("INBOX", request_message(sender=f"desk@new{index}.example", body=BIKE,
                                           message_id=f"<new-{index}-{uuid.uuid4().hex[:8]}@new{index}.example>"))
    client.logout()


def server_floor(dovecot, port: int, user: dict, passes: int, keywords: bool) -> list[float]:
    """What the server itself takes for one new message, whoever asks: a bare session doing a pass's IMAP
    commands (NOOP, STATUS UIDNEXT, SEARCH from a UID, FETCH the one message, STORE a mark). On a big
    Maildir folder Dovecot spends time of its own syncing after new mail, which no client can save."""
    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False)
    client.login(user["username"], user["password"])
    client.select_folder("INBOX")
    times = []
    for index in range(passes):
        _deliver(dovecot, user, 1000 + index)
        started = time.perf_counter()
        client.noop()
        next_uid = client.folder_status("INBOX", [b"UIDNEXT"])[b"UIDNEXT"]
        uids = [uid for uid in client.search(["UID", f"{max(1, next_uid - 1)}:*"]) if uid >= next_uid - 1]
        client.fetch(uids, ["BODY.PEEK[]"])
        client.add_flags(uids, [b"$RepublishDone"] if keywords else [b"\\Flagged"], silent=True)
        times.append(time.perf_counter() - started)
    client.logout()
    return times


def pass_seconds(dovecot, port: int, user: dict, folder: Path, passes: int) -> tuple[list[float], list[int], float]:
    """(seconds per pass, messages downloaded per pass, seconds the first pass over the history took)."""
    worker, engine = _worker(port, user, folder)
    try:
        started = time.perf_counter()
        worker.run(once=True)  # the first run: logs the whole history
        history = time.perf_counter() - started
        times, seen = [], []
        for index in range(passes):
            _deliver(dovecot, user, index)
            started = time.perf_counter()
            stats = worker.run(once=True)
            times.append(time.perf_counter() - started)
            seen.append(stats.seen)
        return times, seen, history
    finally:
        worker.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--rtt", type=float, action="append", help="round-trip time in seconds (default: 0 and 0.04)")
    parser.add_argument("--server", choices=("dovecot", "exchange"), action="append",
                        help="which server to measure (default: both)")
    args = parser.parse_args()
    rtts = args.rtt or [0.0, 0.04]
    servers = args.server or ["dovecot", "exchange"]
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root, large_folders=True)
    exchange = ExchangeLikeImapProxy(dovecot.imap_port)
    exchange.start()
    sidecar = Sidecar()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.messages} handled messages, median of {args.passes} passes")
    try:
        for server, upstream in (("Dovecot", dovecot.imap_port), ("Exchange double (no keywords)", exchange.port)):
            if server.split()[0].lower() not in servers:
                continue
            for rtt in rtts:
                port = sidecar.proxy(upstream, rtt)
                full = dovecot.add_user(f"bench{uuid.uuid4().hex[:8]}@test.example")
                fill_maildir(dovecot, full, args.messages, old=True)
                empty = dovecot.add_user(f"bench{uuid.uuid4().hex[:8]}@test.example")
                keywords = upstream == dovecot.imap_port
                with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
                    with_history, seen, first = pass_seconds(dovecot, port, full, Path(one), args.passes)
                    baseline, _, _ = pass_seconds(dovecot, port, empty, Path(two), args.passes)
                floor_full = statistics.median(server_floor(dovecot, port, full, args.passes, keywords))
                floor_empty = statistics.median(server_floor(dovecot, port, empty, args.passes, keywords))
                busy, idle = statistics.median(with_history), statistics.median(baseline)
                print(f"{server}, RTT {rtt * 1000:.0f} ms: a pass with {args.messages:,} handled messages "
                      f"{busy * 1000:.0f} ms (downloads per pass: {seen}), on an empty folder {idle * 1000:.0f} ms: "
                      f"{busy / idle:.2f}x (target <= 1.20x). The server's own floor for one new message: "
                      f"{floor_full * 1000:.0f} ms with the history, {floor_empty * 1000:.0f} ms without; the worker's "
                      f"time above it {(busy - floor_full) * 1000:.0f} vs {(idle - floor_empty) * 1000:.0f} ms. "
                      f"First run over the history {first:.0f} s")
    finally:
        sidecar.stop()
        exchange.stop()
        dovecot.stop()


if __name__ == "__main__":
    main()

"""Peak memory of `republish run --once` as the mailbox grows, and with a 25 MB message in it.

    .venv/bin/python -m benchmarks.memory [--sizes 1000,10000]

Each size gets a fresh mailbox (old requests, other mail and decoys, as in benchmarks.backfill) and a
fresh SQLite database; the worker runs in its own process and its peak resident set size is read from
the kernel once it exits. The last run adds one 25 MB message to the largest mailbox.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from benchmarks.mail import fill_maildir, prepare_database, start_dovecot
from tests.helpers import load, write_config


def peak_rss_mb(config_path: Path, password: str) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one `republish run --once` in a child process."""
    started = time.perf_counter()
    worker = subprocess.run([sys.executable, "-m", "benchmarks.peak_rss", "--config", str(config_path), "run", "--once"],
                            env={**os.environ, "TEST_IMAP_PASSWORD": password}, capture_output=True)
    elapsed = time.perf_counter() - started
    peak = re.search(rb"PEAK_RSS_KB (\d+)", worker.stderr)
    if worker.returncode != 0 or peak is None:
        raise SystemExit(worker.stderr.decode()[-2000:])
    return int(peak.group(1)) / 1024, elapsed


def huge_message(megabytes: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Desk <desk@bigattachments.example>"
    mail["To"] = "republish@riversideledger.example"
    mail["Subject"] = "republish"
    mail["Message-ID"] = "<huge@bigattachments.example>"
    mail.set_content("Our copy, with the photos attached.")
    mail.add_attachment(os.urandom(megabytes * 1024 * 1024), maintype="application", subtype="octet-stream",
                        filename="photos.zip")
    return mail.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="mailbox sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    print(f"{os.cpu_count()} cores; peak RSS of `republish run --once` (a child process each time)")
    try:
        for size, with_huge in [(size, False) for size in sizes] + [(sizes[-1], True)]:
            user = dovecot.add_user(f"mem{uuid.uuid4().hex[:8]}@test.example")
            fill_maildir(dovecot, user, size, old=True)
            if with_huge:
                target = dovecot.root / "mail" / user["username"] / "new" / "1800000000.Mhuge.bench"
                target.write_bytes(huge_message(25))
                _, _, uid, gid = dovecot._accounts()
                os.chown(target, uid, gid)
            folder = root / f"run-{uuid.uuid4().hex[:6]}"
            folder.mkdir()
            config_path = write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}", imap=user,
                                       outbox=folder / "outbox", batch_size=None)
            prepare_database(load(config_path, user["password"]))
            peak, elapsed = peak_rss_mb(config_path, user["password"])
            label = f"{size:,} messages" + (" + one of 25 MB" if with_huge else "")
            print(f"{label}: peak RSS {peak:.0f} MB ({elapsed:.0f} s)")
    finally:
        dovecot.stop()

if __name__ == "__main__":
    main()

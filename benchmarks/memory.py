"""Peak memory of `republish run --once` as the mailbox grows, and with a 25 MB message in it.

    .venv/bin/python -m benchmarks.memory [--sizes 1000,100000]

Each size gets a fresh mailbox (old requests, other mail and decoys, as in benchmarks.backfill) and a
fresh SQLite database; the worker runs in its own process. Two figures: the worker process's own peak
resident set size (the kernel's VmHWM), and the peak of the memory it and its helper process (the
parser) hold together, as proportional set sizes
(Pss: a page shared by two processes counts half in each), sampled every 20 ms. The last run adds one
25 MB message to the largest mailbox.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from benchmarks.mail import fill_maildir, prepare_database, start_dovecot
from tests.helpers import load, write_config


def peak_memory_mb(config_path: Path, password: str) -> tuple[float, float, float, int]:
    """(worker's peak RSS, peak of all its processes' summed Pss, seconds, processes) of one `run --once`."""
    started = time.perf_counter()
    log = config_path.with_name("worker.log").open("w+b")  # a file, not a pipe: nobody reads it while it runs
    worker = subprocess.Popen([sys.executable, "-m", "processor.cli", "--config", str(config_path), "run", "--once"],
                              env={**os.environ, "TEST_IMAP_PASSWORD": password}, stdout=subprocess.DEVNULL, stderr=log)
    worker_peak = together_peak = 0
    seen: set[int] = set()
    while worker.poll() is None:
        processes = [worker.pid, *descendants(worker.pid)]
        seen.update(processes)
        worker_peak = max(worker_peak, status_kb(worker.pid, "VmHWM:"))
        together_peak = max(together_peak, sum(proportional_kb(pid) for pid in processes))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if worker.returncode != 0:
        log.seek(0)
        raise SystemExit(log.read().decode()[-2000:])
    log.close()
    return worker_peak / 1024, together_peak / 1024, elapsed, len(seen)


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proportional_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


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
    parser.add_argument("--sizes", default="1000,100000", help="mailbox sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    print(f"{os.cpu_count()} cores; peak memory of `republish run --once` (the worker process, and it with its helpers)")
    figures = []
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
            worker_peak, together, elapsed, processes = peak_memory_mb(config_path, user["password"])
            label = f"{size:,} messages" + (" + one of 25 MB" if with_huge else "")
            figures.append((worker_peak, together))
            print(f"{label}: worker peak RSS {worker_peak:.0f} MB ({worker_peak / figures[0][0]:.2f}x the first "
                  f"size's); with its helpers {together:.0f} MB Pss over {processes} processes "
                  f"({together / figures[0][1]:.2f}x); {elapsed:.0f} s, {size / elapsed:,.0f} msg/s")
    finally:
        dovecot.stop()

if __name__ == "__main__":
    main()

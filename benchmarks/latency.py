"""Seconds from a request's delivery to its reply's acceptance, with the worker waiting in IDLE.

    .venv/bin/python -m benchmarks.latency [--requests 200] [--gap 0.25]

The real `republish run` in its own process, a private Dovecot and an aiosmtpd server on loopback,
SQLite. Requests are delivered one by one (IMAP APPEND), `--gap` seconds apart; each latency runs from
the moment the APPEND returned to the moment the SMTP server accepted the reply. Prints p50, p90, p99
and the worst, and the worker's CPU use while it waited with nothing to do.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import imapclient

from benchmarks.mail import prepare_database, start_dovecot
from tests.helpers import load, request_message, write_config
from tests.servers import SmtpServer

STORY = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.25)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    dovecot = start_dovecot(root)
    smtp = SmtpServer()
    smtp.start()
    worker = None
    try:
        folder = root / "worker"
        folder.mkdir()
        user = dovecot.add_user(f"latency{uuid.uuid4().hex[:8]}@test.example")
        config_path = write_config(folder, f"sqlite:///{folder / 'bench.sqlite3'}", imap=user, smtp_port=smtp.port,
                                   batch_size=None)
        # A five-minute poll: only IDLE can make the answers come within seconds.
        config_path.write_text(config_path.read_text().replace("poll_seconds = 1\n", "poll_seconds = 300\n"))
        config = load(config_path, user["password"])
        prepare_database(config)
        worker = subprocess.Popen([sys.executable, "-m", "processor.cli", "--config", str(config_path), "run"],
                                  env={**os.environ, "TEST_IMAP_PASSWORD": user["password"]},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)  # started and waiting in IDLE
        idle_cpu = cpu_seconds(worker.pid)
        time.sleep(10)
        idle_share = (cpu_seconds(worker.pid) - idle_cpu) / 10
        client = imapclient.IMAPClient("127.0.0.1", port=user["port"], ssl=False)
        client.login(user["username"], user["password"])
        delivered: dict[str, float] = {}
        for index in range(args.requests):
            message_id = f"latency-{index}@outlet{index}.example"
            raw = request_message(sender=f"Desk <desk@outlet{index}.example>", body=f"Running {STORY}",
                                  message_id=f"<{message_id}>")
            client.append("INBOX", raw)
            delivered[message_id] = time.time()
            time.sleep(args.gap)
        client.logout()
        deadline = time.monotonic() + 60
        while len(smtp.messages) < args.requests and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        smtp.stop()
        dovecot.stop()
    latencies = []
    for (_, _, raw), accepted in zip(smtp.messages, smtp.accepted_at):
        match = re.search(rb"(?im)^In-Reply-To:\s*<([^>]+)>", raw)
        if match and match.group(1).decode() in delivered:
            latencies.append(accepted - delivered[match.group(1).decode()])
    print(f"{len(latencies)} of {args.requests} requests answered, one every {args.gap} s, loopback, SQLite")
    if latencies:
        print(f"delivery to accepted reply: p50 {percentile(latencies, 0.5):.3f} s, p90 {percentile(latencies, 0.9):.3f} s, "
              f"p99 {percentile(latencies, 0.99):.3f} s, worst {max(latencies):.3f} s, mean {statistics.mean(latencies):.3f} s")
    print(f"worker waiting in IDLE: {idle_share:.2%} of a core over 10 s")


if __name__ == "__main__":
    main()

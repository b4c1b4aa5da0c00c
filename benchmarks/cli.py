"""How quickly the command line answers: `republish --help` and a read command, next to Python starting.

    .venv/bin/python -m benchmarks.cli [--runs 5]

Targets: `--help` under 150 ms, a read command (`republish stories` on a small SQLite catalog) under
300 ms. The baselines, measured in the same run: the interpreter starting and exiting (`python -c pass`),
and the interpreter importing SQLAlchemy's ORM and nothing else (the floor of any command that reads the
database through the models).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import write_config


def seconds(command: list[str], runs: int, env: dict) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    folder = Path(tempfile.mkdtemp(prefix="republish-bench-cli-"))
    config = write_config(folder, f"sqlite:///{folder / 'cli.sqlite3'}", maildir=folder / "Maildir", outbox=folder / "o")
    cli = [sys.executable, "-m", "processor.cli"]
    subprocess.run([*cli, "--config", str(config), "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    baseline = seconds([sys.executable, "-c", "pass"], args.runs, env)
    orm = seconds([sys.executable, "-c", "import sqlalchemy.orm"], args.runs, env)
    helped = seconds([*cli, "--help"], args.runs, env)
    listed = seconds([*cli, "--config", str(config), "stories"], args.runs, env)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {args.runs} runs")
    print(f"python -c pass: {baseline * 1000:.0f} ms (baseline)")
    print(f"python -c 'import sqlalchemy.orm': {orm * 1000:.0f} ms (baseline: the floor of a read command)")
    print(f"republish --help: {helped * 1000:.0f} ms (target < 150 ms)")
    print(f"republish stories (a read command): {listed * 1000:.0f} ms (target < 300 ms)")


if __name__ == "__main__":
    main()

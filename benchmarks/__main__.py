"""Every benchmark, one after the other, each printing its figures next to the baselines of the same run.

    .venv/bin/python -m benchmarks [--quick] [--only NAME ...]

`make bench` installs what they need and runs this. `--quick` uses small sizes (a minute or two in
all, for trying the suite out); the full run takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SUITE = {
    "backfill": (["--messages", "10000", "--runs", "3"], ["--messages", "1000", "--runs", "1"]),
    "answer": (["--requests", "1000", "--runs", "3"], ["--requests", "200", "--runs", "1"]),
    "latency": (["--requests", "200"], ["--requests", "20"]),
    "memory": (["--sizes", "1000,100000"], ["--sizes", "300,3000"]),
    "catalog": ([], ["--stories", "10000", "--items", "500"]),
    "corrections": ([], ["--items", "500"]),
    "pickup_log": ([], ["--pickups", "100000"]),
    "history": ([], ["--messages", "5000", "--passes", "3"]),
    "hostile": ([], ["--sizes", "1000000", "--runs", "1"]),
    "cli": ([], ["--runs", "2"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the suite out")
    parser.add_argument("--only", nargs="+", choices=list(SUITE), help="run only these")
    args = parser.parse_args()
    failed = []
    for name in args.only or list(SUITE):
        full, quick = SUITE[name]
        command = [sys.executable, "-m", f"benchmarks.{name}", *(quick if args.quick else full)]
        print(f"\n== {name}: {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command).returncode != 0:
            failed.append(name)
        print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

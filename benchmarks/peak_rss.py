"""`republish` with its own peak resident set size (VmHWM) printed on exit.

The kernel's figure for a child (ru_maxrss) also counts the moments between fork and exec, when the
child still shares the parent's pages; VmHWM belongs to the process's own address space only.
"""

import atexit
import sys
from pathlib import Path


def _report() -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            sys.stderr.write(f"PEAK_RSS_KB {line.split()[1]}\n")


atexit.register(_report)

if __name__ == "__main__":
    from processor.cli import main

    main()

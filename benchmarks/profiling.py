"""Where the time goes: an optional pyinstrument profile around the part a benchmark measures."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def profiled(path: Path | None):
    """Profile the block into `path` (text, slowest call paths first); do nothing without a path."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        path.write_text(profiler.output_text(unicode=False, color=False))
        print(f"profile written to {path}")

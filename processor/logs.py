"""Logging for the `republish` command: one line per event, whatever an email put into it.

Subjects, names and addresses in log lines come from strangers; a CR or LF in one could
forge a log line of its own. The formatter writes control characters as escapes; the
traceback that may follow a line is ours and is left as it is.
"""

from __future__ import annotations

import logging
import sys

_ESCAPES = {code: f"\\x{code:02x}" for code in range(32) if code != 9} | {10: "\\n", 13: "\\r", 127: "\\x7f"}
# (alembic: its migration steps and, since the database modules load when a command needs them, the
# plugins it announces on import; htmldate and trafilatura: their settings and guesses, page by page)
QUIET_LIBRARIES = ("mailparser", "httpx", "httpcore", "imapclient", "alembic", "htmldate", "trafilatura")


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_ESCAPES)


def configure(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    # Library debug output can echo protocol traffic (IMAP commands, SMTP AUTH): never let it through.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)

"""Logging for the terminal: one stderr stream, with a last-resort filter against personal data.

Code never logs personal data; this filter is the belt to those braces. It masks anything shaped
like an ID number (17 digits and a check character) in every record before it is written, so a
mistake in a future log line cannot put a resident's number into the journal.
"""

from __future__ import annotations

import logging
import re
import sys

_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{4})[0-9]{10}([0-9]{3}[0-9Xx])(?![0-9Xx])")


def redact(text: str) -> str:
    """Mask ID-number-shaped runs the way the screen does: ``1101**********002X``."""
    return _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)


class RedactingFilter(logging.Filter):
    """Formats the record's message early and masks it; arguments are dropped afterwards."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

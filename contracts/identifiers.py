"""Identifiers both sides agree on (terminal ids, request ids, sites), checked with stdlib alone.

Kept apart from the pydantic models of ``contracts.mqtt`` so that the terminal can check its
config before the first screen without paying for pydantic's import there.
"""

from __future__ import annotations

import re
from typing import Final

# Terminal ids and request ids become topic levels, so MQTT's separators and wildcards (/ + #) and
# anything else a broker ACL pattern could trip over are kept out.
IDENTIFIER_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

# A site names a service centre for operations ("ruian-tangxia", or in Chinese): 1-64 printable
# characters, no control characters (it ends up in dashboards, labels and log lines).
SITE_MAX_CHARS: Final = 64
SITE_PATTERN: Final = r"[^\x00-\x1f\x7f-\x9f]{1,64}"
_SITE = re.compile(SITE_PATTERN)


class TopicError(ValueError):
    """A terminal id, request id or topic that is not part of contract version 1."""


def checked_identifier(what: str, value: str) -> str:
    # fullmatch: ``$`` alone would let a trailing newline through into a topic level.
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise TopicError(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ : - (no / + #)")
    return value


def check_terminal_id(terminal_id: str) -> str:
    """``terminal_id`` if it can be a terminal id (a topic level and the MQTT client id), else
    TopicError saying what is allowed; config loading uses this so a bad id fails at start."""
    return checked_identifier("terminal id", terminal_id)


def check_site(site: str) -> str:
    """``site`` if the status payload can carry it, else ValueError saying what is allowed."""
    if not isinstance(site, str) or not _SITE.fullmatch(site):
        raise ValueError(f"site must be 1-{SITE_MAX_CHARS} characters with no control characters")
    return site

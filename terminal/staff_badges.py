"""The staff badges that open the maintenance menu: from config, replaced by a command, kept.

``[staff] badges`` in the config file is the list a terminal starts with; the ``set_staff_badges``
command replaces it, and the new list is kept in ``staff_badges.json`` in the state directory so a
restart does not bring back a badge operations withdrew. UIDs are credentials: they are never
logged (only how many there are).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from terminal.state_file import write_atomic

log = logging.getLogger(__name__)

# ISO 14443 UIDs are 4, 7 or 10 bytes: 8, 14 or 20 hex digits.
UID_PATTERN = r"^(?:[0-9A-Fa-f]{8}|[0-9A-Fa-f]{14}|[0-9A-Fa-f]{20})$"
_UID = re.compile(UID_PATTERN)
MAX_BADGES = 500  # a county's staff, with room; a longer list is a mistake, not a roster


class BadgeListError(ValueError):
    """A badge list that cannot be used (a UID that is not 4, 7 or 10 bytes of hex, too many)."""


def normalise(uids: Iterable[str]) -> frozenset[str]:
    """Upper-case hex UIDs, checked; raises BadgeListError naming the position, never the UID."""
    checked: set[str] = set()
    for position, uid in enumerate(uids, 1):
        if not isinstance(uid, str) or not _UID.match(uid):
            raise BadgeListError(f"badge {position} is not a UID of 8, 14 or 20 hex digits")
        checked.add(uid.upper())
    if len(checked) > MAX_BADGES:
        raise BadgeListError(f"at most {MAX_BADGES} badges")
    return frozenset(checked)


class StaffBadges:
    """The current list; thread-safe (the command thread writes, the main thread reads)."""

    FILE_NAME = "staff_badges.json"

    def __init__(self, state_dir: Path, configured: Iterable[str]) -> None:
        self._path = state_dir / self.FILE_NAME
        self._lock = threading.Lock()
        self._uids = self._load(normalise(configured))

    @property
    def uids(self) -> frozenset[str]:
        with self._lock:
            return self._uids

    def replace(self, uids: Iterable[str]) -> frozenset[str]:
        """Check, keep (atomically) and use ``uids``; raises BadgeListError or OSError."""
        checked = normalise(uids)
        write_atomic(self._path, json.dumps({"badges": sorted(checked)}))
        with self._lock:
            self._uids = checked
        log.info("staff badges replaced: %d listed", len(checked))
        return checked

    def _load(self, configured: frozenset[str]) -> frozenset[str]:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return configured
        except (OSError, ValueError) as e:
            # The configured list is still a list staff set up on purpose; better than none.
            log.warning("staff badge file unreadable (%s); using the configured list",
                        type(e).__name__)
            return configured
        try:
            kept = normalise(raw["badges"]) if isinstance(raw, dict) else None
        except (BadgeListError, KeyError, TypeError):
            kept = None
        if kept is None:
            log.warning("staff badge file malformed; using the configured list")
            return configured
        return kept

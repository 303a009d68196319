"""Each heartbeat counted once though it may come twice or late: a sliding window of seen
sequence numbers, as IPsec's anti-replay window (RFC 4303 3.4.3); pure.

A heartbeat's ``seq`` grows by one per message within a boot. Several monitor instances on a
shared subscription take a terminal's messages in turn and may store them out of order, and a
QoS 1 redelivery after an instance dies brings one again. The window remembers the highest
``seq`` and which of the ``WINDOW`` before it were seen: a repeat is refused, a late one is taken
once, and one older than the window is refused as too old (counted, never silently).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

WINDOW = 64  # fits a 64-bit integer column in SQLite and PostgreSQL (as a signed value)
_MASK = (1 << WINDOW) - 1


class Verdict(enum.StrEnum):
    NEW = "new"
    REPEAT = "repeat"
    TOO_OLD = "too_old"


@dataclass(frozen=True)
class SeqWindow:
    """``top``: the highest seq seen (None: none yet); bit i of ``seen`` is seq ``top - i``."""

    top: int | None = None
    seen: int = 0

    def check(self, seq: int) -> tuple[Verdict, SeqWindow]:
        """Whether ``seq`` is new, and the window after taking it."""
        if self.top is None or seq > self.top:
            shift = WINDOW if self.top is None else min(seq - self.top, WINDOW)
            return Verdict.NEW, SeqWindow(seq, ((self.seen << shift) | 1) & _MASK)
        back = self.top - seq
        if back >= WINDOW:
            return Verdict.TOO_OLD, self
        if self.seen >> back & 1:
            return Verdict.REPEAT, self
        return Verdict.NEW, SeqWindow(self.top, self.seen | 1 << back)

    def stored(self) -> int:
        """``seen`` as a signed 64-bit integer, for a database column."""
        return self.seen - (1 << WINDOW) if self.seen >> (WINDOW - 1) else self.seen

    @classmethod
    def from_stored(cls, top: int | None, stored: int) -> SeqWindow:
        return cls(top, stored & _MASK)

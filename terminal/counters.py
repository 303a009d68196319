"""Today's operations counters for the heartbeat, counted from the flows' operations events."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from contracts.rating import RatingLevel
from flows.event_names import EventType
from flows.steps import RecordEvent

# The heartbeat's keys, "1" to "5" (contracts.rating is stdlib only: importing it does not bring
# the MQTT contract's pydantic onto the path to the first screen).
RATING_LEVELS = tuple(level.wire for level in sorted(RatingLevel))


class DailyCounters:
    """Sessions, completed errands, receipts and ratings by level since local midnight.

    Thread-safe: events are counted on the effect worker, read by the telemetry thread.
    """

    def __init__(self, today: Callable[[], dt.date]) -> None:
        self._today = today
        self._lock = threading.Lock()
        self._day = today()
        self._reset()

    def _reset(self) -> None:
        self.sessions = 0
        self.completed_errands = 0
        self.receipts = 0
        self.ratings = dict.fromkeys(RATING_LEVELS, 0)

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day = day
            self._reset()

    def count(self, event: RecordEvent) -> None:
        with self._lock:
            self._roll()
            match event.type:
                case EventType.SESSION_STARTED:
                    self.sessions += 1
                case EventType.MAINTENANCE_ENTERED:
                    # The card read that opened it started a session: staff are no resident.
                    self.sessions = max(0, self.sessions - 1)
                case EventType.ERRAND_COMPLETED:
                    self.completed_errands += 1
                case EventType.RECEIPT_PRINTED:
                    self.receipts += 1
                case EventType.RATING_SUBMITTED:
                    level = str(event.fields.get("level", ""))
                    if level in self.ratings:
                        self.ratings[level] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            self._roll()
            return {
                "sessions": self.sessions,
                "completed_errands": self.completed_errands,
                "receipts": self.receipts,
                "ratings": dict(self.ratings),
            }

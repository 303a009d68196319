"""Time for the flows: the Clock protocol, the system clock, and a fake clock for tests."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol
from zoneinfo import ZoneInfo

# Printed times are local civil time. The terminal passes its configured zone; this is the default
# because every terminal of this product stands in mainland China (one zone, no daylight saving).
CHINA_ZONE = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """Where flows get time from: never from ``time`` or ``datetime`` directly."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never jumps. For timeouts and countdowns."""
        ...

    def now(self) -> dt.datetime:
        """Wall time, timezone-aware. For printed times and timestamps only, never for timeouts."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic`` and the current UTC time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FakeClock:
    """A clock that moves only when told to, so flows can be walked second by second in tests."""

    DEFAULT_START = dt.datetime(2025, 3, 14, 1, 30, tzinfo=dt.UTC)  # 09:30 in Beijing

    def __init__(self, now: dt.datetime | None = None, *, monotonic: float = 1000.0) -> None:
        self._now = _aware(now if now is not None else self.DEFAULT_START)
        self._monotonic = float(monotonic)

    def monotonic(self) -> float:
        return self._monotonic

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: both the monotonic and the wall clock move on."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards; use set() to step the wall clock")
        self._monotonic += seconds
        self._now += dt.timedelta(seconds=seconds)

    def set(self, now: dt.datetime) -> None:
        """Step the wall clock (as NTP may), leaving the monotonic clock where it is."""
        self._now = _aware(now)


def _aware(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        # A naive time would be printed in whatever zone the test machine happens to be in.
        raise ValueError("the clock needs a timezone-aware datetime")
    return when

"""Debouncing a switch: a new level counts once it has held for a settle time."""


class Debouncer:
    """A switch's stable level from raw samples; time is handed in (``now_ms``, never wraps)."""

    def __init__(self, level: int, settle_ms: int) -> None:
        self.level = level  # the stable level, what the rest of the firmware believes
        self._settle_ms = settle_ms
        self._candidate = level
        self._since_ms = 0

    def update(self, raw: int, now_ms: int) -> bool:
        """Feed one sample; True when the stable level has just changed."""
        if raw != self._candidate:
            # A bounce or the start of a real change: start timing the new level from here.
            self._candidate = raw
            self._since_ms = now_ms
            return False
        if raw != self.level and now_ms - self._since_ms >= self._settle_ms:
            self.level = raw
            return True
        return False

"""The host watchdog: cut the Pi's power when the terminal stops kicking (never in the grace)."""

IDLE = 0  # nothing to do
CUT = 1  # drive the relay to cut the power now
RESTORE = 2  # power back on now

KICK_TIMEOUT = "kick_timeout"


class HostWatchdog:
    """Times in ms since the board's boot (``now_ms`` from the caller, never wraps).

    The deadline is ``max(grace_end, last_kick) + timeout``: no kick for ``timeout`` counted from
    the end of the grace time at the earliest. The grace starts at the board's boot and again when
    the power comes back after a cut, because the Pi then boots from scratch.
    """

    def __init__(self, timeout_ms: int, grace_ms: int, power_off_ms: int, now_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.grace_ms = grace_ms
        self.power_off_ms = power_off_ms
        self.power_cycles = 0
        self.last_cause = ""
        self.cutting = False
        self._powered_at_ms = now_ms
        self._last_kick_ms = -1  # none since the power came on
        self._cut_at_ms = 0

    def configure(self, timeout_ms: int, grace_ms: int, power_off_ms: int) -> None:
        self.timeout_ms, self.grace_ms, self.power_off_ms = timeout_ms, grace_ms, power_off_ms

    def kick(self, now_ms: int) -> None:
        if not self.cutting:
            self._last_kick_ms = now_ms

    def deadline_ms(self) -> int:
        grace_end = self._powered_at_ms + self.grace_ms
        return max(grace_end, self._last_kick_ms) + self.timeout_ms

    def grace_left_ms(self, now_ms: int) -> int:
        return max(0, self._powered_at_ms + self.grace_ms - now_ms)

    def update(self, now_ms: int) -> int:
        """Look at the time; returns IDLE, CUT or RESTORE (what to do with the relay now)."""
        if self.cutting:
            if now_ms - self._cut_at_ms >= self.power_off_ms:
                self.cutting = False
                self._powered_at_ms = now_ms  # the Pi boots again: a new grace time
                self._last_kick_ms = -1
                return RESTORE
            return IDLE
        if now_ms >= self.deadline_ms():
            self.cutting = True
            self._cut_at_ms = now_ms
            self.power_cycles += 1
            self.last_cause = KICK_TIMEOUT
            return CUT
        return IDLE

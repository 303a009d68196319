"""Status light patterns: what the one lamp shows for ok, attention, fault and maintenance."""

# Each pattern is on/off durations in ms, repeated; a pattern of one entry is steady. Told apart by
# rhythm, not colour, so a single-colour lamp (or a colour-blind engineer) can read them.
PATTERNS: dict[str, tuple[int, ...]] = {
    "off": (0,),
    "ok": (1,),  # steady on
    "attention": (500, 500),  # slow blink
    "fault": (100, 100),  # fast blink
    "maintenance": (100, 150, 100, 650),  # double blink
}


class Light:
    """The lamp's level at a given time for the current pattern."""

    def __init__(self, pattern: str = "ok") -> None:
        self.pattern = pattern
        self._started_ms = 0

    def set(self, pattern: str, now_ms: int) -> bool:
        """Switch pattern; False (and no change) for a pattern this firmware does not know."""
        if pattern not in PATTERNS:
            return False
        if pattern != self.pattern:
            self.pattern = pattern
            self._started_ms = now_ms
        return True

    def level(self, now_ms: int) -> int:
        steps = PATTERNS[self.pattern]
        if len(steps) == 1:
            return 1 if steps[0] else 0
        t = (now_ms - self._started_ms) % sum(steps)
        for index, duration in enumerate(steps):
            if t < duration:
                return 1 if index % 2 == 0 else 0
            t -= duration
        return 0

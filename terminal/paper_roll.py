"""The paper-low estimate: receipts printed since the roll was last refilled, kept on disk."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from devices.base import DeviceState, Health
from terminal.state_file import write_atomic

log = logging.getLogger(__name__)

# The printer's DeviceState reason while the estimate says the roll is nearly used up. Distinct
# from the sensor's paper_near_end, so staff and the fleet can tell a count from a measurement.
PAPER_LOW_ESTIMATED = "paper_low_estimated"


class PaperRoll:
    """Counts receipts since the last refill, so a printer without a near-end sensor still warns.

    Many kiosk printers ship without the near-end sensor fitted; the terminal then estimates from
    the receipts a full roll holds (``capacity``, 0: not counted). ``low`` once ``count`` reaches
    ``low_at`` of it. Every change is written at once (one small file, replaced whole) so a power
    cut loses at most the receipt being printed. Thread-safe: receipts are counted on the effect
    worker, refills come from the maintenance lane, heartbeats read from the monitor's thread.
    """

    def __init__(self, path: Path, capacity: int, *, low_at: float = 0.9) -> None:
        if capacity < 0:
            raise ValueError("capacity must be 0 (not counted) or more receipts")
        if not 0 < low_at <= 1:
            raise ValueError("low_at must be in (0, 1]")
        self._path = path
        self._capacity = capacity
        self._low_at = low_at
        self._lock = threading.Lock()
        self._count = self._load()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def low(self) -> bool:
        with self._lock:
            return self._is_low(self._count)

    def printed(self, receipts: int = 1) -> int:
        """Count ``receipts`` more off the roll (a test print too: it uses paper); the new count."""
        if receipts < 0:
            raise ValueError("receipts must not be negative")
        with self._lock:
            self._count += receipts
            self._save(self._count)
            return self._count

    def refilled(self) -> None:
        """A new roll is in: the count starts again from 0."""
        with self._lock:
            self._count = 0
            self._save(0)
        log.info("paper roll refilled; receipt count reset")

    def with_estimate(self, state: DeviceState) -> DeviceState:
        """The printer's ``state`` with the estimate folded in: an ok printer on a roll that is
        nearly used up reads degraded ``paper_low_estimated``; whatever the printer itself reports
        (a fault, or its own sensor's near end) wins, being measured rather than guessed."""
        if state.health is Health.OK and self.low:
            return DeviceState.degraded(PAPER_LOW_ESTIMATED)
        return state

    # --- internals -----------------------------------------------------------------------------

    def _is_low(self, count: int) -> bool:
        return self._capacity > 0 and count >= self._low_at * self._capacity

    def _load(self) -> int:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            log.info("paper roll count %s not found; counting from 0", self._path)
            return 0
        except OSError as e:
            log.warning("paper roll count %s unreadable (%s); counting from 0",
                        self._path, e.strerror)
            return 0
        try:
            value = json.loads(text)["printed"]
        except (ValueError, KeyError, TypeError):
            value = None
        # bool is an int too; a hand-edited true must not read as 1 receipt.
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            # Starting at 0 may hide a low roll until the next refill, but guessing any other
            # number would be no better; the technician sees the count on the status page.
            log.warning("paper roll count %s is corrupt; counting from 0", self._path)
            return 0
        return value

    def _save(self, count: int) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path, json.dumps({"printed": count}) + "\n")
        except OSError as e:
            # The count in memory stays right until a restart; a full disk shows in the heartbeat
            # as the storage's own fault.
            log.warning("could not save the paper roll count to %s: %s", self._path, e.strerror)

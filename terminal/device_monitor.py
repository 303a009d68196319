"""Polls every device's state in the background so heartbeats read it without touching a wire."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from devices.base import DeviceState

log = logging.getLogger(__name__)

Probe = Callable[[], DeviceState]


class DeviceMonitor:
    """Keeps the last state of each device; calls ``on_change`` when any of them changes.

    Probes run one after another on one daemon thread; each probe has its own timeout inside its
    driver, so a silent printer delays the next poll by that timeout and nothing more.
    """

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        interval_s: float = 10.0,
        on_change: Callable[[str, DeviceState], None] | None = None,
    ) -> None:
        self._probes = dict(probes)
        self._interval_s = interval_s
        self._on_change = on_change
        self._states: dict[str, DeviceState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.polled = threading.Event()  # set once every device has been asked at least once

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="device-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def report(self, name: str, state: DeviceState) -> None:
        """Record a state learnt elsewhere (by a job) without waiting for the next poll."""
        with self._lock:
            previous = self._states.get(name)
            self._states[name] = state
        if previous != state and self._on_change is not None:
            self._on_change(name, state)

    def states(self) -> dict[str, DeviceState]:
        with self._lock:
            return dict(self._states)

    def poll_once(self) -> None:
        for name, probe in self._probes.items():
            try:
                state = probe()
            except Exception:  # a probe bug reads as a fault, never as a dead monitor
                log.exception("probing %s failed", name)
                state = DeviceState.fault("probe_error")
            self.report(name, state)
        self.polled.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._wake.wait(self._interval_s)
            self._wake.clear()

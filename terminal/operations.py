"""The terminal's link to operations: today's counters, and MQTT telemetry brought up off the path
to the first screen.

Importing pydantic's models and paho costs about 150 ms, a quarter of start-up, and nothing on the
attract screen needs them; the link starts the telemetry agent on its own thread once the first
screen is up. Events recorded before the agent exists wait in memory, in order, and go to its
outbox as soon as it does, so nothing is lost.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devices.base import DeviceState, Health
from flows.steps import RecordEvent
from terminal.config import Config
from terminal.counters import DailyCounters
from terminal.outbox import Outbox

if TYPE_CHECKING:
    from contracts.mqtt import TerminalState
    from terminal.telemetry import TelemetryAgent

log = logging.getLogger(__name__)

EARLY_EVENTS_MAX = 1000  # a bound, not an expectation: only start-up events wait here


def version() -> str:
    try:
        return importlib.metadata.version("civic-kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def terminal_state(in_session: bool, devices: dict[str, DeviceState]) -> TerminalState:
    """The heartbeat's one-word summary: without a card reader nothing can be done at all."""
    if in_session:
        return "in_session"
    reader = devices.get("card_reader")
    if reader is not None and reader.health is Health.FAULT:
        return "out_of_service"
    if any(state.health is not Health.OK for state in devices.values()):
        return "degraded"
    return "idle"


class OperationsLink:
    """Counts every operations event and hands it to telemetry (when MQTT is on)."""

    def __init__(
        self,
        config: Config,
        *,
        outbox: Outbox,
        counters: DailyCounters,
        devices: Callable[[], dict[str, DeviceState]],
        in_session: Callable[[], bool],
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._counters = counters
        self._devices = devices
        self._in_session = in_session
        self._lock = threading.Lock()
        self._agent: TelemetryAgent | None = None
        self._early: list[RecordEvent] | None = [] if config.mqtt.enabled else None
        self._stopped = False

    # --- what the terminal calls ---------------------------------------------------------------

    def record(self, event: RecordEvent) -> None:
        """From any thread: count the event, and send it (or keep it until the agent is up)."""
        self._counters.count(event)
        with self._lock:
            agent = self._agent
            if agent is None:
                if self._early is not None and len(self._early) < EARLY_EVENTS_MAX:
                    self._early.append(event)
                return
        agent.record(event)

    def device_changed(self, name: str, state: DeviceState) -> None:
        # The reason is a device code (paper_out), never personal data.
        log.info("device %s is now %s %s", name, state.health, state.reason)
        if state.health is not Health.OK:
            severity = "critical" if state.health is Health.FAULT else "warning"
            self.record(RecordEvent("device_fault", severity,
                                    {"device": name, "reason": state.reason or "unknown"}))
        with self._lock:
            agent = self._agent
        if agent is not None:
            agent.heartbeat_now()  # so the fault shows in the very next heartbeat

    def start(self, after: threading.Event | None = None, wait_s: float = 5.0) -> None:
        """Bring telemetry up on its own thread; returns at once.

        With ``after``, the agent waits (at most ``wait_s``) for it first: the device monitor's
        first poll, so the birth's first heartbeat already reports every device.
        """
        if self._config.mqtt.enabled:
            threading.Thread(target=self._start_agent, args=(after, wait_s),
                             name="telemetry-start", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            agent = self._agent
        if agent is not None:
            agent.stop()

    # --- the agent -----------------------------------------------------------------------------

    def _start_agent(self, after: threading.Event | None, wait_s: float) -> None:
        if after is not None:
            after.wait(wait_s)
        try:
            agent = self._build_agent()
            agent.start()
        except Exception:  # the terminal serves residents without telemetry; say so loudly
            log.exception("telemetry could not start; the terminal goes on without it")
            return
        with self._lock:
            if self._stopped:
                early: list[RecordEvent] = []
            else:
                self._agent = agent
                early, self._early = self._early or [], None
        if self._stopped:
            agent.stop()
            return
        for event in early:
            agent.record(event)

    def _build_agent(self) -> TelemetryAgent:
        # Imported here, off the main thread: see the module docstring.
        from terminal.mqtt_link import BrokerSettings  # noqa: PLC0415
        from terminal.telemetry import TelemetryAgent, TerminalSnapshot  # noqa: PLC0415

        mqtt = self._config.mqtt

        def snapshot() -> TerminalSnapshot:
            devices = self._devices()
            state = terminal_state(self._in_session(), devices)
            return TerminalSnapshot(state, devices, self._counters.snapshot())

        return TelemetryAgent(
            terminal_id=self._config.terminal.terminal_id,
            site=self._config.terminal.site,
            version=version(),
            broker=BrokerSettings(
                host=mqtt.host,
                port=mqtt.port,
                username=mqtt.username or None,
                password=mqtt.password or None,
                ca_file=mqtt.ca_file,
                cert_file=mqtt.cert_file,
                key_file=mqtt.key_file,
            ),
            state_dir=Path(self._config.terminal.state_dir),
            snapshot=snapshot,
            interval_s=self._config.mqtt.heartbeat_interval_s,
            outbox=self._outbox,
        )

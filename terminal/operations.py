"""The terminal's link to operations: today's counters, and MQTT telemetry brought up off the path
to the first screen.

Importing pydantic's models and paho costs about 150 ms, a quarter of start-up, and nothing on the
attract screen needs them; the link starts the telemetry agent on its own thread once the first
screen is up, and tries again with backoff if it cannot (a missing certificate, say). Events
recorded before the agent exists are written to the outbox at once, as plain records, and handed
to the agent in order when it is up, so nothing is lost, not even to a power cut. They are screened
for personal data when they are recorded, as the agent screens its own, so nothing personal rests
on disk even for those few moments.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.personal import screen_event_fields
from devices.base import DeviceState, Health
from flows.event_names import EventType
from flows.steps import RecordEvent
from terminal.config import Config
from terminal.counters import DailyCounters
from terminal.outbox import Outbox, OutboxUnavailable

if TYPE_CHECKING:
    from contracts.mqtt import TerminalState
    from terminal.telemetry import TelemetryAgent

log = logging.getLogger(__name__)

EARLY_KIND = "event_early"  # outbox kind of events recorded before the agent was up
RETRY_MIN_S = 5.0
RETRY_MAX_S = 300.0


def version() -> str:
    # Imported here: version() runs after the first screen, importlib.metadata costs ~5 ms before.
    import importlib.metadata  # noqa: PLC0415

    try:
        return importlib.metadata.version("civic-kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def terminal_state(
    in_session: bool, devices: dict[str, DeviceState], *, maintenance: bool = False
) -> TerminalState:
    """The heartbeat's one-word summary: without a card reader nothing can be done at all."""
    if maintenance:  # staff are at the cabinet: whatever else is wrong, they are on it
        return "maintenance"
    if in_session:
        return "in_session"
    reader = devices.get("card_reader")
    if reader is not None and reader.health is Health.FAULT:
        return "out_of_service"
    if any(state.health is not Health.OK for state in devices.values()):
        return "degraded"
    return "idle"


PAPER_LOW_REASONS = frozenset({"paper_near_end", "paper_low_estimated"})


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
        in_maintenance: Callable[[], bool] = lambda: False,
    ) -> None:
        self._config = config
        self._in_maintenance = in_maintenance
        self._outbox = outbox
        self._counters = counters
        self._devices = devices
        self._in_session = in_session
        self._lock = threading.Lock()
        self._agent: TelemetryAgent | None = None
        self._stopped = threading.Event()
        # Registers the terminal's own features' commands (help_ack) on the agent once built.
        self._command_setups: list[Callable[[TelemetryAgent], None]] = []

    # --- what the terminal calls ---------------------------------------------------------------

    def record(self, event: RecordEvent) -> None:
        """From any thread: count the event, and send it (or store it until the agent is up)."""
        self._counters.count(event)
        if not self._config.mqtt.enabled:
            return
        with self._lock:
            agent = self._agent
            if agent is None:
                self._store_early(event)
                return
        agent.record(event)

    def add_commands(self, setup: Callable[[TelemetryAgent], None]) -> None:
        """``setup(agent)`` registers commands (TelemetryAgent.register_command) once telemetry
        is built, off the main thread: their pydantic models stay off the path to the first
        screen. Call before ``start``."""
        self._command_setups.append(setup)

    def _store_early(self, event: RecordEvent) -> None:
        screened = screen_event_fields(event.fields)
        for problem in screened.problems:
            log.warning("event %s: dropped a field: %s", event.type, problem)
        record = {"type": event.type, "severity": event.severity,
                  "fields": screened.with_dropped_count()}
        try:
            self._outbox.put(EARLY_KIND, json.dumps(record, ensure_ascii=False))
        except OutboxUnavailable as e:
            log.error("event %s lost: %s", event.type, e)

    def device_changed(self, name: str, state: DeviceState) -> None:
        # The reason is a device code (paper_out), never personal data.
        log.info("device %s is now %s %s", name, state.health, state.reason)
        if state.health is not Health.OK:
            severity = "critical" if state.health is Health.FAULT else "warning"
            self.record(RecordEvent(EventType.DEVICE_FAULT, severity,
                                    {"device": name, "reason": state.reason or "unknown"}))
            # The paper's own events, which the fleet side names (DESIGN 6): someone must bring
            # a roll, whatever the printer calls it.
            if name == "printer" and state.reason in PAPER_LOW_REASONS:
                self.record(RecordEvent(EventType.PAPER_LOW, "warning",
                                        {"reason": state.reason}))
            elif name == "printer" and state.reason == "paper_out":
                self.record(RecordEvent(EventType.PAPER_OUT, "critical"))
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
        self._stopped.set()
        with self._lock:
            agent = self._agent
        if agent is not None:
            agent.stop()

    # --- the agent -----------------------------------------------------------------------------

    def _start_agent(self, after: threading.Event | None, wait_s: float) -> None:
        if after is not None:
            after.wait(wait_s)
        delay = RETRY_MIN_S
        while not self._stopped.is_set():
            try:
                agent = self._build_agent()
                agent.start()
                break
            except Exception:  # the terminal serves residents without telemetry; say so loudly
                log.exception("telemetry could not start; trying again in %.0f s", delay)
                if self._stopped.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX_S)
        else:
            return
        # Hand over what was stored meanwhile, in order; record() keeps storing until the agent
        # is published, so the last stragglers are handed over under the lock.
        self._replay_early(agent)
        with self._lock:
            self._replay_early(agent)
            self._agent = agent
        if self._stopped.is_set():
            agent.stop()
            return
        # Early events the outbox could only hold in memory (a full disk at start) are stored,
        # and so can be handed over, only once the storage takes writes again.
        while self._outbox.count(EARLY_KIND) and not self._stopped.wait(RETRY_MIN_S):
            self._replay_early(agent)

    def _replay_early(self, agent: TelemetryAgent) -> None:
        while items := self._outbox.pending(EARLY_KIND):
            for item in items:
                try:
                    record = json.loads(item.payload_json)
                    agent.record(RecordEvent(EventType(record["type"]), record["severity"],
                                             record["fields"]))
                except (KeyError, TypeError, ValueError):
                    log.warning("dropping unreadable early event %d", item.id)
                self._outbox.mark_done(item.id)

    def _build_agent(self) -> TelemetryAgent:
        # Imported here, off the main thread: see the module docstring.
        from terminal.mqtt_link import BrokerSettings  # noqa: PLC0415
        from terminal.telemetry import TelemetryAgent, TerminalSnapshot  # noqa: PLC0415

        mqtt = self._config.mqtt

        def snapshot() -> TerminalSnapshot:
            devices = self._devices()
            state = terminal_state(self._in_session(), devices,
                                   maintenance=self._in_maintenance())
            return TerminalSnapshot(state, devices, self._counters.snapshot())

        agent = TelemetryAgent(
            terminal_id=self._config.terminal.terminal_id,
            site=self._config.terminal.site,
            version=version(),
            broker=BrokerSettings(
                host=mqtt.host,
                port=mqtt.port,
                username=mqtt.username or None,
                password=mqtt.password or None,
                tls=mqtt.tls,
                ca_file=mqtt.ca_file,
                cert_file=mqtt.cert_file,
                key_file=mqtt.key_file,
            ),
            state_dir=Path(self._config.terminal.state_dir),
            snapshot=snapshot,
            interval_s=self._config.mqtt.heartbeat_interval_s,
            outbox=self._outbox,
        )
        for setup in self._command_setups:
            setup(agent)
        return agent

"""The terminal's telemetry agent: status, heartbeats, events and commands over MQTT (DESIGN 6).

Threads: paho's network thread (connect, reconnect, birth, Will), one ``telemetry`` thread
(heartbeats, sending the event outbox, noticing acknowledgements) and one ``commands`` thread
(commands run one at a time, off the network thread so a slow one never stalls keepalives).
The public calls (``record_event``, ``heartbeat_now``, ``register_command``) only write a
row or set a flag, so they stay fast whether or not the broker is reachable.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import TopicError
from contracts.mqtt import (
    SEVERITIES,
    TERMINAL_STATES,
    Counters,
    DeviceReport,
    EventPayload,
    HeartbeatPayload,
    StatusPayload,
    TerminalState,
    command_filter,
    encode,
    event_topic,
    heartbeat_topic,
    is_code,
    parse_topic,
    status_topic,
    utc_now,
)
from contracts.personal import EventValue, screen_event_fields
from devices.base import DeviceState
from terminal.command_intake import CommandIntake
from terminal.commands import (
    INTERRUPTED,
    A,
    CommandDispatcher,
    CommandError,
    CommandResult,
    NoArgs,
)
from terminal.mqtt_link import BrokerSettings, Delivery, InboundMessage, LastWill, MqttLink
from terminal.outbox import Outbox, OutboxUnavailable
from terminal.state_file import write_atomic
from terminal.system_figures import SystemProbe

# INTERRUPTED, CommandError, CommandResult and NoArgs live in terminal.commands; they are
# re-exported because command handlers and the tests import them from here.
__all__ = [
    "INTERRUPTED",
    "CommandError",
    "CommandResult",
    "EventLike",
    "NoArgs",
    "SetHeartbeatIntervalArgs",
    "TelemetryAgent",
    "TerminalSnapshot",
]

log = logging.getLogger(__name__)

EVENT_KIND = "event"
EVENT_WINDOW = 20  # events in flight at once; paho sends them in order on one connection
STALE_DELIVERY_S = 10.0  # how long a reconnect waits for paho to re-send earlier events
# Commands received and not yet handled; beyond this a command is rejected "busy" at once. A
# broker's in-flight window should keep the queue short, but mosquitto 2.0 was seen sending a
# burst of thousands unacknowledged, so the terminal does not rely on it.
COMMAND_QUEUE_MAX = 64
STOP_ACK_WAIT_S = 1.0

_NON_CODE = re.compile(r"[^a-z0-9_]+")


# --- what the terminal tells the agent -----------------------------------------------------------


@dataclass(frozen=True)
class TerminalSnapshot:
    """What a heartbeat reports about the terminal, read fresh for every heartbeat.

    ``counters`` is a ``Counters`` or the mapping ``DailyCounters.snapshot()`` returns.
    """

    state: TerminalState
    devices: Mapping[str, DeviceState]
    counters: Counters | Mapping[str, object]


class EventLike(Protocol):
    """Anything shaped like ``flows.steps.RecordEvent``; lets the agent serve as an EventSink."""

    @property
    def type(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, str | int | float | bool]: ...


class SetHeartbeatIntervalArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    interval_s: int = Field(ge=5, le=3600)


# --- small persistent state ----------------------------------------------------------------------


class _BirthDeathSequence:
    """``bdseq``: +1 for every CONNECT sent, persisted before the broker can see it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._value = self._load()

    def _load(self) -> int:
        try:
            return int(self._path.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError):
            # Unreadable: jump ahead to the clock so the sequence still only grows (a reused
            # bdseq would let the fleet pair a new birth with an old Will).
            log.warning("bdseq file %s unreadable; continuing from the clock", self._path)
            return int(time.time())

    @property
    def value(self) -> int:
        return self._value

    def advance(self) -> int:
        self._value += 1
        try:
            write_atomic(self._path, f"{self._value}\n")
        except OSError:
            log.exception("could not persist bdseq to %s", self._path)
        return self._value


def _as_code(text: str, fallback: str) -> str:
    """A device name or reason as the contract's lower-case code, whatever a driver handed us."""
    code = _NON_CODE.sub("_", text.strip().lower()).strip("_")[:64]
    return code if is_code(code) else fallback


# --- the agent -----------------------------------------------------------------------------------


class TelemetryAgent:
    """Publishes the terminal's status, heartbeats and events, and runs commands, per DESIGN 6.

    ``snapshot`` is called on the telemetry thread, so it must be thread-safe and quick (read
    cached device states, never probe a device). Nothing here blocks on the broker: while it is
    down, events wait in the outbox and heartbeats are skipped; the link reconnects by itself.
    """

    def __init__(
        self,
        *,
        terminal_id: str,
        site: str,
        version: str,
        broker: BrokerSettings,
        state_dir: Path,
        snapshot: Callable[[], TerminalSnapshot],
        interval_s: float = 30.0,
        outbox: Outbox | None = None,
        command_queue_max: int = COMMAND_QUEUE_MAX,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be above 0")
        self._terminal_id = terminal_id
        self._site = site
        self._version = version
        self._snapshot = snapshot
        self._interval_s = float(interval_s)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._own_outbox = outbox is None
        self._outbox = outbox if outbox is not None else Outbox(state_dir / "outbox.sqlite3")
        self._bdseq = _BirthDeathSequence(state_dir / "mqtt_bdseq")
        self._commands = CommandDispatcher(
            state_dir / "commands.sqlite3",
            # The intake is built below, with the link it sends through.
            lambda request_id, ack_json: self._intake.send_ack(request_id, ack_json),  # noqa: PLW0108
        )
        self._system = SystemProbe(state_dir)

        self.boot_id = str(uuid.uuid4())
        self.started_at = utc_now()
        self._started_monotonic = time.monotonic()
        self._heartbeat_seq = 0
        self._last_snapshot: TerminalSnapshot | None = None

        # Topics are built (and the terminal id checked) once, up front.
        self._status_topic = status_topic(terminal_id)
        self._heartbeat_topic = heartbeat_topic(terminal_id)
        self._event_topic = event_topic(terminal_id)
        self._command_filter = command_filter(terminal_id)

        self.register_command("ping", NoArgs, lambda _args: {"pong": True})
        self.register_command(
            "set_heartbeat_interval", SetHeartbeatIntervalArgs, self._set_heartbeat_interval
        )

        self._wake = threading.Condition()
        self._stopping = False
        self._heartbeat_due = False
        self._acknowledged = False  # the broker acknowledged a publish since the last round
        self._connected_at = 0.0
        self._inflight: dict[int, Delivery] = {}  # outbox item id -> its publish
        self._threads: list[threading.Thread] = []

        self._link = MqttLink(
            terminal_id,
            broker,
            will=self._next_will,
            on_connect=self._on_connect,
            on_published=self._on_published,
            on_message=self._on_message,
        )
        self._intake = CommandIntake(terminal_id, self._link, self._commands,
                                     capacity=command_queue_max)

    # --- public API ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def bdseq(self) -> int:
        """The bdseq of the current (or last) connection."""
        return self._bdseq.value

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def start(self) -> None:
        """Start connecting and the agent's threads; returns at once."""
        if self._threads:
            return
        # paho queues these QoS 1 acks until the first connection.
        self._commands.fail_unfinished()
        self._link.subscribe(self._command_filter, qos=1)
        self._threads = [
            threading.Thread(target=self._telemetry_loop, name="telemetry", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._intake.start()
        self._link.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Clean shutdown: say ``online: false`` ourselves, then disconnect (no Will is sent).

        Bounded by about ``timeout_s``; with the broker down the retained status already reads
        offline (the broker published our Will when the connection died).
        """
        deadline = time.monotonic() + timeout_s
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._intake.stop(max(0.1, deadline - time.monotonic() - STOP_ACK_WAIT_S))
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic() - STOP_ACK_WAIT_S))
        if self._link.connected:
            goodbye = self._link.publish(
                self._status_topic, encode(self._status(online=False)), qos=1, retain=True
            )
            if not goodbye.wait(min(STOP_ACK_WAIT_S, max(0.1, deadline - time.monotonic()))):
                log.warning("broker did not acknowledge the offline status before shutdown")
        self._link.stop(max(0.1, deadline - time.monotonic()))
        self._commands.close()
        if self._own_outbox:
            self._outbox.close()

    def heartbeat_now(self) -> None:
        """Send a heartbeat soon rather than at the next interval (a device state changed)."""
        with self._wake:
            self._heartbeat_due = True
            self._wake.notify_all()

    def record_event(self, type: str, severity: str = "info", **fields: EventValue) -> int | None:
        """Store an event in the outbox and send it when connected; return its seq.

        ``type`` and ``severity`` are the caller's constants: a bad one raises ValueError. Fields
        are data, so a field that looks personal (a name-like key, an ID-, card- or phone-number-
        shaped value, Chinese free text) or is not a scalar is dropped, never sent, and counted in
        ``dropped_fields``; the log names the field, never its value. Returns None when the event
        is held in memory because the storage refuses writes (the outbox reports that fault in
        the heartbeat, and stores and sends the event once it can) or could not even be held.
        """
        if not is_code(type):
            raise ValueError("event type must be a lower-case code such as 'paper_out'")
        if severity not in SEVERITIES:
            raise ValueError("event severity must be info, warning or critical")
        screened = screen_event_fields(fields)
        for problem in screened.problems:
            # The problem text names the field (only once it is a plain code), never its value.
            log.warning("event %s: dropped a field: %s", type, problem)
        kept = screened.with_dropped_count()

        def build(seq: int) -> str:
            event = EventPayload.model_validate(
                {"seq": seq, "type": type, "severity": severity, **kept}
            )
            return encode(event).decode("utf-8")

        try:
            item = self._outbox.put_numbered(EVENT_KIND, build)
        except OutboxUnavailable as e:
            log.error("event %s lost: %s", type, e)
            return None
        if item is None:
            return None
        with self._wake:
            self._wake.notify_all()
        return item.seq

    def record(self, event: EventLike) -> None:
        """EventSink for the effect runner: a flow's RecordEvent."""
        self.record_event(event.type, event.severity, **dict(event.fields))

    def register_command(
        self, name: str, args_model: type[A], handler: Callable[[A], CommandResult]
    ) -> None:
        """Accept command ``name``; ``args`` are validated with ``args_model`` before ``handler``
        runs (on the commands thread). The handler returns the result mapping (or None) or raises
        CommandError."""
        self._commands.register(name, args_model, handler)

    # --- status and Will (network thread) --------------------------------------------------------

    def _status(self, *, online: bool) -> StatusPayload:
        return StatusPayload(
            online=online,
            bdseq=self._bdseq.value,
            boot_id=self.boot_id,
            version=self._version,
            site=self._site,
            started_at=self.started_at,
        )

    def _next_will(self) -> LastWill:
        # Runs right before each CONNECT: this connection's bdseq, in its Will and, once
        # connected, in its birth. paho keeps the Will of the previous connection otherwise.
        self._bdseq.advance()
        return LastWill(self._status_topic, encode(self._status(online=False)), qos=1, retain=True)

    def _on_connect(self) -> None:
        self._link.publish(self._status_topic, encode(self._status(online=True)), qos=1,
                           retain=True)
        with self._wake:
            self._connected_at = time.monotonic()
            self._heartbeat_due = True  # the fleet sees state and devices right after the birth
            self._wake.notify_all()

    def _on_published(self) -> None:
        # Network thread: an event may now leave the outbox, and the next may go out.
        with self._wake:
            self._acknowledged = True
            self._wake.notify_all()

    # --- heartbeats and events (telemetry thread) ------------------------------------------------

    def _telemetry_loop(self) -> None:
        next_due = time.monotonic()
        while True:
            with self._wake:
                if self._stopping:
                    return
                due_now = self._heartbeat_due or time.monotonic() >= next_due
                self._heartbeat_due = self._acknowledged = False
            try:
                if due_now:
                    self._send_heartbeat()
                    next_due = time.monotonic() + self._interval_s
                self._pump_events()
            except Exception:  # the telemetry thread must outlive any bug in one round
                log.exception("telemetry round failed")
            with self._wake:
                if self._stopping or self._heartbeat_due or self._acknowledged:
                    continue
                wait = max(0.0, next_due - time.monotonic())
                if any(d.connection != self._link.connection for d in self._inflight.values()):
                    # Events of an earlier connection are given up on at this deadline.
                    stale_at = self._connected_at + STALE_DELIVERY_S
                    wait = min(wait, max(0.0, stale_at - time.monotonic()))
                self._wake.wait(wait)

    def _read_snapshot(self) -> TerminalSnapshot:
        try:
            snapshot = self._snapshot()
            self._last_snapshot = snapshot
            return snapshot
        except Exception:
            log.exception("terminal snapshot failed; reporting degraded")
            last = self._last_snapshot
            return TerminalSnapshot(
                state="degraded",
                devices=last.devices if last else {},
                counters=last.counters if last else Counters.zero(),
            )

    def _heartbeat(self) -> HeartbeatPayload:
        snapshot = self._read_snapshot()
        state: TerminalState = snapshot.state if snapshot.state in TERMINAL_STATES else "degraded"
        devices = {
            _as_code(name, "device"): DeviceReport(
                state=device.health.value,
                reason=_as_code(device.reason, "unknown") if device.reason else "",
            )
            for name, device in snapshot.devices.items()
        }
        counters = snapshot.counters
        if not isinstance(counters, Counters):
            counters = Counters.model_validate(dict(counters))
        return HeartbeatPayload(
            seq=self._heartbeat_seq + 1,
            interval_s=self._interval_s,
            uptime_s=round(time.monotonic() - self._started_monotonic, 3),
            state=state,
            version=self._version,
            devices=devices,
            system=self._system.read(),
            outbox=self._outbox.count(EVENT_KIND),
            counters=counters,
        )

    def _send_heartbeat(self) -> None:
        if not self._link.connected:
            return
        heartbeat = self._heartbeat()
        delivery = self._link.publish(self._heartbeat_topic, encode(heartbeat), qos=0)
        if delivery.error is None:
            # Only a heartbeat handed to the socket uses up a seq; the fleet reads a gap as loss.
            self._heartbeat_seq = heartbeat.seq

    def _pump_events(self) -> None:
        for item_id, delivery in list(self._inflight.items()):
            if delivery.done:
                self._outbox.mark_done(item_id)
                del self._inflight[item_id]
        if not self._link.connected:
            return
        connection = self._link.connection
        earlier = [i for i, d in self._inflight.items() if d.connection != connection]
        if earlier:
            # paho re-sends events that were in flight when the last connection dropped, right
            # after the CONNACK. Newer events wait for those, so the broker sees them in order.
            if time.monotonic() - self._connected_at < STALE_DELIVERY_S:
                return
            for item_id in earlier:  # not re-sent after all: publish them again from the outbox
                del self._inflight[item_id]
        room = EVENT_WINDOW - len(self._inflight)
        if room <= 0:
            return
        for item in self._outbox.pending(EVENT_KIND, limit=len(self._inflight) + room):
            if item.id in self._inflight:
                continue
            delivery = self._link.publish(
                self._event_topic, item.payload_json.encode("utf-8"), qos=1
            )
            if delivery.error is not None:
                break
            self._inflight[item.id] = delivery

    # --- commands --------------------------------------------------------------------------------

    def _on_message(self, message: InboundMessage) -> None:
        # Network thread: only sort; commands wait in the intake and run on its thread, and are
        # acknowledged to the broker once handled, so one lost here is redelivered.
        try:
            parsed = parse_topic(message.topic)
        except TopicError:
            log.warning("ignoring a message on an unexpected topic")
            self._link.acknowledge(message)
            return
        if parsed.kind != "cmd" or parsed.terminal_id != self._terminal_id:
            self._link.acknowledge(message)
            return
        assert parsed.request_id is not None  # parse_topic sets it for cmd topics
        self._intake.receive(parsed.request_id, message)

    def _set_heartbeat_interval(self, args: SetHeartbeatIntervalArgs) -> CommandResult:
        self._interval_s = float(args.interval_s)
        # Sent at once: the fleet judges staleness by the interval in the last heartbeat, so a
        # longer interval must be announced before the old one runs out.
        self.heartbeat_now()
        return {"interval_s": args.interval_s}


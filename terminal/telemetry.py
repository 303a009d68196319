"""The terminal's telemetry agent: status, heartbeats, events and commands over MQTT (DESIGN 6).

Threads: paho's network thread (connect, reconnect, birth, Will), one ``telemetry`` thread
(heartbeats, sending the event outbox, noticing acknowledgements) and one ``commands`` thread
(commands run one at a time, off the network thread so a slow one never stalls keepalives).
The public calls (``record_event``, ``heartbeat_now``, ``register_command``) only write a
row or set a flag, so they stay fast whether or not the broker is reachable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from contracts.mqtt import (
    TERMINAL_STATES,
    AckPayload,
    AckStatus,
    CommandPayload,
    Counters,
    DeviceReport,
    EventPayload,
    EventValue,
    HeartbeatPayload,
    PayloadError,
    StatusPayload,
    SystemFigures,
    TerminalState,
    TopicError,
    ack_topic,
    command_filter,
    describe_validation_error,
    encode,
    event_field_problem,
    event_topic,
    heartbeat_topic,
    parse_payload,
    parse_topic,
    personal_data_reason,
    status_topic,
    utc_now,
)
from devices.base import DeviceState
from terminal.mqtt_link import BrokerSettings, Delivery, LastWill, MqttLink
from terminal.outbox import Outbox

log = logging.getLogger(__name__)

EVENT_KIND = "event"
EVENT_WINDOW = 20  # events in flight at once; paho sends them in order on one connection
STALE_DELIVERY_S = 10.0  # how long a reconnect waits for paho to re-send earlier events
COMMAND_QUEUE_MAX = 64
COMMAND_LOG_MAX = 256
STOP_ACK_WAIT_S = 1.0
INTERRUPTED = "interrupted by a restart before it finished; not retried"

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SEVERITIES = ("info", "warning", "critical")
# Names an event's own fields use; a type-specific field may not overwrite them.
_RESERVED_EVENT_FIELDS = frozenset({"v", "ts", "seq", "type", "severity", "dropped_fields"})
MAX_EVENT_FIELDS = 30


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


class CommandError(Exception):
    """Raised by a command handler to fail with a message that is sent back in the ack.

    Only this message travels; any other exception is reported as an internal error by type name,
    because arbitrary exception text may carry anything.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


A = TypeVar("A", bound=BaseModel)
CommandResult = Mapping[str, JsonValue] | None


class NoArgs(BaseModel):
    """Arguments of a command that takes none."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SetHeartbeatIntervalArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    interval_s: int = Field(ge=5, le=3600)


@dataclass(frozen=True)
class _Command:
    args_model: type[BaseModel]
    handler: Callable[[Any], CommandResult]


# --- small persistent state ----------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` so a power cut leaves the old or the new content, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
            _write_atomic(self._path, f"{self._value}\n")
        except OSError:
            log.exception("could not persist bdseq to %s", self._path)
        return self._value


@dataclass
class _AckRecord:
    ack_json: str
    final: bool


class _CommandLog:
    """Recent request ids and the ack each got, persisted so a duplicate after a restart is
    answered with the same ack instead of running the command again."""

    def __init__(self, path: Path, limit: int = COMMAND_LOG_MAX) -> None:
        self._path = path
        self._limit = limit
        self._entries: OrderedDict[str, _AckRecord] = OrderedDict()
        self._load()

    def _load(self) -> None:
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
            for entry in document["entries"]:
                self._entries[str(entry["request_id"])] = _AckRecord(
                    str(entry["ack"]), bool(entry["final"])
                )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("command log %s unreadable; starting a new one", self._path)
            self._entries.clear()

    def get(self, request_id: str) -> _AckRecord | None:
        return self._entries.get(request_id)

    def unfinished(self) -> list[str]:
        """Request ids accepted but never finished (the process stopped while running them)."""
        return [rid for rid, rec in self._entries.items() if not rec.final]

    def put(self, request_id: str, ack_json: str, final: bool) -> None:
        self._entries[request_id] = _AckRecord(ack_json, final)
        self._entries.move_to_end(request_id)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        document = {
            "entries": [
                {"request_id": rid, "ack": rec.ack_json, "final": rec.final}
                for rid, rec in self._entries.items()
            ]
        }
        try:
            _write_atomic(self._path, json.dumps(document))
        except OSError:
            log.exception("could not persist the command log to %s", self._path)


# --- host figures --------------------------------------------------------------------------------


class _SystemProbe:
    """CPU, memory, disk and temperature from /proc, the state dir's file system and sysfs."""

    def __init__(self, disk_path: Path) -> None:
        self._disk_path = disk_path
        self._last_cpu = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = f.readline().split()
            values = [int(v) for v in fields[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return sum(values[:8]), idle  # guest time is already counted in user
        except (OSError, ValueError, IndexError):
            return None

    def _cpu_pct(self) -> float | None:
        now = self._cpu_times()
        last, self._last_cpu = self._last_cpu, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        total, idle = now[0] - last[0], now[1] - last[1]
        return round(max(0.0, min(100.0, 100.0 * (total - idle) / total)), 1)

    @staticmethod
    def _mem_pct() -> float | None:
        try:
            info: dict[str, int] = {}
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    info[key] = int(rest.split()[0])
            total, available = info["MemTotal"], info["MemAvailable"]
            return round(100.0 * (total - available) / total, 1)
        except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError):
            return None

    def _disk_free_mb(self) -> int | None:
        try:
            return shutil.disk_usage(self._disk_path).free // (1024 * 1024)
        except OSError:
            return None

    @staticmethod
    def _temp_c() -> float | None:
        # The hottest zone: on a Pi there is one (the SoC); elsewhere the hottest is the one that
        # matters for an enclosure that overheats.
        readings = []
        for zone in Path("/sys/class/thermal").glob("thermal_zone*/temp"):
            with contextlib.suppress(OSError, ValueError):
                readings.append(int(zone.read_text(encoding="ascii").strip()) / 1000.0)
        return round(max(readings), 1) if readings else None

    def read(self) -> SystemFigures:
        return SystemFigures(
            cpu_pct=self._cpu_pct(),
            mem_pct=self._mem_pct(),
            disk_free_mb=self._disk_free_mb(),
            temp_c=self._temp_c(),
        )


def _as_code(text: str, fallback: str) -> str:
    """A device name or reason as the contract's lower-case code, whatever a driver handed us."""
    code = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")[:64]
    return code if _CODE.match(code) else fallback


def _result_problem(value: JsonValue, key: str = "result") -> str | None:
    """Why a command result must not be sent (it looks personal), or None."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            problem = _result_problem(v, str(k))
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for item in value:
            problem = _result_problem(item, key)
            if problem:
                return problem
        return None
    return personal_data_reason(key, value)


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
        self._command_log = _CommandLog(state_dir / "mqtt_commands.json")
        self._system = _SystemProbe(state_dir)

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

        self._commands: dict[str, _Command] = {}
        self.register_command("ping", NoArgs, lambda _args: {"pong": True})
        self.register_command(
            "set_heartbeat_interval", SetHeartbeatIntervalArgs, self._set_heartbeat_interval
        )

        self._wake = threading.Condition()
        self._stopping = False
        self._heartbeat_due = False
        self._connected_at = 0.0
        self._inflight: dict[int, Delivery] = {}  # outbox item id -> its publish
        self._command_queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(COMMAND_QUEUE_MAX)
        self._threads: list[threading.Thread] = []

        self._link = MqttLink(
            terminal_id,
            broker,
            will=self._next_will,
            on_connect=self._on_connect,
            on_message=self._on_message,
        )

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
        for request_id in self._command_log.unfinished():
            # Interrupted by the last shutdown: perhaps half-done, so reported failed, never rerun.
            # paho queues these QoS 1 acks until the first connection.
            self._ack(request_id, "failed", error=INTERRUPTED)
        self._link.subscribe(self._command_filter, qos=1)
        self._threads = [
            threading.Thread(target=self._telemetry_loop, name="telemetry", daemon=True),
            threading.Thread(target=self._command_loop, name="commands", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
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
        with contextlib.suppress(queue.Full):
            self._command_queue.put_nowait(None)
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic() - STOP_ACK_WAIT_S))
        if self._link.connected:
            goodbye = self._link.publish(
                self._status_topic, encode(self._status(online=False)), qos=1, retain=True
            )
            if not goodbye.wait(min(STOP_ACK_WAIT_S, max(0.1, deadline - time.monotonic()))):
                log.warning("broker did not acknowledge the offline status before shutdown")
        self._link.stop(max(0.1, deadline - time.monotonic()))
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
        ``dropped_fields``; the log names the field, never its value. Returns None only if the
        outbox could not be written (the error is logged).
        """
        if not _CODE.match(type):
            raise ValueError("event type must be a lower-case code such as 'paper_out'")
        if severity not in _SEVERITIES:
            raise ValueError("event severity must be info, warning or critical")
        kept: dict[str, EventValue] = {}
        dropped = 0
        for key, value in fields.items():
            problem = event_field_problem(key, value)
            if problem is None and key in _RESERVED_EVENT_FIELDS:
                problem = f"field name '{key}' is reserved"
            if problem is None and len(kept) >= MAX_EVENT_FIELDS:
                problem = f"more than {MAX_EVENT_FIELDS} fields"
            if problem is None:
                kept[key] = value
                continue
            dropped += 1
            # The problem text names the field (only once it is a plain code), never its value.
            log.warning("event %s: dropped a field: %s", type, problem)
        if dropped:
            kept["dropped_fields"] = dropped

        def build(seq: int) -> str:
            event = EventPayload.model_validate(
                {"seq": seq, "type": type, "severity": severity, **kept}
            )
            return encode(event).decode("utf-8")

        try:
            item = self._outbox.put_numbered(EVENT_KIND, build)
        except Exception:
            log.exception("could not store event %s", type)
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
        if not _CODE.match(name):
            raise ValueError("command names are lower-case codes")
        self._commands[name] = _Command(args_model, handler)

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

    # --- heartbeats and events (telemetry thread) ------------------------------------------------

    def _telemetry_loop(self) -> None:
        next_due = time.monotonic()
        while True:
            with self._wake:
                if self._stopping:
                    return
                due_now = self._heartbeat_due or time.monotonic() >= next_due
                self._heartbeat_due = False
            try:
                if due_now:
                    self._send_heartbeat()
                    next_due = time.monotonic() + self._interval_s
                self._pump_events()
            except Exception:  # the telemetry thread must outlive any bug in one round
                log.exception("telemetry round failed")
            with self._wake:
                if self._stopping or self._heartbeat_due:
                    continue
                wait = max(0.0, next_due - time.monotonic())
                if self._inflight:
                    wait = min(wait, 0.05)  # acknowledgements arrive on paho's thread
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

    def _on_message(self, topic: str, payload: bytes) -> None:
        # Network thread: only sort and queue; commands run on their own thread.
        try:
            parsed = parse_topic(topic)
        except TopicError:
            log.warning("ignoring a message on an unexpected topic")
            return
        if parsed.kind != "cmd" or parsed.terminal_id != self._terminal_id:
            return
        assert parsed.request_id is not None  # parse_topic sets it for cmd topics
        try:
            self._command_queue.put_nowait((parsed.request_id, payload))
        except queue.Full:
            log.warning("command %s dropped: too many commands queued", parsed.request_id)

    def _command_loop(self) -> None:
        while not self._stopping:
            try:
                work = self._command_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if work is None:
                return
            request_id, payload = work
            try:
                self._handle_command(request_id, payload)
            except Exception:
                log.exception("command %s could not be handled", request_id)

    def _send_ack(self, request_id: str, ack_json: str) -> None:
        self._link.publish(ack_topic(self._terminal_id, request_id), ack_json.encode("utf-8"),
                           qos=1)

    def _ack(
        self,
        request_id: str,
        status: AckStatus,
        *,
        error: str | None = None,
        result: Mapping[str, JsonValue] | None = None,
    ) -> None:
        ack = AckPayload(status=status, error=error[:256] if error else None,
                         result=dict(result) if result is not None else None)
        ack_json = encode(ack).decode("utf-8")
        # Remember before sending: a duplicate arriving after a crash gets this, not a rerun.
        self._command_log.put(request_id, ack_json, final=ack.final)
        self._send_ack(request_id, ack_json)

    def _handle_command(self, request_id: str, payload: bytes) -> None:
        known = self._command_log.get(request_id)
        if known is not None:
            # Final by now: commands run one at a time, and start() closed any that a shutdown
            # cut short. The duplicate gets the very same ack; the command does not run again.
            log.info("command %s is a duplicate; repeating its ack", request_id)
            self._send_ack(request_id, known.ack_json)
            return
        try:
            command = parse_payload(CommandPayload, payload)
        except PayloadError as e:
            self._ack(request_id, "rejected", error=e.message)
            return
        if command.expired():
            self._ack(request_id, "rejected", error=f"command expired at "
                      f"{command.expires_at.isoformat(timespec='seconds')}")
            return
        registered = self._commands.get(command.name)
        if registered is None:
            self._ack(request_id, "rejected", error=f"unknown command '{command.name}'")
            return
        try:
            args = registered.args_model.model_validate(command.args)
        except ValidationError as e:
            self._ack(request_id, "rejected", error=f"bad args: {describe_validation_error(e)}")
            return

        log.info("command %s: %s accepted", request_id, command.name)
        self._ack(request_id, "accepted")
        try:
            result = registered.handler(args)
        except CommandError as e:
            self._ack(request_id, "failed", error=e.message)
            return
        except Exception as e:
            log.exception("command %s: %s failed", request_id, command.name)
            self._ack(request_id, "failed", error=f"internal error ({type(e).__name__})")
            return
        result = dict(result) if result is not None else {}
        problem = _result_problem(result)
        if problem is not None:
            self._ack(request_id, "failed", error=f"result withheld: {problem}")
            return
        try:
            self._ack(request_id, "succeeded", result=result)
        except ValidationError:
            self._ack(request_id, "failed", error="handler returned a result that is not JSON")

    def _set_heartbeat_interval(self, args: SetHeartbeatIntervalArgs) -> CommandResult:
        self._interval_s = float(args.interval_s)
        # Sent at once: the fleet judges staleness by the interval in the last heartbeat, so a
        # longer interval must be announced before the old one runs out.
        self.heartbeat_now()
        return {"interval_s": args.interval_s}


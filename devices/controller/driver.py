"""The co-processor on a UART: handshake, requests with retransmission, events, watchdog kicks.

Threads: ``start()`` opens the port once on the caller's thread (so the first ``state()`` means
something) and starts one daemon thread, ``controller-serial``, that alone reads and writes the
port: it handshakes, serves ``request()`` calls queued by other threads (each waits for its
answer on an Event), sends the watchdog kicks, polls the board's status and calls ``on_event``.
``kick()``, ``set_light()``, ``status()`` and ``state()`` only touch memory and never block.

Kicks: ``kick()`` records the time. The thread sends ``kick`` to the board (every
``kick_every_s``) only while kick() was called within the last ``kick_fresh_s``, so a frozen UI
thread stops the kicks although this thread lives on, and the board then power-cycles the Pi.

Board reset and reconnect: a ``boot`` event, an ``error no_session`` answer, a status showing a
new ``boot_id`` or ``retries`` unanswered retransmissions end the session; the thread handshakes
again (every ``reopen_s`` while the board stays silent). A port that breaks is closed and opened
again every ``reopen_s``. Events are for speed; the status poll (every ``status_every_s``) is the
truth: a change seen there that no event announced (an event lost to line noise, a change while
disconnected) is reported as an event all the same.

State: ok; fault ``absent``, ``offline``, ``no_permission``, ``busy``, ``open_failed``,
``no_answer`` (port open, board silent), ``dictionary_mismatch`` (its firmware speaks another
dictionary: never talked to until it is reflashed); degraded ``resyncing`` (the board restarted,
handshaking again) and ``garbled`` (line noise dropped, until the next good answer). Before
start() and after stop(), fault ``offline``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

import serial

from contracts.controller import DICTIONARY_HASH, LIGHT_PATTERNS, Direction
from devices.base import DeviceError, DeviceState, DeviceTimeout, DeviceUnavailable
from devices.controller.protocol import (
    BoardRefused,
    ControllerReason,
    Dictionary,
    DictionaryMismatch,
    Fields,
    FieldValue,
    Frame,
    Framer,
    Message,
    ProtocolError,
    SequenceCounter,
    check_hello_answer,
    is_event,
)
from devices.serial_link import open_exclusive, open_failure

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.05  # the thread's longest sleep in a read; request() wakes it sooner


# --- what the terminal gets -----------------------------------------------------------------------


@dataclass(frozen=True)
class DoorChanged:
    open: bool


@dataclass(frozen=True)
class TamperChanged:
    triggered: bool


@dataclass(frozen=True)
class TemperatureHigh:
    """Above the board's alarm threshold (60 °C by default), not merely warm enough for the fan."""

    celsius: float
    fan_on: bool


@dataclass(frozen=True)
class TemperatureNormal:
    celsius: float


@dataclass(frozen=True)
class FanChanged:
    on: bool


@dataclass(frozen=True)
class BoardReset:
    """Seen at each handshake that finds a board we did not know: the first contact since start()
    (``cause``: the board's ``last_cause`` if it ever cut the power, else its ``reset_cause``), a
    board that restarted (its reset cause: power_on, firmware_watchdog, soft, other), or one that
    cut our power and we lived (kick_timeout). ``power_cycles``: since the board's own boot."""

    cause: str
    power_cycles: int


ControllerEvent = (
    DoorChanged | TamperChanged | TemperatureHigh | TemperatureNormal | FanChanged | BoardReset
)
EventCallback = Callable[[ControllerEvent], None]


@dataclass(frozen=True)
class ControllerStatus:
    door_open: bool
    tamper: bool
    temperature_c: float
    fan_on: bool
    temperature_high: bool
    light: str
    uptime_s: int
    power_cycles: int
    last_cause: str
    reset_cause: str
    boot_id: int
    firmware_version: str
    watchdog_timeout_s: int
    grace_s: int
    grace_left_s: int

    @classmethod
    def from_fields(cls, fields: Fields, firmware_version: str) -> ControllerStatus:
        return cls(
            door_open=bool(fields["door_open"]),
            tamper=bool(fields["tamper"]),
            temperature_c=int(fields["temperature_cc"]) / 100,
            fan_on=bool(fields["fan_on"]),
            temperature_high=bool(fields["temperature_high"]),
            light=str(fields["light"]),
            uptime_s=int(fields["uptime_s"]),
            power_cycles=int(fields["power_cycles"]),
            last_cause=str(fields["last_cause"]),
            reset_cause=str(fields["reset_cause"]),
            boot_id=int(fields["boot_id"]),
            firmware_version=firmware_version,
            watchdog_timeout_s=int(fields["watchdog_timeout_s"]),
            grace_s=int(fields["grace_s"]),
            grace_left_s=int(fields["grace_left_s"]),
        )


def _notify(on_event: EventCallback, event: ControllerEvent) -> None:
    try:
        on_event(event)
    except Exception as exc:  # a listener's bug must not stop the driver
        log.error(
            "controller on_event failed: %s: %s\n%s",
            type(exc).__name__,
            exc,
            "".join(traceback.format_tb(exc.__traceback__)),
        )


class _Job:
    """A request() waiting for the driver thread."""

    def __init__(self, name: str, fields: Fields) -> None:
        self.name = name
        self.fields = fields
        self.done = threading.Event()
        self.answer: Fields | None = None
        self.error: DeviceError | None = None


class _SessionLost(Exception):
    """The board no longer knows us (it restarted): handshake again."""


class ControllerDriver:
    """The MicroPython co-processor (door, tamper, temperature, fan, light, host watchdog)."""

    def __init__(
        self,
        path: str,
        *,
        baudrate: int = 115200,
        answer_timeout_s: float = 0.3,
        retries: int = 2,
        reopen_s: float = 1.0,
        watchdog_timeout_s: int = 60,
        grace_s: int = 180,
        power_off_s: int = 5,
        status_every_s: float = 2.0,
    ) -> None:
        if not path:
            raise ValueError("controller port must be a device path")
        if not 0 < answer_timeout_s <= 10:
            raise ValueError("answer_timeout_s must be in (0, 10]")
        if not 0 <= retries <= 10:
            raise ValueError("retries must be in 0..10")
        if not 0 < reopen_s <= 60:
            raise ValueError("reopen_s must be in (0, 60]")
        if not 1 <= watchdog_timeout_s <= 3600:
            raise ValueError("watchdog_timeout_s must be in 1..3600")
        if not 0 <= grace_s <= 3600:
            raise ValueError("grace_s must be in 0..3600")
        if not 1 <= power_off_s <= 60:
            raise ValueError("power_off_s must be in 1..60")
        if not 0.1 <= status_every_s <= 60:
            raise ValueError("status_every_s must be in [0.1, 60]")
        self._path = path
        self._baudrate = baudrate
        self._answer_timeout_s = answer_timeout_s
        self._retries = retries
        self._reopen_s = reopen_s
        self._watchdog_timeout_s = watchdog_timeout_s
        self._grace_s = grace_s
        self._power_off_s = power_off_s
        self._status_every_s = status_every_s
        # A kick goes out well inside the board's timeout, and only while the UI kicked recently.
        self._kick_every_s = min(1.0, watchdog_timeout_s / 4)
        self._kick_fresh_s = min(3.0, watchdog_timeout_s / 2)
        self._dictionary = Dictionary()
        self._framer = Framer()
        self._seq = SequenceCounter()
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _link (against stop()), _state, _status, _light
        self._link: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._on_event: EventCallback | None = None
        self._seen = False
        self._state = DeviceState.fault(ControllerReason.OFFLINE)
        self._status: ControllerStatus | None = None
        self._firmware_version = ""
        self._light = "ok"
        self._light_sent = ""
        self._kicked_at = -1e9
        self._kick_sent_at = -1e9
        self._status_at = -1e9
        self._in_session = False
        self._handshake_at = 0.0
        self._answers: dict[int, Message] = {}
        self._waiting_seq = -1
        self._dropped_seen = 0
        self._last_byte_at = 0.0

    # --- the API --------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    def state(self) -> DeviceState:
        with self._lock:
            return self._state

    def status(self) -> ControllerStatus | None:
        """The board as last seen (events applied); None until the first handshake, and while
        there is no session."""
        with self._lock:
            return self._status if self._in_session else None

    def start(self, on_event: EventCallback) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("controller already started")
        self._on_event = on_event
        self._stop.clear()
        self._seen = False
        self._in_session = False
        self._handshake_at = 0.0
        self._open()
        thread = threading.Thread(target=self._run, name="controller-serial", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._answer_timeout_s * (self._retries + 1) + 2.0)
            if thread.is_alive():
                log.warning("controller thread did not stop in time")
                return
        self._close()
        self._fail_jobs(DeviceUnavailable("controller driver stopped"))
        with self._lock:
            self._thread = None
            self._in_session = False
            self._state = DeviceState.fault(ControllerReason.OFFLINE)

    def kick(self) -> None:
        """Say the terminal is alive; call it from the UI's tick. Never blocks."""
        self._kicked_at = time.monotonic()

    def set_light(self, pattern: str) -> None:
        """Show ``pattern`` (off / ok / attention / fault / maintenance); sent by the driver
        thread, and again after every handshake. Never blocks."""
        if pattern not in LIGHT_PATTERNS:
            raise ValueError(f"unknown light pattern {pattern!r}")
        with self._lock:
            self._light = pattern
        self._wake()

    def request(self, name: str, **fields: FieldValue) -> Fields:
        """Send a command, wait for its answer's fields. Raises DeviceUnavailable when there is
        no session with the board, DeviceTimeout when it stays silent through the retries,
        BoardRefused when it answers ``error`` (reason: its code)."""
        spec = self._dictionary.spec(name)
        if spec.direction is not Direction.COMMAND or name == "hello":
            raise ValueError(f"{name} is not a command the terminal may send")
        self._dictionary.encode(name, fields)  # a bad field fails here, on the caller's thread
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            state, in_session = self._state, self._in_session
        if not running or not in_session:
            raise DeviceUnavailable(
                f"controller not connected ({state.reason or 'no session'})",
                reason=state.reason or ControllerReason.NO_ANSWER.value,
            )
        job = _Job(name, dict(fields))
        self._jobs.put(job)
        self._wake()
        budget = self._answer_timeout_s * (self._retries + 1) * 2 + 1.0
        if not job.done.wait(budget):
            raise DeviceTimeout("controller request not served in time")
        if job.error is not None:
            raise job.error
        assert job.answer is not None
        return job.answer

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._link is None:
                if self._stop.wait(self._reopen_s):
                    break
                self._open()
                continue
            try:
                if not self._in_session:
                    if time.monotonic() >= self._handshake_at:
                        self._handshake()
                    else:
                        self._pump()
                    continue
                self._duties()
            except _SessionLost:
                self._end_session(DeviceState.degraded(ControllerReason.RESYNCING))
                self._handshake_at = 0.0
            except DeviceTimeout:
                log.warning("controller: no answer, handshaking again")
                self._end_session(DeviceState.fault(ControllerReason.NO_ANSWER))
                self._handshake_at = time.monotonic() + self._reopen_s
            except OSError:  # pyserial's SerialException is one: the port went away
                if self._stop.is_set():
                    break
                self._lost()
            except DeviceUnavailable:
                # An exchange cut short by stop() (the only place it is raised in this thread).
                if self._stop.is_set():
                    break
                raise
        self._close()

    def _duties(self) -> None:
        try:
            job = self._jobs.get_nowait()
        except queue.Empty:
            job = None
        if job is not None:
            self._serve(job)
            return
        now = time.monotonic()
        with self._lock:
            light = self._light
        if light != self._light_sent:
            self._exchange("set_light", {"pattern": light})
            self._light_sent = light
        elif (
            now - self._kicked_at <= self._kick_fresh_s
            and now - self._kick_sent_at >= self._kick_every_s
        ):
            self._kick_sent_at = now
            self._exchange("kick", {})
        elif now - self._status_at >= self._status_every_s:
            self._poll_status()
        else:
            self._pump()

    def _serve(self, job: _Job) -> None:
        try:
            job.answer = self._exchange(job.name, job.fields).fields
        except DeviceError as exc:
            job.error = exc
            if isinstance(exc, DeviceTimeout):
                job.done.set()
                raise
        except _SessionLost:
            job.error = DeviceUnavailable("the controller restarted", reason="resyncing")
            job.done.set()
            raise
        except OSError:
            job.error = DeviceUnavailable("the controller's port went away")
            job.done.set()
            raise
        job.done.set()

    def _handshake(self) -> None:
        self._framer.reset()
        self._answers.clear()
        try:
            answer = self._exchange("hello", {"dictionary_hash": DICTIONARY_HASH})
            shake = check_hello_answer(answer)
        except DictionaryMismatch as exc:
            if self.state().reason != ControllerReason.DICTIONARY_MISMATCH:
                log.error("controller: %s", exc)
            self._set_state(DeviceState.fault(ControllerReason.DICTIONARY_MISMATCH))
            self._handshake_at = time.monotonic() + self._reopen_s
            return
        except (DeviceTimeout, _SessionLost):
            self._set_state(DeviceState.fault(ControllerReason.NO_ANSWER))
            self._handshake_at = time.monotonic() + self._reopen_s
            return
        except (ProtocolError, BoardRefused) as exc:
            log.warning("controller: handshake failed: %s", exc)
            self._set_state(DeviceState.fault(ControllerReason.NO_ANSWER))
            self._handshake_at = time.monotonic() + self._reopen_s
            return
        self._firmware_version = shake.firmware_version
        try:
            self._exchange(
                "set_watchdog",
                {
                    "timeout_s": self._watchdog_timeout_s,
                    "grace_s": self._grace_s,
                    "power_off_s": self._power_off_s,
                },
            )
            with self._lock:
                light = self._light
            self._exchange("set_light", {"pattern": light})
            self._light_sent = light
            fields = self._exchange("get_status", {}).fields
        except (DeviceError, _SessionLost) as exc:
            log.warning("controller: setup after handshake failed: %s", exc)
            self._set_state(DeviceState.fault(ControllerReason.NO_ANSWER))
            self._handshake_at = time.monotonic() + self._reopen_s
            return
        status = ControllerStatus.from_fields(fields, shake.firmware_version)
        with self._lock:
            previous = self._status
            self._status = status
            self._in_session = True
        self._status_at = time.monotonic()
        self._kick_sent_at = -1e9
        log.info(
            "controller: firmware %s, board %04x (%s), %d power cycles",
            status.firmware_version,
            status.boot_id,
            status.reset_cause,
            status.power_cycles,
        )
        self._set_state(DeviceState.ok())
        reset = _board_reset(previous, status)
        if reset is not None:
            self._emit(reset)
        self._emit_changes(previous, status)

    def _poll_status(self) -> None:
        self._status_at = time.monotonic()
        fields = self._exchange("get_status", {}).fields
        status = ControllerStatus.from_fields(fields, self._firmware_version)
        with self._lock:
            previous = self._status
        if previous is not None and status.boot_id != previous.boot_id:
            raise _SessionLost  # restarted and we missed its boot event (it then says no_session)
        with self._lock:
            self._status = status
        if previous is not None and status.power_cycles > previous.power_cycles:
            self._emit(BoardReset(status.last_cause, status.power_cycles))
        self._emit_changes(previous, status)

    def _emit_changes(self, previous: ControllerStatus | None, status: ControllerStatus) -> None:
        # On first contact the baseline is a quiet cabinet: an open door is news, a closed one not.
        door, tamper, fan, high = (
            (False, False, False, False)
            if previous is None
            else (previous.door_open, previous.tamper, previous.fan_on, previous.temperature_high)
        )
        if status.door_open != door:
            self._emit(DoorChanged(status.door_open))
        if status.tamper != tamper:
            self._emit(TamperChanged(status.tamper))
        if status.fan_on != fan:
            self._emit(FanChanged(status.fan_on))
        if status.temperature_high != high:
            self._emit(
                TemperatureHigh(status.temperature_c, status.fan_on)
                if status.temperature_high
                else TemperatureNormal(status.temperature_c)
            )

    # --- the wire -------------------------------------------------------------------------------

    def _exchange(self, name: str, fields: Fields) -> Message:
        """Send a command and wait for the answer with its seq, retransmitting the same frame
        ``retries`` times; raises DeviceTimeout, BoardRefused, _SessionLost, OSError."""
        link = self._link
        if link is None:
            raise OSError(errno.ENODEV, "controller port closed")
        seq = self._seq.next()
        data = self._dictionary.frame(seq, name, **fields).encode()
        self._waiting_seq = seq
        try:
            for attempt in range(self._retries + 1):
                if attempt:
                    log.info("controller: %s unanswered, retransmitting (%d)", name, attempt)
                link.write(data)
                deadline = time.monotonic() + self._answer_timeout_s
                while True:
                    answer = self._answers.pop(seq, None)
                    if answer is not None:
                        return self._check_answer(name, answer)
                    if self._stop.is_set():
                        raise DeviceUnavailable("controller driver stopping")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._pump()
            raise DeviceTimeout(f"controller did not answer {name}")
        finally:
            self._waiting_seq = -1

    def _check_answer(self, name: str, answer: Message) -> Message:
        if answer.name == "error":
            code = str(answer.fields["code"])
            if code == "no_session" and name != "hello":
                raise _SessionLost
            raise BoardRefused(f"controller refused {name}: {code}", reason=code)
        expected = self._dictionary.spec(name).answer
        if answer.name != expected:
            raise ProtocolError(f"{name} answered with {answer.name}")
        return answer

    def _pump(self) -> None:
        """Read what arrives within the read timeout (or until woken) and dispatch it."""
        link = self._link
        if link is None:
            raise OSError(errno.ENODEV, "controller port closed")
        data = link.read(1)
        if data:
            waiting = link.in_waiting
            if waiting:
                data += link.read(waiting)
        now = time.monotonic()
        if data:
            self._last_byte_at = now
            frames = self._framer.feed(data)
        elif self._framer.pending and now - self._last_byte_at >= _READ_TIMEOUT_S:
            # The board writes a frame in one go (~20 ms at 115200 baud): a start byte that
            # has waited this long for the rest was noise.
            frames = self._framer.expire()
        else:
            return
        for frame in frames:
            self._dispatch(frame)
        if self._framer.dropped != self._dropped_seen:
            log.warning(
                "controller: %d bytes of line noise dropped",
                self._framer.dropped - self._dropped_seen,
            )
            self._dropped_seen = self._framer.dropped
            if self.state().health.value == "ok":
                self._set_state(DeviceState.degraded(ControllerReason.GARBLED))

    def _dispatch(self, frame: Frame) -> None:
        try:
            message = self._dictionary.decode(frame)
        except ProtocolError as exc:
            # A good CRC with fields we cannot read: a board of another dictionary, before the
            # handshake has said so. Nothing to act on.
            log.debug("controller: undecodable frame: %s", exc)
            return
        if is_event(frame):
            if message.direction is Direction.EVENT:
                self._on_board_event(message)
            return
        if frame.seq == self._waiting_seq:
            self._answers[frame.seq] = message
            if self.state().reason == ControllerReason.GARBLED:
                self._set_state(DeviceState.ok())
        # Otherwise a late answer to a request we gave up on: dropped.

    def _on_board_event(self, message: Message) -> None:
        fields = message.fields
        if message.name == "boot":
            if self._in_session:
                log.warning("controller: board restarted (%s)", fields.get("reset_cause", "?"))
                raise _SessionLost
            log.info("controller: board booted (%s)", fields.get("reset_cause", "?"))
            self._handshake_at = 0.0
            return
        with self._lock:
            status = self._status
        if status is None or not self._in_session:
            return
        updated = status
        if message.name == "door":
            updated = replace(status, door_open=bool(fields["open"]))
        elif message.name == "tamper":
            updated = replace(status, tamper=bool(fields["triggered"]))
        elif message.name == "fan":
            updated = replace(status, fan_on=bool(fields["on"]))
        elif message.name == "temperature":
            updated = replace(
                status,
                temperature_c=int(fields["temperature_cc"]) / 100,
                fan_on=bool(fields["fan_on"]),
                temperature_high=bool(fields["high"]),
            )
        elif message.name == "power_cycle":
            updated = replace(
                status, power_cycles=int(fields["power_cycles"]), last_cause=str(fields["cause"])
            )
        with self._lock:
            self._status = updated
        if updated.power_cycles > status.power_cycles:
            self._emit(BoardReset(updated.last_cause, updated.power_cycles))
        self._emit_changes(status, updated)

    # --- the port -------------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            link = open_exclusive(self._path, self._baudrate, _READ_TIMEOUT_S)
        except (OSError, ValueError) as exc:
            self._set_state(DeviceState.fault(open_failure(exc, seen=self._seen, log=log)))
            return
        self._framer.reset()
        with self._lock:
            self._link = link
        self._seen = True
        self._in_session = False
        self._handshake_at = 0.0
        self._set_state(DeviceState.fault(ControllerReason.NO_ANSWER))

    def _lost(self) -> None:
        log.warning("controller: port lost")
        self._close()
        self._end_session(DeviceState.fault(ControllerReason.OFFLINE))

    def _close(self) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            try:
                link.close()
            except OSError:
                log.debug("controller port close failed", exc_info=True)

    def _wake(self) -> None:
        with self._lock:
            link = self._link
        if link is not None:
            with contextlib.suppress(OSError, AttributeError, TypeError):
                link.cancel_read()  # wakes the thread's read at once (pyserial's abort pipe)

    def _end_session(self, state: DeviceState) -> None:
        with self._lock:
            self._in_session = False
        self._light_sent = ""
        self._fail_jobs(DeviceUnavailable("controller session lost", reason=state.reason))
        self._set_state(state)

    def _fail_jobs(self, error: DeviceError) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job.error = error
            job.done.set()

    def _emit(self, event: ControllerEvent) -> None:
        log.info("controller: %s", event)
        if self._on_event is not None and not self._stop.is_set():
            _notify(self._on_event, event)

    def _set_state(self, state: DeviceState) -> None:
        with self._lock:
            previous, self._state = self._state, state
        if state != previous:
            log.info(
                "controller %s%s", state.health.value, f" ({state.reason})" if state.reason else ""
            )


def _board_reset(previous: ControllerStatus | None, status: ControllerStatus) -> BoardReset | None:
    if previous is None:
        cause = status.last_cause if status.power_cycles else status.reset_cause
        return BoardReset(cause, status.power_cycles)
    if status.boot_id != previous.boot_id:
        return BoardReset(status.reset_cause, status.power_cycles)
    if status.power_cycles > previous.power_cycles:
        return BoardReset(status.last_cause, status.power_cycles)
    return None

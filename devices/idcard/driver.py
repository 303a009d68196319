"""Resident ID card reader over pyserial: a SAM_A module polled for cards, reopen after an unplug.

Threads: ``start()`` opens the port once on the caller's thread (a non-blocking open, as the
scanner does) and starts one daemon thread, ``idcard-reader``. It asks the SAM for its status
(11 FF) after every open, then sends find (20 01) every ``poll_s``. A card is presented and taken
away, not held in a slot, so when find succeeds the thread selects and reads at once and calls
``on_presented`` once, with the CardHolder or with the typed error; it does not report that card
again until find has failed at least once (the card was taken away), and then calls
``on_removed``. Both callbacks run on the reader thread, never under the driver's locks; a
terminal hands them on to its main thread itself.

Real modules answer find with "no card" after a successful read until the card has left the
field (reference/devices.md 2.4), so there ``on_removed`` may come while the card still lies on
the reader: it means "ready for the next presentation", which is what the flows need.

Every exchange has a timeout (``answer_timeout_s``, and ``read_timeout_s`` for the read, which
covers the card's own read time and 1295 bytes on the wire). An answer with a wrong XOR or an
impossible length, or the module saying our frame arrived damaged, gets one resend of that
command; after that the problem is reported. Bytes before a preamble are skipped by the framer.
Before each command the input buffer is flushed, so a late answer to a timed-out command never
pairs with the next one.

State: ok once the SAM answered; degraded ``checking`` between opening the port and the SAM's
answer; degraded ``read_error`` after a card read broke on the wire (answer cut off, damaged
twice) until the next well-formed read answer; fault ``absent`` (never found since start),
``offline`` (went away), ``no_permission``, ``busy``, ``open_failed``, ``no_answer``,
``sam_self_test``, ``sam_unauthorised``, ``bad_checksum``, ``bad_length`` and the reasons of
other module statuses. Before start() and after stop(), fault ``offline``. When the port breaks
the thread closes it, reports a presented card as removed, and reopens the same path every
``reopen_s``: give a stable path (/dev/serial/by-id/..., a udev symlink).

Nothing personal is logged: commands, status codes, lengths and reason codes only.
"""

from __future__ import annotations

import logging
import termios
import threading
import time
import traceback
from collections.abc import Callable
from typing import Final

import serial

from devices.base import (
    CardError,
    CardHolder,
    DeviceError,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    Health,
)
from devices.idcard.protocol import (
    Answer,
    AnswerFramer,
    CardReadFailed,
    Command,
    FrameError,
    FrameProblemKind,
    IdCardReason,
    SamFault,
    Status,
    command_frame,
    error_for_status,
    holder_from_read_answer,
)
from devices.serial_link import open_exclusive, open_failure

log = logging.getLogger(__name__)

PresentedCallback = Callable[[CardHolder | DeviceError], None]
RemovedCallback = Callable[[], None]


# The port's own read timeout: how often a wait for an answer looks at its deadline and at stop().
# A read returns as soon as a byte is in, so this costs no latency.
_TICK_S: Final = 0.05
# What a module takes to read text and photo off the card (typically 0.3-0.8 s), beyond the
# answer timeout; the wire time of the 1295-byte answer is added from the baud rate.
_CARD_READ_ALLOWANCE_S: Final = 1.0
_READ_ANSWER_BITS: Final = 1295 * 10  # 8N1: ten bits a byte
# The module says our frame arrived damaged: resend, as after a damaged answer.
_RESEND_STATUSES: Final = frozenset({Status.CHECKSUM_ERROR, Status.LENGTH_ERROR})


class _Stopping(Exception):
    """stop() was called while the reader waited for an answer."""


def _call_safely(what: str, callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception as exc:  # a listener's bug must not stop the reader
        # Frames only, no message: the exception's text could quote the holder.
        log.error(
            "idcard %s failed: %s\n%s",
            what,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )


class IdCardReaderDriver:
    """A SAM_A resident ID card reader on a serial line (UART, or USB in CDC mode)."""

    def __init__(
        self,
        path: str,
        *,
        baudrate: int = 115200,
        poll_s: float = 0.25,
        answer_timeout_s: float = 0.5,
        reopen_s: float = 1.0,
        read_timeout_s: float | None = None,
    ) -> None:
        """``read_timeout_s``: the wait for the read (30 01) answer; by default
        ``answer_timeout_s`` plus a second for the card and the answer's wire time."""
        if not path:
            raise ValueError("ID card reader path must be a device path")
        if baudrate <= 0:
            raise ValueError("ID card reader baud rate must be positive")
        if not 0 < poll_s <= 10:
            raise ValueError("poll_s must be in (0, 10]")
        if not 0 < answer_timeout_s <= 10:
            raise ValueError("answer_timeout_s must be in (0, 10]")
        if not 0 < reopen_s <= 60:
            raise ValueError("reopen_s must be in (0, 60]")
        if read_timeout_s is None:
            read_timeout_s = (
                answer_timeout_s + _CARD_READ_ALLOWANCE_S + _READ_ANSWER_BITS / baudrate
            )
        if not 0 < read_timeout_s <= 30:
            raise ValueError("read_timeout_s must be in (0, 30]")
        self._path = path
        self._baudrate = baudrate
        self._poll_s = poll_s
        self._answer_timeout_s = answer_timeout_s
        self._reopen_s = reopen_s
        self._read_timeout_s = read_timeout_s
        self._framer = AnswerFramer()
        self._stop = threading.Event()
        # One command sequence on the wire at a time: the poll thread's and read_once()'s. Held
        # for whole exchanges; never while a callback runs.
        self._io_lock = threading.Lock()
        self._lock = threading.Lock()  # guards _link against stop()'s cancel_read, and _state
        self._link: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._on_presented: PresentedCallback | None = None
        self._on_removed: RemovedCallback | None = None
        # Under _io_lock:
        self._seen = False  # opened at least once since start(): absent becomes offline
        self._sam_ok = False  # the SAM answered 11 FF since the port was (re)opened
        self._card_reported = False  # this presentation was reported; wait for find to fail
        # Nothing is known before start(); report the reader as not reachable until then.
        self._state = DeviceState.fault(IdCardReason.OFFLINE)

    @property
    def path(self) -> str:
        return self._path

    def state(self) -> DeviceState:
        """The reader's latest view; never touches the wire."""
        with self._lock:
            return self._state

    def start(self, on_presented: PresentedCallback, on_removed: RemovedCallback) -> None:
        """Open the port (once, now) and start the reader thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("ID card reader already started")
        self._stop.clear()
        self._on_presented, self._on_removed = on_presented, on_removed
        with self._io_lock:
            self._seen = False
            self._card_reported = False
            self._open()
        thread = threading.Thread(target=self._run, name="idcard-reader", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Stop the reader and close the port; returns within about a read timeout."""
        self._stop.set()
        with self._lock:
            thread, link = self._thread, self._link
            if link is not None and link.is_open:
                link.cancel_read()  # wakes a waiting read at once (pyserial's abort pipe)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._read_timeout_s + 2.0)
            if thread.is_alive():
                log.warning("idcard reader did not stop in time")
                return
        self._close()
        with self._lock:
            self._thread = None
            self._state = DeviceState.fault(IdCardReason.OFFLINE)

    def read_once(self, timeout_s: float) -> CardHolder:
        """Wait up to ``timeout_s`` for a card, then select and read it once (the maintenance
        self-test, the bench). Raises the typed errors; DeviceTimeout ``no_card`` when none came.

        Works with or without start(): it takes the same lock as the poll thread, and a card it
        read is not reported again by the thread. Not started, it opens the port for the call.
        """
        deadline = time.monotonic() + timeout_s
        if not self._io_lock.acquire(timeout=max(timeout_s, 0.0)):
            raise DeviceTimeout("reader busy", reason=IdCardReason.BUSY.value)
        try:
            link, temporary = self._link, False
            if link is None:
                if self._running():
                    reason = self.state().reason or IdCardReason.OFFLINE.value
                    raise DeviceUnavailable("reader not open", reason=reason)
                link, temporary = self._connect(), True
                self._seen = True  # a later failure to open is "offline", not "absent"
            try:
                self._wait_for_card(link, deadline)
                holder = self._select_and_read(link)
            except OSError:
                if not temporary:
                    # The thread reports a presented card as removed after it reopens.
                    self._drop_link(link)
                raise DeviceUnavailable(
                    "reader went away", reason=IdCardReason.OFFLINE.value
                ) from None
            finally:
                if temporary:
                    self._framer.reset()
                    _close_quietly(link)
            if self._running():
                self._card_reported = True  # the thread must not report this presentation again
            return holder
        finally:
            self._io_lock.release()

    # --- the reader thread ------------------------------------------------------------------------

    def _stopping(self) -> bool:
        # Only the reader thread gives up on stop(); read_once() is bounded by its own timeouts.
        return self._stop.is_set() and threading.current_thread() is self._thread

    def _running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._link is None:
                    if self._stop.wait(self._reopen_s):
                        break
                    with self._io_lock:
                        self._open()
                    continue  # past the stop check again before the first command
                try:
                    with self._io_lock:
                        events = self._poll()
                except _Stopping:
                    raise
                except Exception as exc:  # a bug here must not leave the reader dead all night
                    log.error(
                        "idcard reader poll failed: %s\n%s",
                        type(exc).__name__,
                        "".join(traceback.format_tb(exc.__traceback__)),
                    )
                    with self._io_lock:
                        events = self._lost(self._link)
                for event in events:
                    event()
                self._stop.wait(self._poll_s)
        except _Stopping:
            pass
        self._close()

    def _poll(self) -> list[Callable[[], None]]:
        """One poll under _io_lock; returns the callbacks to make once the lock is released."""
        link = self._link
        if link is None:
            return []
        try:
            if not self._sam_ok:
                self._check_sam(link)
                if not self._sam_ok:
                    return []
            found = self._find(link)
            if found is None:
                return []
            if not found:
                if not self._card_reported:
                    return []
                self._card_reported = False
                log.info("idcard: card taken away")
                return [self._removed_event()]
            if self._card_reported:
                return []  # the same presentation, already reported
            self._card_reported = True
            try:
                result: CardHolder | DeviceError = self._select_and_read(link)
                log.info("idcard: card presented, read ok")
            except DeviceError as exc:
                log.warning("idcard: card presented, read failed (%s)", exc.reason)
                result = exc
            except OSError:
                if self._stopping():
                    raise _Stopping from None
                # Unplugged mid-read: the resident still hears about it, then it is gone.
                log.warning("idcard: card presented, reader went away mid-read")
                gone = DeviceUnavailable("reader went away", reason=IdCardReason.OFFLINE.value)
                return [self._presented_event(gone), *self._lost(link)]
            return [self._presented_event(result)]
        except OSError:  # pyserial's SerialException is one: the device went away
            if self._stopping():
                raise _Stopping from None
            return self._lost(link)

    def _check_sam(self, link: serial.Serial) -> None:
        try:
            answer = self._exchange(link, Command.SAM_STATUS, self._answer_timeout_s)
        except (DeviceTimeout, FrameError) as exc:
            self._set_state(DeviceState.fault(exc.reason))
            return
        if answer.ok:
            self._sam_ok = True
            log.info("idcard: SAM ok")
            self._set_state(DeviceState.ok())
            return
        error = error_for_status(answer.sw3)
        log.warning("idcard: SAM status %#04x", answer.sw3)
        reason = error.reason if isinstance(error, SamFault) else IdCardReason.SAM_FAULT.value
        self._set_state(DeviceState.fault(reason))

    def _find(self, link: serial.Serial) -> bool | None:
        """True: a card is in the field; False: none; None: the module failed (state set)."""
        try:
            answer = self._exchange(link, Command.FIND, self._answer_timeout_s)
        except (DeviceTimeout, FrameError) as exc:
            self._wire_failed(exc)
            return None
        if answer.sw3 == Status.FIND_OK:
            self._answered()
            return True
        if answer.sw3 == Status.NO_CARD:
            self._answered()
            return False
        error = error_for_status(answer.sw3)
        log.warning("idcard: find answered %#04x", answer.sw3)
        if isinstance(error, SamFault):
            self._sam_ok = False
            self._set_state(DeviceState.fault(error.reason))
            return None
        if isinstance(error, CardError):
            self._answered()
            return False  # a card the module could not take hold of: as good as none
        self._set_state(DeviceState.fault(error.reason))
        return None

    def _wait_for_card(self, link: serial.Serial, deadline: float) -> None:
        while True:
            answer = self._exchange(link, Command.FIND, self._answer_timeout_s)
            if answer.sw3 == Status.FIND_OK:
                return
            if answer.sw3 != Status.NO_CARD:
                raise error_for_status(answer.sw3)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceTimeout("no card presented", reason=IdCardReason.NO_CARD.value)
            time.sleep(min(self._poll_s, remaining))

    def _select_and_read(self, link: serial.Serial) -> CardHolder:
        """Select and read the card find has just seen; raises the typed errors (OSError too)."""
        try:
            selected = self._exchange(link, Command.SELECT, self._answer_timeout_s)
            if not selected.ok:
                raise error_for_status(selected.sw3)
            answer = self._exchange(link, Command.READ_TEXT_PHOTO, self._read_timeout_s)
        except DeviceTimeout as exc:
            if exc.reason == IdCardReason.ANSWER_CUT_OFF:
                self._set_state(DeviceState.degraded(IdCardReason.READ_ERROR))
                raise CardReadFailed(
                    "answer cut off", reason=IdCardReason.ANSWER_CUT_OFF.value
                ) from None
            self._wire_failed(exc)
            raise
        except FrameError:
            self._set_state(DeviceState.degraded(IdCardReason.READ_ERROR))
            raise
        except SamFault as exc:
            self._sam_ok = False
            self._set_state(DeviceState.fault(exc.reason))
            raise
        # A well-formed read answer, whatever the card held: the wire works again.
        if self.state() == DeviceState.degraded(IdCardReason.READ_ERROR):
            self._set_state(DeviceState.ok())
        if answer.sw3 in (Status.SAM_SELF_TEST_FAILED, Status.SAM_NOT_AUTHORISED):
            self._sam_ok = False
            self._set_state(DeviceState.fault(error_for_status(answer.sw3).reason))
        log.info("idcard: read answered %#04x, %d payload bytes", answer.sw3, len(answer.payload))
        return holder_from_read_answer(answer)

    def _exchange(self, link: serial.Serial, command: Command, timeout_s: float) -> Answer:
        """Send ``command`` and wait for its answer. A damaged answer, or the module saying our
        frame arrived damaged, gets one resend; a second damaged answer raises FrameError."""
        frame = command_frame(command)
        problem = FrameProblemKind.BAD_CHECKSUM
        for attempt in range(2):
            # A late answer to an earlier command (timed out) must not pass for this one's.
            try:
                link.reset_input_buffer()
            except termios.error as exc:  # tcflush on a hung-up pty: not an OSError
                raise serial.SerialException(f"flush failed: {exc.args[0]}") from None
            self._framer.reset()
            try:
                link.write(frame)
            except serial.SerialTimeoutException:
                # The pty or UART does not drain: nobody is at the far end.
                raise DeviceTimeout(
                    f"{command.name} not sent", reason=IdCardReason.NO_ANSWER.value
                ) from None
            outcome = self._await_answer(link, command, timeout_s)
            if isinstance(outcome, Answer):
                if outcome.sw3 in _RESEND_STATUSES and attempt == 0:
                    log.warning("idcard: %s answered %#04x, resending", command.name, outcome.sw3)
                    continue
                return outcome
            problem = outcome
            log.warning("idcard: %s answer damaged (%s)", command.name, problem.value)
        raise FrameError(f"{command.name} answer damaged", reason=problem.value)

    def _await_answer(
        self, link: serial.Serial, command: Command, timeout_s: float
    ) -> Answer | FrameProblemKind:
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() >= deadline:
                cut_off = self._framer.pending > 0
                reason = IdCardReason.ANSWER_CUT_OFF if cut_off else IdCardReason.NO_ANSWER
                log.warning(
                    "idcard: %s: %s (%d bytes pending)",
                    command.name,
                    reason.value,
                    self._framer.pending,
                )
                raise DeviceTimeout(f"{command.name}: {reason.value}", reason=reason.value)
            data = link.read(1)
            if self._stopping():
                raise _Stopping
            if not data:
                continue
            data += link.read(link.in_waiting)
            problem: FrameProblemKind | None = None
            for item in self._framer.feed(data):
                if isinstance(item, Answer):
                    return item  # an answer in the same read wins over noise before it
                if item.kind is FrameProblemKind.SKIPPED:
                    log.debug("idcard: skipped %d bytes of noise", item.size)
                elif problem is None:
                    problem = item.kind
            if problem is not None:
                return problem

    # --- the port ---------------------------------------------------------------------------------

    def _connect(self) -> serial.Serial:
        """Open the port or raise DeviceUnavailable with the reason; no state change."""
        try:
            return open_exclusive(self._path, self._baudrate,
                                  min(_TICK_S, self._answer_timeout_s), self._answer_timeout_s)
        except (OSError, ValueError) as exc:
            reason = open_failure(exc, seen=self._seen, log=log)
            raise DeviceUnavailable("cannot open the reader's port", reason=reason) from None

    def _open(self) -> None:
        """Open the port for the thread (under _io_lock) and set the state."""
        try:
            link = self._connect()
        except DeviceUnavailable as exc:
            self._set_state(DeviceState.fault(exc.reason))
            return
        self._framer.reset()  # whatever was half-read before belongs to no answer now
        self._sam_ok = False
        with self._lock:
            self._link = link
        self._seen = True
        self._set_state(DeviceState.degraded(IdCardReason.CHECKING))

    def _lost(self, link: serial.Serial | None) -> list[Callable[[], None]]:
        """The port broke: close it, and report a presented card as gone (a replugged module
        sees whatever lies on it afresh)."""
        self._drop_link(link)
        if not self._card_reported:
            return []
        self._card_reported = False
        return [self._removed_event()]

    def _drop_link(self, link: serial.Serial | None) -> None:
        with self._lock:
            if self._link is link:
                self._link = None
        if link is not None:
            _close_quietly(link)
        self._framer.reset()
        self._sam_ok = False
        self._set_state(DeviceState.fault(IdCardReason.OFFLINE))

    def _close(self) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            _close_quietly(link)

    # --- state and events -------------------------------------------------------------------------

    def _wire_failed(self, exc: DeviceError) -> None:
        if exc.reason == IdCardReason.NO_ANSWER:
            self._sam_ok = False  # ask the SAM again once the module answers
        self._set_state(DeviceState.fault(exc.reason))

    def _answered(self) -> None:
        """A well-formed answer: faults of the wire are over (a read error stays until a read)."""
        if self.state().health is Health.FAULT:
            self._set_state(DeviceState.ok())

    def _presented_event(self, result: CardHolder | DeviceError) -> Callable[[], None]:
        callback = self._on_presented

        def event() -> None:
            if callback is not None and not self._stop.is_set():
                _call_safely("on_presented", lambda: callback(result))

        return event

    def _removed_event(self) -> Callable[[], None]:
        callback = self._on_removed

        def event() -> None:
            if callback is not None and not self._stop.is_set():
                _call_safely("on_removed", callback)

        return event

    def _set_state(self, state: DeviceState) -> None:
        with self._lock:
            previous, self._state = self._state, state
        if state != previous:
            log.info(
                "idcard reader %s%s",
                state.health.value,
                f" ({state.reason})" if state.reason else "",
            )


def _close_quietly(link: serial.Serial) -> None:
    try:
        link.close()
    except OSError:
        log.debug("idcard port close failed", exc_info=True)

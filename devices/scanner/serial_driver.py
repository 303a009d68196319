"""Serial QR/barcode scanner over pyserial: a reader thread, framing, reopen after an unplug.

Threads: ``start()`` opens the port once on the caller's thread (a non-blocking open, so the first
``state()`` is already true) and starts one daemon thread, ``scanner-serial``, that reads with a
timeout, frames and classifies codes and calls ``on_code`` from there; a terminal hands the code
on to its main thread itself. When the port breaks (unplugged, a USB reset) the thread closes it
and tries the same path again every ``reopen_s``: give a stable path (/dev/serial/by-id/...,
or a udev symlink), because a USB serial adapter may come back as another ttyUSBn.

State: ok; fault ``absent`` (never found since start), ``offline`` (was there, went away),
``no_permission``, ``busy`` (another process holds the port), ``open_failed``; degraded
``garbled`` after a code was lost to framing (too long, undecodable, cut off) until the next good
code; before start() and after stop(), fault ``offline``. A code's content is never logged, only
its kind and length.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

import serial

from devices.base import DeviceState
from devices.scanner.protocol import (
    DEFAULT_MAX_LENGTH,
    CodeFramer,
    Discarded,
    ScannedCode,
    ScannerReason,
    Terminator,
    classify,
    describe,
)
from devices.serial_link import open_exclusive, open_failure

log = logging.getLogger(__name__)

CodeCallback = Callable[[ScannedCode], None]



def _notify(on_code: CodeCallback, code: ScannedCode) -> None:
    try:
        on_code(code)
    except Exception as exc:  # a listener's bug must not stop the reader
        # Frames only, no message: the exception's text could quote the code.
        log.error(
            "scanner on_code failed: %s\n%s",
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )


class SerialScanner:
    """A QR/barcode scanner on a serial line (RS-232, or USB in CDC/"virtual COM" mode)."""

    def __init__(
        self,
        port: str,
        baudrate: int = 9600,
        *,
        on_code: CodeCallback,
        terminator: Terminator = Terminator.ANY,
        read_timeout_s: float = 0.2,
        reopen_s: float = 1.0,
        max_length: int = DEFAULT_MAX_LENGTH,
        partial_timeout_s: float = 1.0,
    ) -> None:
        """``partial_timeout_s``: a scanner sends a code in one burst (at 9600 baud a byte takes
        about 1 ms), so a partial code followed by this much silence was cut off (unplugged
        mid-code, a lost terminator); it is dropped rather than glued in front of the next one."""
        if not port:
            raise ValueError("scanner port must be a device path")
        if baudrate <= 0:
            raise ValueError("scanner baud rate must be positive")
        if not 0 < read_timeout_s <= 5:
            raise ValueError("read_timeout_s must be in (0, 5]")
        if not 0 < reopen_s <= 60:
            raise ValueError("reopen_s must be in (0, 60]")
        if partial_timeout_s <= 0:
            raise ValueError("partial_timeout_s must be above 0")
        self._port = port
        self._baudrate = baudrate
        self._on_code = on_code
        self._terminator = Terminator(terminator)
        self._read_timeout_s = read_timeout_s
        self._reopen_s = reopen_s
        self._max_length = max_length
        self._partial_timeout_s = partial_timeout_s
        self._framer = CodeFramer(self._terminator, max_length)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _link against stop()'s cancel_read, and _state
        self._link: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._seen = False  # opened at least once since start(): absent becomes offline
        # Nothing is known before start(); report the scanner as not reachable until then.
        self._state = DeviceState.fault(ScannerReason.OFFLINE)

    @property
    def port(self) -> str:
        return self._port

    def state(self) -> DeviceState:
        """The reader's latest view; never touches the wire."""
        with self._lock:
            return self._state

    def start(self) -> None:
        """Open the port (once, now) and start the reader thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("scanner already started")
        self._stop.clear()
        self._seen = False
        self._framer = CodeFramer(self._terminator, self._max_length)
        self._open()
        thread = threading.Thread(target=self._run, name="scanner-serial", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Stop the reader and close the port; returns within about a read timeout."""
        self._stop.set()
        with self._lock:
            thread, link = self._thread, self._link
            if link is not None and link.is_open:
                link.cancel_read()  # wakes the read at once (pyserial's abort pipe)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._read_timeout_s + 2.0)
            if thread.is_alive():
                log.warning("scanner reader did not stop in time")
                return
        self._close()
        with self._lock:
            self._thread = None
            self._state = DeviceState.fault(ScannerReason.OFFLINE)

    # --- the reader thread ------------------------------------------------------------------------

    def _run(self) -> None:
        last_byte_at = time.monotonic()
        while not self._stop.is_set():
            link = self._link
            if link is None:
                if self._stop.wait(self._reopen_s):
                    break
                if self._open() is not None:
                    last_byte_at = time.monotonic()
                continue  # past the stop check again before a read that may take its timeout
            try:
                # One byte with the timeout, then whatever else has arrived: a code is handed on
                # as soon as its terminator is in, not when a larger read times out.
                data = link.read(1)
                if data:
                    data += link.read(link.in_waiting)
            except OSError:  # pyserial's SerialException is one: the device went away
                if self._stop.is_set():
                    break
                self._lost()
                continue
            now = time.monotonic()
            if data:
                last_byte_at = now
                for item in self._framer.feed(data):
                    self._deliver(item)
            elif self._framer.pending and now - last_byte_at > self._partial_timeout_s:
                self._deliver(self._framer.reset())
        self._close()

    def _open(self) -> serial.Serial | None:
        try:
            link = open_exclusive(self._port, self._baudrate, self._read_timeout_s)
        except (OSError, ValueError) as exc:
            self._set_state(DeviceState.fault(open_failure(exc, seen=self._seen, log=log)))
            return None
        self._framer.reset()  # whatever was half-read before belongs to no code now
        with self._lock:
            self._link = link
        self._seen = True
        self._set_state(DeviceState.ok())
        return link

    def _lost(self) -> None:
        self._close()
        if self._framer.reset() is not None:
            log.info("scanner: a code was cut off by the disconnect")
        self._set_state(DeviceState.fault(ScannerReason.OFFLINE))

    def _close(self) -> None:
        with self._lock:
            link, self._link = self._link, None
            if link is not None:
                try:
                    link.close()
                except OSError:
                    log.debug("scanner port close failed", exc_info=True)

    def _deliver(self, item: str | Discarded | None) -> None:
        if item is None or self._stop.is_set():
            return
        if isinstance(item, Discarded):
            log.warning("scanner: code discarded (%s)", item.reason.value)
            self._set_state(DeviceState.degraded(ScannerReason.GARBLED))
            return
        code = classify(item)
        log.info("scanner: %s", describe(code))
        self._set_state(DeviceState.ok())
        _notify(self._on_code, code)

    def _set_state(self, state: DeviceState) -> None:
        with self._lock:
            previous, self._state = self._state, state
        if state != previous:
            log.info(
                "scanner %s%s", state.health.value, f" ({state.reason})" if state.reason else ""
            )

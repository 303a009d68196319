"""Keyboard-wedge (USB HID) scanner read through python-evdev with an exclusive grab.

A wedge scanner is a keyboard to the system: without the grab, every code it reads would also be
typed into whatever has focus on the screen. ``EVIOCGRAB`` makes this reader the only one that
sees its keys, X and the Kivy window included. The device is chosen by its event node (a stable
/dev/input/by-id/...-event-kbd path) or by its name and/or USB vendor:product.

python-evdev is imported only when a wedge scanner is started, so a terminal with a serial
scanner runs without it; without it the state is fault ``driver_missing``.

Threads: one daemon thread, ``scanner-wedge``, as the serial driver's: it waits on the device
with a timeout, decodes keys and calls ``on_code`` from there, and reopens (and grabs again) a
device that was unplugged. States are the serial driver's, plus ``busy`` when another process
holds the grab and ``driver_missing``. A code's content is never logged.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import importlib
import logging
import os
import select
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from devices.base import DeviceState
from devices.scanner.protocol import (
    DEFAULT_KEY_GAP_S,
    DEFAULT_MAX_LENGTH,
    EV_KEY,
    KEY_ENTER,
    Discarded,
    ScannedCode,
    ScannerReason,
    ScannerUnavailable,
    WedgeDecoder,
    classify,
    describe,
)

log = logging.getLogger(__name__)

CodeCallback = Callable[[ScannedCode], None]

_MISSING = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})
_DENIED = frozenset({errno.EACCES, errno.EPERM})


class _InputEvent(Protocol):
    type: int
    code: int
    value: int


class _InputDevice(Protocol):
    """The part of evdev.InputDevice we use (typed here, since evdev is optional)."""

    fd: int
    name: str

    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...
    def read(self) -> Iterator[_InputEvent]: ...
    def capabilities(self) -> dict[int, list[int]]: ...


def _load_evdev() -> Any:
    try:
        return importlib.import_module("evdev")
    except ImportError as exc:
        raise ScannerUnavailable(
            "python-evdev is not installed", reason=ScannerReason.DRIVER_MISSING
        ) from exc


def _failure(exc: OSError, seen: bool) -> ScannerUnavailable:
    if exc.errno in _MISSING:
        reason = ScannerReason.OFFLINE if seen else ScannerReason.ABSENT
    elif exc.errno in _DENIED:
        reason = ScannerReason.NO_PERMISSION
    elif exc.errno == errno.EBUSY:
        reason = ScannerReason.BUSY  # EVIOCGRAB: someone else holds the grab
    else:
        reason = ScannerReason.OPEN_FAILED  # e.g. ENOTTY: not an event device
    return ScannerUnavailable(f"scanner cannot be opened ({exc.errno})", reason=reason)


def _close_quietly(device: _InputDevice) -> None:
    with contextlib.suppress(OSError):
        device.close()


class WedgeScanner:
    """A keyboard-wedge scanner, grabbed exclusively. Give ``path``, or ``name`` and/or
    ``vendor_id`` with ``product_id`` (the first matching event node that has an Enter key)."""

    def __init__(
        self,
        *,
        on_code: CodeCallback,
        path: str | None = None,
        name: str | None = None,
        vendor_id: int | None = None,
        product_id: int | None = None,
        read_timeout_s: float = 0.2,
        reopen_s: float = 1.0,
        max_length: int = DEFAULT_MAX_LENGTH,
        key_gap_s: float = DEFAULT_KEY_GAP_S,
        input_dir: str = "/dev/input",
    ) -> None:
        if path is None and name is None and vendor_id is None:
            raise ValueError("a wedge scanner needs a path, a name or a vendor:product")
        if (vendor_id is None) != (product_id is None):
            raise ValueError("vendor_id and product_id go together")
        if not 0 < read_timeout_s <= 5:
            raise ValueError("read_timeout_s must be in (0, 5]")
        if not 0 < reopen_s <= 60:
            raise ValueError("reopen_s must be in (0, 60]")
        self._path = path
        self._name = name
        self._usb_id = (vendor_id, product_id) if vendor_id is not None else None
        self._on_code = on_code
        self._read_timeout_s = read_timeout_s
        self._reopen_s = reopen_s
        self._input_dir = input_dir
        self._decoder = WedgeDecoder(max_length, key_gap_s)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._device: _InputDevice | None = None  # only the reader thread touches it once started
        self._wake: tuple[int, int] | None = None  # a pipe that wakes the reader for stop()
        self._seen = False
        self._state = DeviceState.fault(ScannerReason.OFFLINE)

    @property
    def unknown_keys(self) -> int:
        """Keys dropped because they type no character we know (see WedgeDecoder)."""
        return self._decoder.unknown_keys

    def state(self) -> DeviceState:
        with self._lock:
            return self._state

    def start(self) -> None:
        """Open and grab the device (once, now) and start the reader thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("scanner already started")
        self._stop.clear()
        self._seen = False
        self._wake = os.pipe()
        self._open()
        thread = threading.Thread(target=self._run, name="scanner-wedge", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()

    def stop(self) -> None:
        """Stop the reader, release the grab and close the device; bounded."""
        self._stop.set()
        with self._lock:
            thread, wake = self._thread, self._wake
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._read_timeout_s + 2.0)
            if thread.is_alive():
                log.warning("wedge scanner reader did not stop in time")
                return  # its fds stay with it; closing them now could hit reused numbers
        self._close()
        with self._lock:
            self._thread, self._wake = None, None
            self._state = DeviceState.fault(ScannerReason.OFFLINE)
        if wake is not None:
            for fd in wake:
                os.close(fd)

    # --- the reader thread ------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake[0]
        while not self._stop.is_set():
            device = self._device
            if device is None:
                if self._stop.wait(self._reopen_s):
                    break
                self._open()
                continue  # past the stop check again before waiting on the device
            try:
                ready, _, _ = select.select([device.fd, wake], [], [], self._read_timeout_s)
                if device.fd not in ready:
                    continue
                events = list(device.read())
            except BlockingIOError:
                continue  # woken, but the events were already read
            except OSError:  # ENODEV: unplugged
                if self._stop.is_set():
                    break
                self._lost()
                continue
            now = time.monotonic()  # not the events' stamps: those are wall-clock time by default
            for event in events:
                if event.type == EV_KEY:
                    self._deliver(self._decoder.feed(event.code, event.value, now))
        self._close()

    def _open(self) -> _InputDevice | None:
        try:
            device = self._find()
            try:
                device.grab()
            except OSError as exc:
                _close_quietly(device)
                raise _failure(exc, self._seen) from exc
        except ScannerUnavailable as exc:
            if exc.reason == ScannerReason.OPEN_FAILED:
                log.debug("wedge scanner open failed: %s", exc)
            self._set_state(DeviceState.fault(exc.reason))
            return None
        self._decoder.reset()
        self._decoder.release_all()
        with self._lock:
            self._device = device
        self._seen = True
        self._set_state(DeviceState.ok())
        return device

    def _find(self) -> _InputDevice:
        evdev = _load_evdev()
        if self._path is not None:
            try:
                return cast(_InputDevice, evdev.InputDevice(self._path))
            except OSError as exc:
                raise _failure(exc, self._seen) from exc
        # Every event node, not evdev.list_devices(): that skips nodes we may only read.
        for path in sorted(glob.glob(os.path.join(self._input_dir, "event*"))):
            try:
                device = cast(_InputDevice, evdev.InputDevice(path))
            except OSError:
                continue  # gone between the listing and the open, or not ours to read
            if self._matches(device):
                return device
            _close_quietly(device)
        missing = errno.ENOENT
        raise _failure(OSError(missing, os.strerror(missing)), self._seen)

    def _matches(self, device: _InputDevice) -> bool:
        if self._name is not None and device.name != self._name:
            return False
        if self._usb_id is not None:
            info = getattr(device, "info", None)
            if info is None or (info.vendor, info.product) != self._usb_id:
                return False
        # A scanner often shows several nodes (keyboard, consumer keys); the keyboard types Enter.
        return KEY_ENTER in device.capabilities().get(EV_KEY, [])

    def _lost(self) -> None:
        self._close()
        if self._decoder.reset() is not None:
            log.info("wedge scanner: a code was cut off by the disconnect")
        self._set_state(DeviceState.fault(ScannerReason.OFFLINE))

    def _close(self) -> None:
        with self._lock:
            device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(OSError):
                device.ungrab()  # EINVAL/ENODEV if already gone: the kernel dropped the grab
            _close_quietly(device)

    def _deliver(self, item: str | Discarded | None) -> None:
        if item is None or self._stop.is_set():
            return
        if isinstance(item, Discarded):
            log.warning("wedge scanner: code discarded (%s)", item.reason.value)
            self._set_state(DeviceState.degraded(ScannerReason.GARBLED))
            return
        code = classify(item)
        log.info("wedge scanner: %s", describe(code))
        self._set_state(DeviceState.ok())
        try:
            self._on_code(code)
        except Exception as exc:  # a listener's bug must not stop the reader
            log.error(
                "wedge scanner on_code failed: %s\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )

    def _set_state(self, state: DeviceState) -> None:
        with self._lock:
            previous, self._state = self._state, state
        if state != previous:
            log.info(
                "wedge scanner %s%s",
                state.health.value,
                f" ({state.reason})" if state.reason else "",
            )

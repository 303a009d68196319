"""A CPython stand-in for MicroPython's ``machine`` on an RP2040, wired to the simulator.

Pins, the ADC and the UART of one virtual board: input levels and ADC readings come from the
controlling process as lines on stdin (``in PIN LEVEL``, ``adc CHANNEL RAW``, ``hang``); output
pin changes go back to it as lines (``out PIN LEVEL``), along with ``wdt`` when the firmware's own
watchdog fires. The UART is the pty master the controller handed down. ``install()`` sets it up;
the board process then puts this module in ``sys.modules["machine"]``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import NoReturn

# rp2's values of machine.reset_cause().
PWRON_RESET = 1
WDT_RESET = 3
SOFT_RESET = 5  # not on rp2 (a soft reset keeps the cause); here for the simulator's "soft"

EXIT_WDT = 70  # the board process's exit status when machine.WDT fired
EXIT_RESET = 71  # ... when the firmware called machine.reset()


class _Board:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uart_fd = -1
        self.reset_cause = PWRON_RESET
        self.inputs: dict[int, int] = {}
        self.outputs: dict[int, int] = {}
        self.adc: dict[int, int] = {}
        self.hung = False
        self.report: Callable[[str], None] = lambda line: None


_board = _Board()


def install(
    *,
    uart_fd: int,
    reset_cause: int,
    inputs: dict[int, int],
    adc: dict[int, int],
    report: Callable[[str], None],
) -> None:
    """Wire this process's board: the UART's fd, the world as it is at power-on, and where to
    report outputs; starts the thread that reads the controller's commands from stdin."""
    _board.uart_fd = uart_fd
    _board.reset_cause = reset_cause
    _board.inputs = dict(inputs)
    _board.adc = dict(adc)
    _board.report = report
    threading.Thread(target=_read_commands, name="board-control", daemon=True).start()


def _read_commands() -> None:
    for line in sys.stdin:
        words = line.split()
        with _board.lock:
            if len(words) == 3 and words[0] == "in":
                _board.inputs[int(words[1])] = int(words[2])
            elif len(words) == 3 and words[0] == "adc":
                _board.adc[int(words[1])] = int(words[2])
            elif words == ["hang"]:
                _board.hung = True
    # The controlling process is gone: so is the board.
    os._exit(0)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(
        self, id: int, mode: int = -1, pull: int = -1, *, value: int | None = None
    ) -> None:
        self.id = id
        self.mode = mode
        if mode == Pin.IN and pull == Pin.PULL_UP:
            with _board.lock:
                _board.inputs.setdefault(id, 1)  # nothing attached: the pull-up wins
        if value is not None:
            self.value(value)

    def value(self, level: int | None = None) -> int:
        with _board.lock:
            if level is None:
                if self.mode == Pin.OUT:
                    return _board.outputs.get(self.id, 0)
                return _board.inputs.get(self.id, 0)
            level = 1 if level else 0
            changed = _board.outputs.get(self.id) != level
            _board.outputs[self.id] = level
        if changed:
            _board.report(f"out {self.id} {level}")
        return level


class ADC:
    def __init__(self, channel: int | Pin) -> None:
        self.channel = channel if isinstance(channel, int) else channel.id

    def read_u16(self) -> int:
        with _board.lock:
            return _board.adc.get(self.channel, 0)


class UART:
    """Non-blocking both ways, as the RP2040's: a write with nobody listening is lost, not stuck."""

    def __init__(self, id: int, baudrate: int = 115200, **_settings: object) -> None:
        self.id = id
        self.baudrate = baudrate
        self._fd = _board.uart_fd
        os.set_blocking(self._fd, False)
        # Bytes sent to the board while it was in reset never reached its UART.
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._fd, 4096):
                pass

    def fileno(self) -> int:  # select.poll() on CPython takes any object with fileno()
        return self._fd

    def any(self) -> int:
        try:
            raw = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("I", raw)[0])

    def read(self, nbytes: int = 4096) -> bytes | None:
        try:
            data = os.read(self._fd, nbytes)
        except (BlockingIOError, OSError):
            return None
        return data or None

    def write(self, data: bytes) -> int:
        try:
            return os.write(self._fd, data)
        except (BlockingIOError, OSError):
            return 0  # the far end's buffer is full (nobody reads): dropped, as on the wire


class WDT:
    """The RP2040 watchdog: not fed within ``timeout`` ms, the board resets (the process exits
    with EXIT_WDT and the controller starts it again with reset cause WDT_RESET)."""

    def __init__(self, id: int = 0, timeout: int = 5000) -> None:
        self._timeout_s = timeout / 1000
        self._fed = time.monotonic()
        # Not a daemon: if the firmware dies of an exception, the process lives on until this
        # fires, as a Pico sitting in the REPL does until its watchdog resets it.
        threading.Thread(target=self._watch, name="board-wdt").start()

    def feed(self) -> None:
        while _board.hung:  # "hang": the firmware stops here; the watchdog will notice
            time.sleep(1)
        self._fed = time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(0.05)
            if time.monotonic() - self._fed > self._timeout_s:
                _board.report("wdt")
                os._exit(EXIT_WDT)


def reset_cause() -> int:
    return _board.reset_cause


def reset() -> NoReturn:
    _board.report("reset")
    os._exit(EXIT_RESET)


def unique_id() -> bytes:
    return b"\xe6\x61\x00\x00\x00\x00\x00\x01"

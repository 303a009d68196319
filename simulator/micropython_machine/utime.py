"""MicroPython's ``time`` extras (ticks_ms, ticks_diff, sleep_ms, ...) for CPython's ``time``."""

from __future__ import annotations

import time

TICKS_PERIOD = 1 << 30  # rp2's ticks_ms wraps here
# Start 5 s before the wrap, so every simulated boot crosses it and firmware that subtracts ticks
# instead of calling ticks_diff breaks in the simulator, not in a cabinet after 12 days.
_OFFSET_MS = TICKS_PERIOD - 5_000
_START = time.monotonic_ns()


def ticks_ms() -> int:
    return ((time.monotonic_ns() - _START) // 1_000_000 + _OFFSET_MS) % TICKS_PERIOD


def ticks_us() -> int:
    return ((time.monotonic_ns() - _START) // 1_000 + _OFFSET_MS * 1000) % TICKS_PERIOD


def ticks_add(ticks: int, delta: int) -> int:
    return (ticks + delta) % TICKS_PERIOD


def ticks_diff(ticks1: int, ticks2: int) -> int:
    half = TICKS_PERIOD // 2
    return ((ticks1 - ticks2 + half) % TICKS_PERIOD) - half


def sleep_ms(ms: int) -> None:
    time.sleep(max(0, ms) / 1000)


def sleep_us(us: int) -> None:
    time.sleep(max(0, us) / 1_000_000)


def install() -> None:
    """Add the extras to this process's ``time`` module (a superset: CPython code keeps working)."""
    for name in ("ticks_ms", "ticks_us", "ticks_add", "ticks_diff", "sleep_ms", "sleep_us"):
        setattr(time, name, globals()[name])

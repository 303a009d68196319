"""Run a function on Kivy's main thread from any thread and wait for its result, with a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kivy.clock import Clock

T = TypeVar("T")

# Re-check a not-yet-ready condition on a later frame, not in the same Clock tick.
_RECHECK_S = 1 / 120


class MainThreadTimeoutError(TimeoutError):
    """The main thread did not run the call in time (busy, blocked, or not running yet)."""


class MainThread:
    """Knows which thread runs Kivy; ``call`` marshals work onto it through the Clock."""

    def __init__(self) -> None:
        self._ident: int | None = None

    def claim(self) -> None:
        """Record the calling thread as the UI thread (called where the Kivy app runs)."""
        self._ident = threading.get_ident()

    def is_current(self) -> bool:
        return threading.get_ident() == (self._ident or threading.main_thread().ident)

    def call(
        self,
        fn: Callable[[], T],
        timeout_s: float,
        ready: Callable[[], bool] | None = None,
    ) -> T:
        """Run ``fn`` on the main thread once ``ready()`` holds (checked each frame); return its
        result or re-raise its exception here. On the main thread itself it runs at once, as
        waiting there for a later frame would deadlock."""
        if self.is_current():
            return fn()
        box: dict[str, Any] = {}
        done = threading.Event()
        abandoned = threading.Event()

        def run(_dt: float) -> None:
            if abandoned.is_set():
                return
            if ready is not None and not ready():
                Clock.schedule_once(run, _RECHECK_S)
                return
            try:
                box["value"] = fn()
            except Exception as exc:  # handed back to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        Clock.schedule_once(run, 0)
        if not done.wait(timeout_s):
            abandoned.set()  # the caller gave up: don't act later on a stale request
            raise MainThreadTimeoutError(f"main thread did not answer within {timeout_s} s")
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

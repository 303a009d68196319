"""The heap helpers talk to glibc for real and are harmless to call at any time."""

import ctypes
import ctypes.util
import gc
import weakref
from collections.abc import Callable

import pytest

from terminal.memory import (
    COLLECT_DELAY_S,
    TRIM_DELAY_S,
    limit_malloc_arenas,
    tidy_when_idle,
    trim_heap,
)


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")
def test_arena_limit_is_accepted_by_glibc() -> None:
    assert limit_malloc_arenas(2) is True


def test_going_idle_collects_cycles_at_once_and_trims_later() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    cycle = Cycle()
    ref = weakref.ref(cycle)
    del cycle
    later: list[tuple[float, Callable[[], None]]] = []
    gc.disable()
    try:
        tidy_when_idle(lambda delay, call: later.append((delay, call)))
        assert ref() is not None, "nothing is collected before attract's first frame"
        [(delay, collect)] = later
        assert delay == COLLECT_DELAY_S
        later.clear()
        collect()
        assert ref() is None, "a reference cycle left by a session must be collected"
    finally:
        gc.enable()
    assert later == [(TRIM_DELAY_S, trim_heap)], "the trim waits for Kivy to drop the textures"
    trim_heap()
    trim_heap()  # harmless at any time, and repeatable

"""The heap helpers talk to glibc for real and are harmless to call at any time."""

import ctypes
import ctypes.util
import gc
import weakref

import pytest

from terminal.memory import limit_malloc_arenas, release_free_memory


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library found")
def test_arena_limit_is_accepted_by_glibc() -> None:
    assert limit_malloc_arenas(2) is True


def test_release_runs_the_collector_and_survives_repeats() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self


    cycle = Cycle()
    ref = weakref.ref(cycle)
    del cycle
    gc.disable()
    try:
        release_free_memory()
        release_free_memory()
    finally:
        gc.enable()
    assert ref() is None, "a reference cycle left by a session must be collected"

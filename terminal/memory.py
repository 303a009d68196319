"""Keeps the terminal's heap small over months of sessions: fewer malloc arenas, tidied when idle.

glibc gives every thread that allocates its own arena (up to 8 per core); with a dozen device,
MQTT and HTTP threads each arena keeps freed memory for itself, and a long-running appliance
grows without leaking. Two arenas are plenty for threads that mostly wait on I/O.

Kivy widgets hold reference cycles (parent and children, property bindings), so a screen that is
replaced is freed only by the cyclic garbage collector, and its label textures and pixel buffers
with it. A session's screens survive young-generation collections and may wait a long time for a
full one: measured at 1920x1080, about 22 MB of them were still held once attract was back. So
when the terminal becomes idle again, the garbage is collected at once; Kivy deletes the textures
of what was collected at its next frame, and after that the free heap pages are handed back to the
system. (This is about size, not secrecy: freed memory is not scrubbed.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time

from terminal.controller import Schedule

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# Buffers at least this big get pages of their own, given back the moment they are freed. glibc
# raises the threshold by itself after each large free (up to 32 MB), and then a scanned page's
# 24 MB of decoded pixels land in the heap, where one small block allocated after them pins them.
MMAP_THRESHOLD_BYTES = 1 << 20

# From the collection until the heap is trimmed: Kivy releases the collected textures at its next
# frame (about 17 ms at 60 fps); this leaves room for a slow frame or two.
TRIM_DELAY_S = 0.2
# From attract being shown until the collection: its first frame (~17 ms at 60 fps) and a slow one.
COLLECT_DELAY_S = 0.1


def _load_libc() -> ctypes.CDLL | None:
    # Looked up once: find_library runs ldconfig, too slow for the UI thread at every session end.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBC = _load_libc()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Call before starting threads; False where the C library is not glibc. Also fixes the
    mmap threshold (``MMAP_THRESHOLD_BYTES``), so large buffers never stay in the heap."""
    if _LIBC is None or not hasattr(_LIBC, "mallopt"):
        return False
    fixed = bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas)) and fixed


def trim_heap() -> None:
    """Hand free heap pages back to the system (a no-op where the C library is not glibc)."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def tidy_when_idle(schedule: Schedule) -> None:
    """Back at attract: once its first frame is on the glass, collect the session's screens,
    then trim once their textures are gone."""
    # Not now: the attract screen was just built and its first frame waits for this call to
    # return; a full collection here held the frame back by up to 150 ms (bench tap).
    schedule(COLLECT_DELAY_S, lambda: collect_and_trim(schedule))


def collect_and_trim(schedule: Schedule) -> None:
    """Collect the session's unreachable objects now, and trim the heap a moment later."""
    started = time.perf_counter()
    freed = gc.collect()
    log.debug("idle: %d unreachable objects collected in %.0f ms", freed,
              (time.perf_counter() - started) * 1000)
    schedule(TRIM_DELAY_S, trim_heap)

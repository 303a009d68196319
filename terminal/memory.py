"""Keeps the terminal's heap small over months of sessions: fewer malloc arenas, trimmed often.

glibc gives every thread that allocates its own arena (up to 8 per core); with a dozen device,
MQTT and HTTP threads each arena keeps freed memory for itself, and a long-running appliance
grows without leaking. Two arenas are plenty for threads that mostly wait on I/O. After each
session the freed memory is collected and handed back to the system, which also means the objects
that held a resident's data do not linger in freed heap pages longer than needed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Call before starting threads; False where the C library is not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Collect garbage and return free heap pages to the system (after a session ends)."""
    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)

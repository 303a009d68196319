"""Keeps the terminal's heap small over months of sessions: fewer malloc arenas, trimmed often.

glibc gives every thread that allocates its own arena (up to 8 per core); with a dozen device,
MQTT and HTTP threads each arena keeps freed memory for itself, and a long-running appliance
grows without leaking. Two arenas are plenty for threads that mostly wait on I/O. After each
session the garbage is collected and free heap pages are handed back to the system. (This is
about size, not secrecy: freed memory is not scrubbed.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

_M_ARENA_MAX = -8  # from glibc's malloc.h


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
    """Call before starting threads; False where the C library is not glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallopt"):
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Collect garbage and return free heap pages to the system (after a session ends)."""
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)

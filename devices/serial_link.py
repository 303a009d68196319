"""Opening a device's serial port the same way for every serial device, and naming why it failed.

Shared by the scanner, the ID card reader and the co-processor (devices.scanner, devices.idcard,
devices.controller); not a device kind of its own. Reasons are the DeviceState reasons all three
report: ``absent`` (never seen since start), ``offline`` (was there, went away),
``no_permission``, ``busy`` (another process holds it) and ``open_failed``.
"""

from __future__ import annotations

import errno
import logging

import serial

_MISSING = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
_LOCKED = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY})


def open_exclusive(
    path: str, baudrate: int, timeout: float, write_timeout: float | None = None
) -> serial.Serial:
    """The port, opened exclusively: a second reader would steal half of every frame. pyserial
    opens with O_NONBLOCK, so a port whose modem lines are down does not hang here. Raises
    OSError or ValueError (``open_failure`` names them)."""
    return serial.Serial(path, baudrate, timeout=timeout, write_timeout=write_timeout,
                         exclusive=True)


def open_failure(exc: OSError | ValueError, *, seen: bool, log: logging.Logger) -> str:
    """Why ``open_exclusive`` failed, as a state reason; ``seen``: the port was open before."""
    code = getattr(exc, "errno", None)
    if code in _MISSING:
        return "offline" if seen else "absent"
    if code in _DENIED:
        return "no_permission"
    if code in _LOCKED:
        return "busy"
    log.debug("serial port open failed: %s", type(exc).__name__)
    return "open_failed"

"""The far end of a serial link for the virtual devices: a raw pty behind a stable symlink.

A virtual scanner, SAM module or co-processor writes on the pty's master; the driver opens
``link``, which points at the slave, as it would open /dev/serial/by-id/... for a USB adapter.
Pulling the cable removes the link and closes the pty (the driver's open port hangs up); plugging
it in again makes a new pty behind the same link.
"""

from __future__ import annotations

import contextlib
import os
import tty
from pathlib import Path


def open_linked_pty(link: Path, *, raw_master: bool = False) -> tuple[int, int, str]:
    """A new raw pty behind ``link`` (swapped in atomically): (master, slave, slave's device).

    The slave is raw before anyone opens it: the default line discipline would echo, and turn
    CR into LF (ICRNL), on the bytes that arrive before the driver sets its own mode. The master
    is non-blocking, or also raw with ``raw_master`` (a board process reads it as a UART)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    if raw_master:
        tty.setraw(master)
    else:
        os.set_blocking(master, False)
    device = os.ttyname(slave)
    staging = link.with_name(f".{link.name}.new")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    staging.symlink_to(device)
    staging.replace(link)  # atomic: the driver never sees a half-made path
    return master, slave, device


def close_linked_pty(link: Path | None, master: int | None, slave: int | None) -> None:
    """Pull the cable: ``link`` goes away, then the master (which hangs up the driver's side),
    then the slave."""
    if link is not None:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
    for fd in (master, slave):
        if fd is not None:
            os.close(fd)

"""Virtual serial scanner: the far end of a pty, typing codes as a real scanner sends them.

The driver opens ``path`` as its serial port. ``path`` is a symlink to the pty's slave, as
/dev/serial/by-id/... is to a ttyUSBn: ``unplug()`` removes it and closes the pty (the driver's
open port hangs up, as a pulled USB cable does), ``replug()`` makes a new pty behind the same
path. Run ``python -m simulator.vscanner`` to scan lines typed on stdin.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from simulator.processes import StartsAndStops
from simulator.pty_link import close_linked_pty, open_linked_pty

# What each scanner "suffix" setting sends after a code.
TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}

# About 1 ms a byte at 9600 baud 8N1; a real scanner's UART delivers a code in pieces this size.
SERIAL_CHUNK = 16
SERIAL_GAP_S = 0.016


class ScannerUnplugged(RuntimeError):
    """The virtual scanner is unplugged (or not started): nothing can be sent."""


class VirtualScanner(StartsAndStops):
    """A scanner at the far end of a pty. Thread-safe: the panel may scan while a test unplugs."""

    def __init__(
        self,
        terminator: bytes = b"\r",
        *,
        directory: str | Path | None = None,
        name: str = "scanner",
        write_timeout_s: float = 2.0,
    ) -> None:
        if terminator not in TERMINATORS.values():
            raise ValueError("terminator must be CR, LF or CR LF")
        self.terminator = terminator
        self._own_directory = directory is None
        self._directory = Path(directory) if directory is not None else None
        self._name = name
        self._write_timeout_s = write_timeout_s
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None  # kept open so the pty lives while the driver reopens
        self._device = ""

    @property
    def path(self) -> str:
        """The stable path the driver opens (a symlink to the current pty); set by start()."""
        if self._directory is None:
            raise RuntimeError("virtual scanner not started")
        return str(self._directory / self._name)

    @property
    def device(self) -> str:
        """The pty slave behind ``path`` now (/dev/pts/N); "" while unplugged."""
        with self._lock:
            return self._device

    @property
    def plugged(self) -> bool:
        with self._lock:
            return self._master is not None

    def start(self) -> VirtualScanner:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="kiosk-vscanner-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        self.replug()
        return self

    def stop(self) -> None:
        self.unplug()

    def close(self) -> None:
        self.stop()
        if self._own_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def replug(self) -> None:
        """Plug the scanner in: a new pty behind ``path`` (no-op if plugged)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave, device = open_linked_pty(Path(self.path))
            self._master, self._slave, self._device = master, slave, device

    def unplug(self) -> None:
        """Pull the cable: ``path`` goes away and the driver's open port hangs up."""
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
            self._device = ""
            close_linked_pty(Path(self.path) if self._directory is not None else None,
                             master, slave)

    def scan(
        self,
        code: str,
        encoding: str = "utf-8",
        *,
        chunk_size: int | None = None,
        gap_s: float = 0.0,
    ) -> None:
        """Send ``code`` and the terminator as a scanner does on a read; ``chunk_size`` and
        ``gap_s`` pace it like a slow UART (``chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S``)."""
        self.send(code.encode(encoding) + self.terminator, chunk_size=chunk_size, gap_s=gap_s)

    def send(self, data: bytes, *, chunk_size: int | None = None, gap_s: float = 0.0) -> None:
        """Send raw bytes: line noise, a code cut off without its terminator, a wrong encoding.

        Raises ScannerUnplugged (also when unplugged half-way) or TimeoutError when nobody reads
        and the pty's buffer stays full for ``write_timeout_s``.
        """
        size = chunk_size if chunk_size is not None and chunk_size > 0 else max(1, len(data))
        for offset in range(0, len(data), size):
            if offset and gap_s > 0:
                time.sleep(gap_s)
            self._write(data[offset : offset + size])

    def _write(self, chunk: bytes) -> None:
        deadline = time.monotonic() + self._write_timeout_s
        while chunk:
            with self._lock:
                if self._master is None:
                    raise ScannerUnplugged("virtual scanner is unplugged")
                try:
                    written = os.write(self._master, chunk)
                except BlockingIOError:
                    written = 0
                master = self._master
            chunk = chunk[written:]
            if not chunk:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nobody reads the virtual scanner's port")
            # Outside the lock, so unplug() is not held up by a full buffer.
            with contextlib.suppress(OSError, ValueError):
                select.select([], [master], [], min(remaining, 0.05))


def main(argv: list[str] | None = None) -> int:
    """Scan each line typed on stdin; ``!unplug`` and ``!replug`` pull and plug the cable."""
    parser = argparse.ArgumentParser(prog="python -m simulator.vscanner", description=__doc__)
    parser.add_argument("--terminator", choices=sorted(TERMINATORS), default="cr")
    parser.add_argument("--dir", help="where to put the port's symlink (default: a temp dir)")
    parser.add_argument("--encoding", default="utf-8", help="utf-8 (default) or gb18030")
    args = parser.parse_args(argv)
    with VirtualScanner(TERMINATORS[args.terminator], directory=args.dir) as scanner:
        print(f"Scanner: {scanner.path}", flush=True)
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            try:
                if text == "!unplug":
                    scanner.unplug()
                elif text == "!replug":
                    scanner.replug()
                elif text:
                    scanner.scan(text, args.encoding, chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S)
            except (ScannerUnplugged, TimeoutError) as exc:
                print(f"not sent: {exc}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

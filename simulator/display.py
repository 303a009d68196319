"""A private Xvfb X server of a given size, for GUI tests and the simulator on a headless box."""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from simulator.processes import StartsAndStops, stop_process

X11_SOCKET_DIR = Path("/tmp/.X11-unix")


class DisplayError(RuntimeError):
    """Xvfb is missing, or did not come up in time."""


class VirtualDisplay(StartsAndStops):
    """Xvfb on a free display number; ``start()`` returns ``DISPLAY`` once the server is usable."""

    def __init__(
        self, width: int, height: int, depth: int = 24, *, start_timeout_s: float = 10.0
    ) -> None:
        if width <= 0 or height <= 0 or depth not in (16, 24, 32):
            raise ValueError(f"bad screen geometry {width}x{height}x{depth}")
        self.width, self.height, self.depth = width, height, depth
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._display: str | None = None

    @property
    def display(self) -> str:
        if self._display is None:
            raise DisplayError("the display is not started")
        return self._display

    def start(self) -> str:
        if self._display is not None:
            return self._display
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise DisplayError("Xvfb is not installed (Debian package xvfb)")
        # -displayfd lets Xvfb pick a free display number itself and write it to us once it
        # accepts connections: no race with other tests probing lock files at the same time.
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(
                [
                    xvfb,
                    "-displayfd", str(write_fd),
                    "-screen", "0", f"{self.width}x{self.height}x{self.depth}",
                    "-nolisten", "tcp",
                    "-noreset",
                ],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(write_fd)
            write_fd = -1
            number = self._read_display_number(read_fd)
        except BaseException:
            self.stop()
            raise
        finally:
            if write_fd >= 0:
                os.close(write_fd)
            os.close(read_fd)
        self._display = f":{number}"
        self._wait_for_socket(number)
        return self._display

    def _read_display_number(self, read_fd: int) -> int:
        deadline = time.monotonic() + self._start_timeout_s
        received = b""
        while not received.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise DisplayError("Xvfb did not report a display number in time")
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_fd, 64)
            if not chunk:
                raise DisplayError("Xvfb exited before it was ready")
            received += chunk
        return int(received.strip())

    def _wait_for_socket(self, number: int) -> None:
        socket_path = X11_SOCKET_DIR / f"X{number}"
        deadline = time.monotonic() + self._start_timeout_s
        while not socket_path.exists():
            if time.monotonic() > deadline:
                self.stop()
                raise DisplayError(f"Xvfb socket {socket_path} did not appear")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process, self._display = self._process, None, None
        stop_process(process)


def parse_size(value: str) -> tuple[int, int]:
    """A ``--size`` option: "1920x1080" -> (1920, 1080); argparse shows the error otherwise."""
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, not {value!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, not {value!r}")
    return width, height

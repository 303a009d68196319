"""`python -m bench.hooked_terminal`: the real terminal plus a datagram per screen shown/settled.

Polling the automation API for a screen costs up to a frame (each GET /screen hops onto the UI
thread through Kivy's Clock) and adds load to the very loop being timed, so the identity benchmark
runs the unchanged terminal with this thin hook instead. Each time ``KioskUi.show`` builds a new
screen, when that screen's first frame is drawn, each time a screen has settled (laid out and
stopped moving: what GET /screen waits for), and each time an injected touch is released, it
sends one datagram to $NOTIFY_SOCKET, next to the terminal's own READY=1::

    BENCH_EVENT=shown|settled|frame|released
    BENCH_SCREEN=<screen id>
    BENCH_MONOTONIC_NS=<time.monotonic_ns() in the terminal>

CLOCK_MONOTONIC is one clock for every process on the machine, so the benchmark compares these
stamps with its own ``time.monotonic()`` and the datagram's own delivery time does not count.
Everything else is ``python -m terminal`` as it ships; the hook wraps, never replaces.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import terminal.app
from terminal.__main__ import main as terminal_main
from terminal.ui.boot import KivySettings, configure_kivy

EVENT, SCREEN, MONOTONIC_NS = "BENCH_EVENT", "BENCH_SCREEN", "BENCH_MONOTONIC_NS"


def _sender() -> Callable[[str, str], None]:
    address = os.environ.get("NOTIFY_SOCKET", "")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(event: str, screen: str) -> None:
        stamp = time.monotonic_ns()  # first: the stamp is the moment, not the moment + send
        if not address:
            return
        message = f"{EVENT}={event}\n{SCREEN}={screen}\n{MONOTONIC_NS}={stamp}"
        # The benchmark may have gone away; the terminal must run on regardless.
        with contextlib.suppress(OSError):
            sock.sendto(message.encode(), address)

    return send


def _hook_ui(send: Callable[[str, str], None]) -> None:
    # Imported here: terminal.ui.app imports Kivy, which may only load after configure_kivy.
    from terminal.ui.app import KioskUi  # noqa: PLC0415

    original_init = KioskUi.__init__
    original_show = KioskUi.show

    def init(self: KioskUi, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        inner = self.on_settled

        def settled(screen_id: str) -> None:
            send("settled", screen_id)
            if inner is not None:
                inner(screen_id)

        self.on_settled = settled

    from kivy.core.window import Window  # noqa: PLC0415

    from terminal.ui import touch  # noqa: PLC0415

    def show(self: KioskUi, view: Any) -> None:
        original_show(self, view)
        # A new screen restarts the frame count; a countdown-only update does not.
        if self.frames_since_show == 0:
            screen_id = str(getattr(view.screen, "screen", "?"))
            send("shown", screen_id)

            def first_frame(*_: Any) -> None:
                # Bound handlers run just before the buffer swap: the frame is drawn by now.
                Window.unbind(on_flip=first_frame)
                send("frame", screen_id)

            Window.bind(on_flip=first_frame)

    original_release = touch.release

    def release(touch: touch.InjectedTouch) -> None:
        send("released", "-")  # the finger leaves the glass: where a tap's time starts
        original_release(touch)

    KioskUi.__init__ = init  # type: ignore[method-assign]
    KioskUi.show = show  # type: ignore[method-assign]
    touch.release = release


def install() -> None:
    """Hook the UI class as soon as the terminal has configured Kivy (it imports the UI then)."""
    send = _sender()

    def configure_then_hook(settings: KivySettings) -> None:
        configure_kivy(settings)
        _hook_ui(send)

    # terminal.app looks ``configure_kivy`` up in its own namespace when run() calls it.
    terminal.app.configure_kivy = configure_then_hook  # type: ignore[attr-defined]


if __name__ == "__main__":
    install()
    sys.exit(terminal_main())

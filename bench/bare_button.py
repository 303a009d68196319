"""`python -m bench.bare_button`: the tap baseline, a bare Kivy button whose release swaps in a
new "screen", timed from the touch's release to the first frame that shows the new one.

Touches are injected through the same path as the terminal's automation API
(``terminal.ui.touch``: press, 50 ms, release), and "first frame" means the same as in the
terminal's hook: the first ``on_flip`` after the new widgets went in. The window is configured
exactly as the terminal configures Kivy. After ``--taps`` measured taps (plus two warm-ups) the
figures go to $NOTIFY_SOCKET as one datagram (``BENCH_EVENT=tap_baseline``,
``BENCH_VALUES=<ms,ms,...>``) and the app stops.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from terminal.ui.boot import KivySettings, configure_kivy

WARMUPS = 2
HOLD_S = 0.05  # as the automation API's /touch: a finger rests on the glass a moment
PAUSE_S = 0.3  # between taps, as the terminal's benchmark leaves between its taps


def _send(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        print(message)
        return
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)) as sock:
        sock.sendto(message.encode(), address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare_button", description=__doc__)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--taps", type=int, default=20)
    parser.add_argument("--home", type=Path, required=True, help="Kivy's home directory")
    args = parser.parse_args(argv)
    configure_kivy(KivySettings(home=args.home, size=(args.width, args.height)))
    from kivy.app import App  # noqa: PLC0415
    from kivy.clock import Clock  # noqa: PLC0415
    from kivy.core.window import Window  # noqa: PLC0415
    from kivy.uix.button import Button  # noqa: PLC0415
    from kivy.uix.floatlayout import FloatLayout  # noqa: PLC0415

    from terminal.ui import touch  # noqa: PLC0415

    root = FloatLayout()
    delays_ms: list[float] = []
    released_at = 0.0
    count = 0

    def new_screen(*_: Any) -> None:
        nonlocal count
        count += 1
        root.clear_widgets()
        button = Button(text=f"screen {count}", size_hint=(0.5, 0.3),
                        pos_hint={"center_x": 0.5, "center_y": 0.5})
        button.bind(on_release=new_screen)
        root.add_widget(button)
        Window.bind(on_flip=first_frame)

    def first_frame(*_: Any) -> None:
        Window.unbind(on_flip=first_frame)
        if released_at:
            delays_ms.append((time.monotonic() - released_at) * 1000)
        if len(delays_ms) >= WARMUPS + args.taps:
            measured = delays_ms[WARMUPS:]
            values = ",".join(f"{v:.2f}" for v in measured)
            _send(f"BENCH_EVENT=tap_baseline\nBENCH_VALUES={values}")
            Clock.schedule_once(lambda _dt: App.get_running_app().stop(), 0)
            return
        Clock.schedule_once(press, PAUSE_S)

    def press(*_: Any) -> None:
        down = touch.press(Window.width / 2, Window.height / 2)
        Clock.schedule_once(lambda _dt: release(down), HOLD_S)

    def release(down: touch.InjectedTouch) -> None:
        nonlocal released_at
        released_at = time.monotonic()
        touch.release(down)

    class Bare(App):  # type: ignore[misc]
        def build(self) -> FloatLayout:
            return root

        def on_start(self) -> None:
            new_screen()

    Bare().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

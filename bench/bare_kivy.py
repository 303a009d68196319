"""`python -m bench.bare_kivy`: the start-up baseline, an empty Kivy window sending READY=1.

READY=1 goes to $NOTIFY_SOCKET once the first frame has been drawn. The window is configured
exactly as the terminal configures Kivy (``terminal.ui.boot.configure_kivy``: same size,
borderless, same frame-rate cap, no config file), so the start-up benchmark compares the terminal
with nothing but Kivy itself, started the same way on the same display.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from terminal.sd_notify import Notifier
from terminal.ui.boot import KivySettings, configure_kivy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare_kivy", description=__doc__)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--home", type=Path, required=True, help="Kivy's home directory")
    args = parser.parse_args(argv)
    configure_kivy(KivySettings(home=args.home, size=(args.width, args.height)))
    # Kivy reads its settings at import, so it is imported only now (as in terminal.app).
    from kivy.app import App  # noqa: PLC0415
    from kivy.core.window import Window  # noqa: PLC0415
    from kivy.uix.widget import Widget  # noqa: PLC0415

    notifier = Notifier()

    def first_frame(*_: Any) -> None:
        # Bound handlers run just before the window's own on_flip (the buffer swap): the first
        # frame has been drawn by now, which is what the terminal's READY=1 also promises.
        Window.unbind(on_flip=first_frame)
        notifier.ready("first frame drawn")

    class Bare(App):  # type: ignore[misc]
        def build(self) -> Widget:
            return Widget()

        def on_start(self) -> None:
            Window.bind(on_flip=first_frame)

    Bare().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

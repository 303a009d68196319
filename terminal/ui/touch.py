"""Real touches injected at window pixels, dispatched through Kivy's input path like a finger's."""

from __future__ import annotations

import itertools
from typing import Any

from kivy.base import EventLoop
from kivy.input.motionevent import MotionEvent

_ids = itertools.count(1)


class InjectedTouch(MotionEvent):  # type: ignore[misc]
    """A single-finger touch at a fixed point; Kivy scales ``sx``/``sy`` (0..1) to the window."""

    def __init__(self, sx: float, sy: float) -> None:
        args = {"sx": sx, "sy": sy}
        super().__init__("automation", next(_ids), args, is_touch=True, type_id="touch")

    def depack(self, args: dict[str, Any]) -> None:
        self.sx, self.sy = args["sx"], args["sy"]
        self.profile = ["pos"]
        super().depack(args)


def press(x: float, y: float) -> InjectedTouch:
    """Touch down at (x, y): window pixels, origin top-left as in a screenshot."""
    window = EventLoop.window
    width, height = window.width, window.height
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"({x}, {y}) is outside the {width}x{height} window")
    # Kivy's origin is bottom-left, and it maps sx in 0..1 onto pixels 0..width-1.
    touch = InjectedTouch(x / max(1, width - 1), (height - 1 - y) / max(1, height - 1))
    EventLoop.post_dispatch_input("begin", touch)
    return touch


def release(touch: InjectedTouch) -> None:
    touch.update_time_end()
    EventLoop.post_dispatch_input("end", touch)

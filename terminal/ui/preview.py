"""The document camera's live preview: frames decoded off the main thread, shown in one texture.

``offer`` is the driver's ``on_frame`` (``DocumentCamera.start_preview(preview.offer)``): it runs
on the driver's ``camera-frames`` thread, decodes the JPEG there with Pillow at the smallest DCT
scale that still fills the widget, and leaves the RGB pixels in a one-frame slot. A Clock trigger
(thread-safe, and never queued twice) lets the main thread blit the newest pixels into a texture
made once and reused: no texture per frame, no widget rebuilt, so a touch is handled as fast with
the preview running as without. ``stalled`` turns True when no frame has been shown for
``stall_after_s``; the screen puts its own words over the picture then.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from kivy.clock import Clock
from kivy.graphics import Color, Rectangle
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.widget import Widget

from devices.camera import CameraError
from devices.camera.driver import PreviewFrame
from devices.camera.imaging import decode
from terminal.ui.theme import Rgba

log = logging.getLogger(__name__)

# The platen's colour round the picture and behind it before the first frame: dark, so the
# page stands out as it does on the camera's own glass.
BACKDROP: Rgba = (0.12, 0.13, 0.15, 1.0)
STALL_CHECK_S = 0.25


@dataclass(frozen=True, repr=False)
class _Decoded:
    rgb: bytes
    width: int
    height: int

    def __repr__(self) -> str:
        return f"_Decoded({self.width}x{self.height})"


class CameraPreview(Widget):  # type: ignore[misc]
    """The live picture, scaled to fit the widget and centred on a dark backdrop.

    Main thread: ``start()`` when the scan screen shows, ``stop()`` when it goes. Any other
    thread: ``offer(frame)``. Observable: ``stalled`` (no frame for ``stall_after_s``, True until
    the first frame) and ``frames_shown`` (textures updated, for the benchmark).
    """

    stalled = BooleanProperty(True)
    frames_shown = NumericProperty(0)

    def __init__(self, *, stall_after_s: float = 1.5, backdrop: Rgba = BACKDROP,
                 **kwargs: Any) -> None:
        if not 0.1 <= stall_after_s <= 60:
            raise ValueError("stall_after_s must be in [0.1, 60]")
        super().__init__(**kwargs)
        self.stall_after_s = stall_after_s
        with self.canvas:
            Color(*backdrop)
            self._backdrop = Rectangle(pos=self.pos, size=self.size)
            Color(1, 1, 1, 1)
            self._picture = Rectangle(pos=self.pos, size=(0, 0))
        self._texture: Texture | None = None
        self._lock = threading.Lock()
        self._pending: _Decoded | None = None
        self._accepting = False  # frames offered while stopped are dropped unseen
        self._box = (max(1, int(self.width)), max(1, int(self.height)))  # read by offer()
        self._shown_at = -math.inf
        self._blit = Clock.create_trigger(self._show_pending, 0)
        self._watch: Any = None
        self.bind(pos=self._layout, size=self._layout)

    @property
    def texture(self) -> Texture | None:
        """The one texture the frames go into (None before the first frame)."""
        return self._texture

    # -- main thread --

    def start(self) -> None:
        """Accept frames and watch for a stall; ``stalled`` stays True until the first frame."""
        with self._lock:
            self._accepting = True
            self._pending = None
        self._shown_at = time.monotonic()
        self.stalled = True
        if self._watch is None:
            self._watch = Clock.schedule_interval(self._check_stall, STALL_CHECK_S)

    def stop(self) -> None:
        """Drop frames from now on (a late one from the driver thread included)."""
        with self._lock:
            self._accepting = False
            self._pending = None
        self._blit.cancel()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _show_pending(self, _dt: float) -> None:
        with self._lock:
            decoded, self._pending = self._pending, None
        if decoded is None:
            return
        texture = self._texture
        if texture is None or tuple(texture.size) != (decoded.width, decoded.height):
            # Only on the first frame, or when the camera changes its preview size.
            texture = Texture.create(size=(decoded.width, decoded.height), colorfmt="rgb",
                                     bufferfmt="ubyte")
            texture.flip_vertical()  # Pillow's rows run top to bottom, GL's bottom to top
            texture.mag_filter = "linear"
            texture.min_filter = "linear"
            self._texture = texture
            self._picture.texture = texture
            self._layout()
        texture.blit_buffer(decoded.rgb, colorfmt="rgb", bufferfmt="ubyte")
        self.canvas.ask_update()
        self._shown_at = time.monotonic()
        self.frames_shown += 1
        if self.stalled:
            self.stalled = False

    def _check_stall(self, _dt: float) -> None:
        stalled = time.monotonic() - self._shown_at > self.stall_after_s
        if stalled != self.stalled:
            self.stalled = stalled

    def _layout(self, *_: Any) -> None:
        self._backdrop.pos, self._backdrop.size = self.pos, self.size
        self._box = (max(1, int(self.width)), max(1, int(self.height)))
        texture = self._texture
        if texture is None:
            self._picture.size = (0, 0)
            return
        tw, th = texture.size
        scale = min(self.width / tw, self.height / th)
        w, h = tw * scale, th * scale
        self._picture.size = (w, h)
        self._picture.pos = (self.x + (self.width - w) / 2, self.y + (self.height - h) / 2)

    # -- any other thread --

    def offer(self, frame: PreviewFrame) -> None:
        """Decode ``frame`` here (not on the main thread) and have the main thread show it.

        Only the newest decoded frame waits: one offered before the last was shown replaces it.
        """
        with self._lock:
            if not self._accepting:
                return
        box_w, box_h = self._box
        fit = min(box_w / frame.width, box_h / frame.height, 1.0)
        try:
            # Draft: libjpeg decodes at 1/2, 1/4 or 1/8 scale directly when that still covers
            # the widget, a fraction of the work of a full decode and a smaller upload.
            image = decode(frame.jpeg, draft=(max(1, round(frame.width * fit)),
                                              max(1, round(frame.height * fit))))
        except CameraError:
            log.debug("preview frame #%d could not be decoded", frame.seq)
            return
        decoded = _Decoded(image.tobytes(), image.width, image.height)
        with self._lock:
            if not self._accepting:
                return
            self._pending = decoded
        self._blit()

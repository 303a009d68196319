"""KioskUi: the Kivy shell that shows flow screens and reports touches; renders, holds nothing.

Import only after ``terminal.ui.boot.configure_kivy``: importing Kivy's window creates it.
Threads: ``show`` runs on the main thread only. The helpers marked thread-safe may be called
from any thread (the automation API, tests); they hop onto the main thread through the Clock
and wait, raising ``MainThreadTimeoutError`` if it does not answer.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock, ClockEvent
from kivy.core.window import Window
from kivy.graphics.opengl import GL_RGBA, GL_UNSIGNED_BYTE, glReadPixels
from kivy.uix.floatlayout import FloatLayout
from PIL import Image

from flows.steps import Attract, View
from terminal.config import ASSUMED_MM_PER_PX
from terminal.i18n import DEFAULT_LANGUAGE, Translator
from terminal.presentation import LANG_TOGGLE, SPEAK, ScreenModel, describe_model, present
from terminal.speech import NullSpeech, Speech
from terminal.ui import geometry, theme, touch
from terminal.ui.chrome import Frame
from terminal.ui.fonts import find_cjk_font, register_font
from terminal.ui.mainthread import MainThread
from terminal.ui.screens import AttractBody, CameraFeed, ScanBody
from terminal.ui.text_pixels import release_label_pixels
from terminal.ui.theme import Metrics

# Screens spoken whatever the mode: the one that tells passers-by a card was left behind.
ALWAYS_SPOKEN = frozenset({"card_left"})
# Screens whose words come after the alert tone (terminal.alert_tone), whatever the mode: the
# forgotten card's owner and the staff who must collect it are rarely looking at the screen.
ALERTING = frozenset({"card_left"})
# A card forgotten in an empty hall at night: the tone and the words come again every 30 s while
# the screen stays (long enough for the last words to end and for someone at the door to walk
# back, short enough that the owner is still within earshot), at most 3 more times. Then the
# screen stays silent: a terminal that chimes all night tells nobody anything new, and staff
# learn of the card from the card_left_in_reader event.
ALERT_REPEAT_S = 30.0
ALERT_REPEATS = 3

log = logging.getLogger(__name__)

# A touch that began this soon after a new screen appeared is dropped: a resident's double tap
# must not press whatever button sits under the finger on the next screen.
TOUCH_GUARD_S = 0.3
# A new screen has settled once this many consecutive frames, each sampled right after Kivy ran
# that frame's layout (``Clock.tick_draw``: every -1 trigger, labels' texture sizes and layouts
# cascading to the end) and before it is drawn, agree on every widget's position and size. The
# first sample is of the frame that laid the new screen out; the second of the next frame, where
# whatever that layout scheduled (a scroll view placing its content on the next tick) has run and
# been laid out in turn. Sampled at the start of a frame instead (a Clock event), each sample saw
# the previous frame's layout, and whether the sampling event ran before or after the event that
# built the screen decided whether the first sample was of no layout at all: the rule waited for
# 3 samples, 1 to 2 frames more for the same evidence (identity screen: 25 ms at 60 fps; the
# first screen: ~50 ms, as its second frame is drawn in full under Xvfb).
SETTLE_FRAMES = 2
# A layout that never stops moving is a bug, but it must not hold back everything that waits
# for "settled" (the automation API, the service's READY): give up waiting after this many.
SETTLE_GIVE_UP_FRAMES = 90
DEFAULT_TIMEOUT_S = 5.0


def _after_each_layout(sample: Callable[[], None]) -> Callable[[], None]:
    """Call ``sample`` in every frame once Kivy has laid it out, before it is drawn; returns the
    function that stops it.

    Kivy's event loop runs ``Clock.tick_draw`` (every -1 trigger: texture sizes, layouts, until
    none is left) and then draws; a Clock event of its own only runs at the start of a frame, a
    whole frame after the layout it could see. Wrapping ``tick_draw`` on the Clock instance (a
    documented public method, called by ``EventLoop.idle`` on every frame whether or not anything
    is drawn) is the one place that sees each frame's finished layout.
    """
    tick_draw = Clock.tick_draw

    def tick_draw_then_sample() -> None:
        tick_draw()
        sample()

    Clock.tick_draw = tick_draw_then_sample

    def undo() -> None:
        if Clock.tick_draw is tick_draw_then_sample:
            del Clock.tick_draw  # the instance attribute: Kivy's own method shows through again

    return undo


class _Shell(App):  # type: ignore[misc]
    """The Kivy App: only hands Kivy its root widget and blocks Kivy's own escape routes."""

    title = "Civic kiosk"
    use_kivy_settings = False

    def __init__(self, root: FloatLayout, on_start: Callable[[], None]) -> None:
        super().__init__()
        self._root = root
        self._on_start = on_start

    def build(self) -> FloatLayout:
        return self._root

    def on_start(self) -> None:
        self._on_start()

    def open_settings(self, *largs: Any) -> bool:
        return False  # F1 would open Kivy's settings panel: a way out of the kiosk


class _Backdrop(FloatLayout):  # type: ignore[misc]
    """The window's root: a plain light background behind whatever frame is shown."""

    def __init__(self) -> None:
        super().__init__()
        # The window's clear colour, not a full-window rectangle: the same pixels, and under a
        # software renderer each frame's swap 27.7 -> 20.1 ms (median of ~55 frames).
        Window.clearcolor = theme.BACKGROUND


class KioskUi:
    """Renders ``View``s, owns the display language, and reports taps to ``on_tap``.

    ``on_tap(target_id)`` is called on the main thread for every accepted touch on an enabled
    target except the language switch, which the UI handles itself.
    ``on_settled(screen_id)`` fires once a newly shown screen has finished laying out.
    """

    def __init__(
        self,
        translator: Translator,
        *,
        on_tap: Callable[[str], None] | None = None,
        on_settled: Callable[[str], None] | None = None,
        font_path: Path | None = None,
        touch_guard_s: float = TOUCH_GUARD_S,
        home_language: str = DEFAULT_LANGUAGE,
        speech: Speech | None = None,
        mm_per_px: float = ASSUMED_MM_PER_PX,
    ) -> None:
        self.on_tap: Callable[[str], None] = on_tap or (lambda _target: None)
        self.on_text: Callable[[str, str], None] = lambda _target, _value: None
        # The document camera's live picture for the scan screen; None: no camera here.
        self.camera_feed: CameraFeed | None = None
        self.on_settled = on_settled
        self._translator = translator
        self._touch_guard_s = touch_guard_s
        self._speech: Speech = speech if speech is not None else NullSpeech()
        self._spoken: tuple[str, str, str] | None = None  # (screen, text, language) last said
        self._alert_repeat: ClockEvent | None = None  # the alerting screen's next repetition
        self._alerts_left = 0
        register_font(find_cjk_font(font_path))
        release_label_pixels()
        self._main = MainThread()
        self._root = _Backdrop()
        self._app = _Shell(self._root, self._started)
        self._view: View | None = None
        self._model: ScreenModel | None = None
        self._frame: Frame | None = None
        # The attract screen comes back after every session, the same as it left: its frame is
        # kept and shown again while its model and the metrics are unchanged.
        self._attract: tuple[ScreenModel, Metrics, Frame] | None = None
        self._running = False
        # The language every resident starts in ([display] language); the switch is theirs.
        self._home_language = home_language
        self._language = home_language
        self._metrics_elder = False
        self._mm_per_px = mm_per_px  # the panel's pixel pitch: type and targets in millimetres
        self._metrics = self._metrics_for(int(Window.width), int(Window.height))
        self._frames_since_show = 0
        self._settled = False
        self._fingerprint: object = None
        # time.time(), not a monotonic clock: Kivy stamps touches with time.time().
        self._shown_at = 0.0

    # --- life cycle (main thread) ----------------------------------------------------------------

    def run(self) -> None:
        """Run the Kivy main loop on this thread until ``stop``; this thread becomes the UI's."""
        self._main.claim()
        # Refuse Alt+F4 and any window-manager close: the kiosk has no way out.
        Window.bind(on_request_close=lambda *_a, **_k: True, on_resize=self._resized)
        undo = _after_each_layout(self._tick)
        try:
            self._app.run()
        finally:
            undo()

    def stop(self) -> None:
        """Thread-safe: end the main loop (tools and tests; a kiosk never stops itself)."""
        Clock.schedule_once(lambda _dt: self._app.stop(), 0)

    def _started(self) -> None:
        self._running = True
        self._render()

    @property
    def frames_since_show(self) -> int:
        return self._frames_since_show

    # --- rendering (main thread) -----------------------------------------------------------------

    def show(self, view: View) -> None:
        """Display ``view`` (main thread only). A view that differs only in its countdown just
        updates the countdown, keeping scroll positions."""
        if not self._main.is_current():
            raise RuntimeError("KioskUi.show must be called on the main thread")
        previous = self._view
        self._view = view
        if (
            isinstance(view.screen, Attract)
            and previous is not None
            and not isinstance(previous.screen, Attract)
            and self._language != self._home_language
        ):
            self._language = self._home_language  # a new resident starts in the home language
        if view.elder != self._metrics_elder:
            self._metrics_elder = view.elder
            self._metrics = self._metrics_for(int(Window.width), int(Window.height))
        same_targets = previous is not None and (
            (previous.countdown_s is None) == (view.countdown_s is None)
            and previous.elder == view.elder
            and previous.help == view.help
        )
        if (
            previous is not None
            and same_targets
            and previous.screen == view.screen
            and self._frame is not None
        ):
            self._model = present(view, self._translator, self._language)
            self._frame.set_countdown(self._model.countdown)
            return
        # A new screen, a new mode, the help strip changes, or the countdown's "more time" button
        # comes or goes.
        self._render()

    def _render(self) -> None:
        if self._view is None or not self._running:
            return
        kept = self._attract[2] if self._attract is not None else None
        # The kept attract frame on the glass already, new words in it: a finger resting on one
        # of its buttons is on the same widget still, and Kivy releases it only if the button is
        # still under the finger. Guarding it as a new screen lost a tap at every rotation that
        # fell between a finger's down and up.
        in_place = False
        if self._frame is not None and self._frame is not kept:
            self._frame.dispose()
        self._root.clear_widgets()
        self._model = present(self._view, self._translator, self._language)
        if self._attract is not None and self._attract[1] == self._metrics and (
            self._attract[0] == self._model or self._rotated_notice(*self._attract)
        ):
            in_place = self._frame is kept
            self._frame = self._attract[2]
            self._attract = (self._model, self._metrics, self._frame)
            self._frame.set_countdown(self._model.countdown)
        else:
            if kept is not None:
                kept.dispose()
                self._attract = None
            self._frame = Frame(self._model, self._metrics, self._activate)
            if self._model.kind == "attract":
                self._attract = (self._model, self._metrics, self._frame)
        self._root.add_widget(self._frame)
        if isinstance(self._frame.body, ScanBody) and self.camera_feed is not None:
            self._frame.body.attach_camera(self.camera_feed)
        self._frames_since_show = 0
        self._settled = False
        self._fingerprint = None
        if not in_place:
            self._shown_at = time.time()
        self._announce()

    def _rotated_notice(self, kept: ScreenModel, _metrics: Metrics, frame: Frame) -> bool:
        """True when the new model is the kept attract screen with another notice, now shown
        on it in place."""
        model = self._model
        if model is None or model.kind != "attract" or not isinstance(frame.body, AttractBody):
            return False
        if replace(model, notice=kept.notice, notice_urgent=kept.notice_urgent) != kept:
            return False
        return frame.body.show_notice(model)

    def _resized(self, _window: Any, width: int, height: int) -> None:
        # Portrait and landscape get different layouts, so a rotation redraws from scratch.
        metrics = self._metrics_for(int(width), int(height))
        if metrics != self._metrics:
            self._metrics = metrics
            self._render()

    def _metrics_for(self, width: int, height: int) -> Metrics:
        return Metrics(width, height, elder=self._metrics_elder, mm_per_px=self._mm_per_px)

    def _tick(self) -> None:
        """Once per frame, after the frame's layout and before it is drawn (main thread)."""
        self._frames_since_show += 1
        if self._settled or self._frame is None:
            return
        fingerprint = self._layout_fingerprint()
        still = fingerprint == self._fingerprint
        if self._frames_since_show >= SETTLE_GIVE_UP_FRAMES and not still:
            log.warning("layout of %s still moving; treating it as settled", self._model_id())
            still = True
        if self._frames_since_show >= SETTLE_FRAMES and still:
            self._settled = True
            if self.on_settled is not None and self._model is not None:
                self.on_settled(self._model.screen)
        self._fingerprint = fingerprint

    def _model_id(self) -> str:
        return self._model.screen if self._model is not None else "-"

    def _layout_fingerprint(self) -> object:
        return tuple(
            (round(w.x), round(w.y), round(w.width), round(w.height))
            for w in self._root.walk(restrict=True)
        )

    # --- input (main thread) ---------------------------------------------------------------------

    def _activate(self, target_id: str, touched_at: float) -> None:
        """A finger released on an enabled target (``touched_at``: when it came down)."""
        if touched_at - self._shown_at < self._touch_guard_s:
            log.info("touch on %s ignored: it began as the screen changed", target_id)
            return
        self._dispatch(target_id)

    def _dispatch(self, target_id: str) -> None:
        if target_id == LANG_TOGGLE:
            self._switch_language()
            return
        if target_id == SPEAK:
            self._announce(again=True)
            return
        if self._frame is not None and self._frame.body.handle_local(target_id):
            return  # the UI's own page buttons: nothing for the flow
        try:
            self.on_tap(target_id)
        except Exception:
            # A failing handler must not take the kiosk down with it; the flow stays where it was.
            log.exception("tap handler failed for %s", target_id)

    def _announce(self, *, again: bool = False) -> None:
        """Voice guidance: each new screen's title and instructions, in elder mode (and on the
        screen that calls staff to a forgotten card, in any mode, after the alert tone and
        again every ``ALERT_REPEAT_S``); the speaker switch says the screen (again) in any mode.
        A new screen cuts what was being said and ends the repetitions."""
        model = self._model
        if model is None:
            return
        said = (model.screen, model.speech, model.language)
        alert = model.screen in ALERTING
        wanted = again or model.elder or alert or model.screen in ALWAYS_SPOKEN
        if not wanted or not model.speech:
            self._speech.stop()
            self._spoken = None
            self._stop_alert_repeat()
            return
        if said == self._spoken and not again:
            return  # the same screen drawn again (a mode or layout change): not said twice
        self._speech.say(model.speech, model.language, slow=model.elder, alert=alert)
        if said != self._spoken:
            # A new screen (or the same one in another language, for someone who is there).
            self._stop_alert_repeat()
            if alert:
                self._alerts_left = ALERT_REPEATS
                self._alert_repeat = Clock.schedule_interval(self._alert_again, ALERT_REPEAT_S)
        self._spoken = said

    def _alert_again(self, _dt: float) -> bool:
        """The alerting screen's repetition (main thread, from the Clock; a new screen cancels
        it in ``_announce``); False ends it."""
        model = self._model
        if model is None:
            return False
        self._alerts_left -= 1
        self._speech.say(model.speech, model.language, slow=model.elder, alert=True)
        if self._alerts_left == 0:
            self._alert_repeat = None
            return False
        return True

    def _stop_alert_repeat(self) -> None:
        if self._alert_repeat is not None:
            self._alert_repeat.cancel()
            self._alert_repeat = None
        self._alerts_left = 0

    def _switch_language(self) -> None:
        languages = self._translator.languages
        index = languages.index(self._language) if self._language in languages else -1
        self._language = languages[(index + 1) % len(languages)]
        self._render()

    # --- thread-safe helpers (tests, tools, automation API) ------------------------------------

    def current_description(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The automation JSON of what is on the glass, with each target's ``bounds``
        ([x, y, w, h], window pixels, origin top-left), once the screen has settled."""
        return self._main.call(self._describe, timeout_s, ready=self._ready)

    def tap(self, target_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
        """Activate a target as a touch would; False (and nothing happens) if it is not on
        screen or disabled."""
        return self._main.call(lambda: self._tap(target_id), timeout_s, ready=self._ready)

    def text(self, target_id: str, value: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
        """Type a whole value into the form field ``target_id``; False if no such field is on
        the screen (the automation API's ``/text``)."""
        return self._main.call(lambda: self._text(target_id, value), timeout_s, ready=self._ready)

    def screenshot_png(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
        """The window as PNG, once the screen has settled."""
        return self._main.call(self._screenshot, timeout_s, ready=self._ready)

    def touch_at(self, x: float, y: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """A real touch down and up at window pixel (x, y), origin top-left. Waits until the
        screen has settled and a finger would no longer be ignored (see ``TOUCH_GUARD_S``).
        Raises ValueError outside the window."""
        down = self._main.call(lambda: touch.press(x, y), timeout_s, ready=self._touchable)
        time.sleep(0.05)  # a finger rests on the glass a moment; Kivy sees a press, then a release
        self._main.call(lambda: touch.release(down), timeout_s)

    def layout_issues(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str]:
        """Clipped labels, overlapping or undersized targets on the current screen."""
        return self._main.call(
            lambda: geometry.layout_issues(
                self._root, (Window.width, Window.height), self._metrics.min_target_px
            ),
            timeout_s,
            ready=self._ready,
        )

    # --- their main-thread halves --------------------------------------------------------------

    def _ready(self) -> bool:
        return self._settled or self._frame is None

    def _touchable(self) -> bool:
        return self._ready() and time.time() - self._shown_at >= self._touch_guard_s

    def _describe(self) -> dict[str, Any]:
        if self._model is None:
            # Nothing shown yet: the same keys as any screen's description, all empty.
            return {
                "screen": None,
                "kind": None,
                "title": "",
                "texts": [],
                "targets": [],
                "language": self._language,
                "countdown_s": None,
                "tone": None,
                "mode": "normal",
                "spoken": None,
            }
        bounds = geometry.target_bounds(self._root, Window.height)
        extra = self._frame.body.local_targets() if self._frame is not None else ()
        model = self._model
        said = (model.screen, model.speech, model.language)
        spoken = self._speech.last_spoken if said == self._spoken else None
        described = describe_model(model, bounds, extra, spoken)
        # With the bounds, tools can measure every target in millimetres on the glass.
        described["mm_per_px"] = self._mm_per_px
        return described

    def _tap(self, target_id: str) -> bool:
        widget = geometry.find_target(self._root, target_id)
        if widget is None or widget.disabled:
            return False
        self._dispatch(target_id)
        return True

    def _text(self, target_id: str, value: str) -> bool:
        model = self._model
        if model is None or not any(f.target.id == target_id for f in model.fields):
            return False
        try:
            self.on_text(target_id, value)
        except Exception:
            log.exception("text handler failed for %s", target_id)
        return True

    def _screenshot(self) -> bytes:
        width, height = int(Window.width), int(Window.height)
        # Draw the current frame into the back buffer and read it there: what the front buffer
        # holds after a swap is undefined in GL.
        Window.dispatch("on_draw")
        pixels = glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE)
        image = Image.frombytes("RGBA", (width, height), pixels)
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).convert("RGB")
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=3)
        return out.getvalue()

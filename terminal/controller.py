"""Main-thread glue: feeds events to the session engine, shows its views, starts its effects."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from flows.steps import Effect, Event, Progress, View

log = logging.getLogger(__name__)


class Display(Protocol):
    def show(self, view: View) -> None: ...


class Engine(Protocol):
    @property
    def idle(self) -> bool: ...

    def start(self) -> _Output: ...

    def handle(self, event: Event) -> _Output: ...


class _Output(Protocol):
    @property
    def view(self) -> View: ...

    @property
    def effects(self) -> tuple[Effect, ...]: ...


class EffectStarter(Protocol):
    def run(self, effect: Effect) -> None: ...


# Schedules a callable on the main thread after a delay (Kivy: Clock.schedule_once).
Schedule = Callable[[float, Callable[[], None]], None]

# A progress screen whose work is over within this time is never drawn: a card read of a few
# milliseconds would otherwise flash "reading your card" and, worse, hold the next screen back
# by the frames it takes to draw it. Work that lasts longer shows it after this short delay.
PROGRESS_DELAY_S = 0.25


class TerminalController:
    """Owns nothing but the wiring; call ``handle`` only on the main (Kivy) thread."""

    def __init__(
        self,
        engine: Engine,
        display: Display,
        effects: EffectStarter,
        *,
        schedule: Schedule | None = None,
        progress_delay_s: float = PROGRESS_DELAY_S,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._display = display
        self._effects = effects
        self._schedule = schedule
        self._progress_delay_s = progress_delay_s
        self._shown: View | None = None  # the engine's latest view, shown or about to be
        self._pending: View | None = None  # a progress view waiting out its delay
        self._on_idle = on_idle
        # Written on the main thread after every event, read by telemetry's thread: a plain
        # bool, so other threads never call into the engine itself.
        self._serving = False

    @property
    def serving(self) -> bool:
        """Someone is at the terminal: any screen but attract (thread-safe to read)."""
        return self._serving

    def start(self) -> None:
        self._apply(self._engine.start())
        self._serving = not self._engine.idle

    def handle(self, event: Event) -> None:
        was_serving = self._serving
        try:
            output = self._engine.handle(event)
        except Exception:
            # A flow bug must not leave a resident staring at a frozen screen: log it (the event
            # type only, never its data) and restart at the attract screen.
            log.exception("session engine failed on %s; restarting the flow", type(event).__name__)
            output = self._engine.start()
        redrawn = self._apply(output)
        self._serving = not self._engine.idle
        # Back at attract, or attract drawn again while idle (a notice rotates every few seconds,
        # a device comes or goes): the replaced screens are garbage only a full collection frees.
        if not self._serving and (was_serving or redrawn) and self._on_idle is not None:
            self._on_idle()

    def _apply(self, output: _Output) -> bool:
        """Start the output's effects and show its view; True when a new view was shown."""
        # Effects first: they run on their own threads, so a card read or a hub call is already
        # under way while the main thread builds the screen that says so.
        for effect in output.effects:
            self._effects.run(effect)
        # Ticks arrive several times a second and mostly change nothing; re-rendering an
        # unchanged screen would cost frames and reset scroll positions.
        view = output.view
        if view == self._shown:
            return False
        entering_progress = isinstance(view.screen, Progress) and (
            self._shown is None or not isinstance(self._shown.screen, Progress)
        )
        self._shown = view
        if entering_progress and self._schedule is not None:
            self._pending = view
            self._schedule(self._progress_delay_s, self._show_pending)
            return False
        if self._pending is not None and isinstance(view.screen, Progress):
            self._pending = view  # still waiting: show the newest progress when the delay ends
            return False
        self._pending = None
        self._display.show(view)
        return True

    def _show_pending(self) -> None:
        if self._pending is not None and self._pending is self._shown:
            self._pending = None
            self._display.show(self._shown)

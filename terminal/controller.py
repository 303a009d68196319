"""Main-thread glue: feeds events to the session engine, shows its views, starts its effects."""

from __future__ import annotations

import logging
from typing import Protocol

from flows.steps import Effect, Event, Screen, View

log = logging.getLogger(__name__)


class Display(Protocol):
    def show(self, view: View) -> None: ...


class Engine(Protocol):
    @property
    def in_session(self) -> bool: ...

    def start(self) -> _Output: ...

    def handle(self, event: Event) -> _Output: ...


class _Output(Protocol):
    @property
    def view(self) -> View: ...

    @property
    def effects(self) -> tuple[Effect, ...]: ...


class EffectStarter(Protocol):
    def run(self, effect: Effect) -> None: ...


class TerminalController:
    """Owns nothing but the wiring; call ``handle`` only on the main (Kivy) thread."""

    def __init__(self, engine: Engine, display: Display, effects: EffectStarter) -> None:
        self._engine = engine
        self._display = display
        self._effects = effects
        self._shown: View | None = None

    @property
    def in_session(self) -> bool:
        return self._engine.in_session

    @property
    def screen(self) -> Screen | None:
        return self._shown.screen if self._shown else None

    def start(self) -> None:
        self._apply(self._engine.start())

    def handle(self, event: Event) -> None:
        try:
            output = self._engine.handle(event)
        except Exception:
            # A flow bug must not leave a resident staring at a frozen screen: log it (the event
            # type only, never its data) and restart at the attract screen.
            log.exception("session engine failed on %s; restarting the flow", type(event).__name__)
            output = self._engine.start()
        self._apply(output)

    def _apply(self, output: _Output) -> None:
        # Ticks arrive several times a second and mostly change nothing; re-rendering an
        # unchanged screen would cost frames and reset scroll positions.
        if output.view != self._shown:
            self._shown = output.view
            self._display.show(output.view)
        for effect in output.effects:
            self._effects.run(effect)

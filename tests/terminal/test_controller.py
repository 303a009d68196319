"""The controller shows the engine's views, starts effects first, and holds quick progress back."""

from collections.abc import Callable
from dataclasses import dataclass

from flows.steps import Attract, Effect, Event, Message, Progress, ReadCard, Tap, View, t
from terminal.controller import TerminalController

ATTRACT = View(Attract("attract", t("attract.title")))
READING = View(Progress("reading_card", t("reading_card.title")))
IDENTITY = View(Message("identity", t("identity.title")))


@dataclass
class Output:
    view: View
    effects: tuple[Effect, ...] = ()


class ScriptedEngine:
    def __init__(self, outputs: list[Output]) -> None:
        self.outputs = outputs
        self.idle = True

    def start(self) -> Output:
        return Output(ATTRACT)

    def handle(self, event: Event) -> Output:
        return self.outputs.pop(0)


class Screen:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def show(self, view: View) -> None:
        self.log.append(f"show {view.screen.screen}")


class Effects:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def run(self, effect: Effect) -> None:
        self.log.append(f"run {type(effect).__name__}")


class Scheduler:
    def __init__(self) -> None:
        self.due: list[Callable[[], None]] = []

    def __call__(self, delay: float, call: Callable[[], None]) -> None:
        self.due.append(call)

    def fire(self) -> None:
        due, self.due = self.due, []
        for call in due:
            call()


def make(outputs: list[Output]) -> tuple[TerminalController, list[str], Scheduler]:
    log: list[str] = []
    scheduler = Scheduler()
    controller = TerminalController(ScriptedEngine(outputs), Screen(log), Effects(log),
                                    schedule=scheduler)
    controller.start()
    return controller, log, scheduler


def test_a_quick_read_never_draws_its_progress_screen() -> None:
    controller, log, scheduler = make([Output(READING, (ReadCard("r"),)), Output(IDENTITY)])
    controller.handle(Tap("x"))
    assert log == ["show attract", "run ReadCard"], "effect starts, progress waits"
    controller.handle(Tap("x"))
    scheduler.fire()
    assert log == ["show attract", "run ReadCard", "show identity"]


def test_slow_work_shows_its_progress_after_the_delay() -> None:
    controller, log, scheduler = make([Output(READING, (ReadCard("r"),)), Output(IDENTITY)])
    controller.handle(Tap("x"))
    scheduler.fire()
    assert log[-1] == "show reading_card"
    controller.handle(Tap("x"))
    assert log[-1] == "show identity"


def test_unchanged_views_are_not_shown_again() -> None:
    controller, log, _ = make([Output(ATTRACT), Output(ATTRACT)])
    controller.handle(Tap("x"))
    controller.handle(Tap("x"))
    assert log == ["show attract"]


def test_an_engine_error_restarts_at_attract() -> None:
    class Broken(ScriptedEngine):
        def handle(self, event: Event) -> Output:
            raise RuntimeError("flow bug")

    log: list[str] = []
    controller = TerminalController(Broken([]), Screen(log), Effects(log))
    controller.start()
    controller.handle(Tap("x"))
    assert log == ["show attract"]


def test_the_return_to_idle_is_announced_once() -> None:
    # The session ends at the rating; the terminal is idle only when attract is back on screen,
    # after the thanks screen, and that is when its memory is tidied.
    idled: list[str] = []
    engine = ScriptedEngine([Output(IDENTITY), Output(IDENTITY), Output(ATTRACT), Output(ATTRACT)])
    log: list[str] = []
    controller = TerminalController(engine, Screen(log), Effects(log),
                                    on_idle=lambda: idled.append("idle"))
    controller.start()
    assert idled == [], "starting at attract is not a return to it"

    def serve(event: Event) -> Output:
        engine.idle = False
        return engine.outputs.pop(0)

    engine.handle = serve  # type: ignore[method-assign]
    controller.handle(Tap("x"))
    controller.handle(Tap("x"))
    assert idled == [] and controller.serving

    def leave(event: Event) -> Output:
        engine.idle = True
        return engine.outputs.pop(0)

    engine.handle = leave  # type: ignore[method-assign]
    controller.handle(Tap("x"))
    controller.handle(Tap("x"))
    assert idled == ["idle"] and not controller.serving


def test_attract_drawn_again_while_idle_is_tidied_too() -> None:
    # A notice rotates every few seconds: each rotation replaces the attract screen, and while
    # idle, which is most of a terminal's life, those replaced screens must not pile up.
    other = View(Attract("attract", t("attract.title"), lines=(t("attract.notice"),)))
    engine = ScriptedEngine([Output(ATTRACT), Output(other), Output(other)])
    idled: list[str] = []
    log: list[str] = []
    controller = TerminalController(engine, Screen(log), Effects(log),
                                    on_idle=lambda: idled.append("idle"))
    controller.start()
    controller.handle(Tap("tick"))  # the same attract screen: nothing drawn, nothing to tidy
    assert idled == []
    controller.handle(Tap("tick"))  # the notice changed
    assert idled == ["idle"] and log == ["show attract", "show attract"]
    controller.handle(Tap("tick"))
    assert idled == ["idle"]

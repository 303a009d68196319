"""The flow platform: each flow declares its steps once, as data, and the graph is checked.

In the spirit of Home Assistant's data_entry_flow: a flow is a class with a name and a tuple of
``StepSpec`` (id, the screen kind it shows, the inputs it accepts, its successors, whether it may
end, the effect it awaits, the sub-flows it may call) and one handler per step, ``step_<id>``.
``Flow.__init_subclass__`` checks the declaration when the module is imported (every step
reachable, none a dead end, a handler for each step and a step for each handler, progress screens
that await something), and ``Flow.handle`` checks every transition at run time against it
(declared successor, the right screen kind, exactly the awaited effect the next step declares).

A step handler answers an event with:

- ``Transition(screen, effects)``: show the screen of a declared successor (its screen id is
  ``<flow>.<step>``, which is also the prefix of its translation keys);
- ``Call(flow, arg)``: run a sub-flow on top of this one; its result comes back to this step as
  ``Returned(flow, value)``;
- ``Finish(value)``: this flow is done; the flow below gets ``Returned``;
- ``EndSession(...)``: the whole session ends, by the engine's one path;
- ``None``: the step does not care about this event.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from devices.base import CardHolder, DeviceState
from flows.catalogue import Catalogue
from flows.clock import Clock
from flows.device_text import printer_line
from flows.effect_specs import EFFECTS, is_awaited
from flows.steps import (
    Action,
    ActionStyle,
    CardPulled,
    Effect,
    EffectDone,
    Event,
    Message,
    Progress,
    Returned,
    Screen,
    Tap,
    Text,
    Tone,
    Transition,
    t,
)
from flows.working_days import WorkingCalendar

DEFAULT_LINKS_BASE = "https://zwfw.example.gov.cn"


class FlowError(RuntimeError):
    """A flow broke its own declaration: a bug in a flow module, never the resident's doing."""


# --- how a session ends -------------------------------------------------------------------------


class EndReason(enum.StrEnum):
    """Why a session ended, as reported in the ``session_ended`` event."""

    DONE = "done"  # the resident finished (after rating, or tapped finish)
    TIMEOUT = "timeout"  # nobody touched the screen until the countdown ran out
    CARD_PULLED = "card_pulled"  # the card left the reader mid-session
    CANCEL = "cancel"  # the resident cancelled at the identity check
    ERROR = "error"  # the card could not be used, or something broke; ``detail`` says what


@dataclass(frozen=True)
class Farewell:
    """What to show once a session has ended (no personal data).

    The engine turns it into a screen: with the card still in the reader it adds "please take your
    card" and waits for the card; without, it adds a button back to the start.
    """

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    tone: Tone = Tone.INFO
    timeout_s: int | None = None  # None: the engine's default for notices


@dataclass(frozen=True)
class EndSession:
    """A step's answer that ends the session; the engine wipes it and says goodbye."""

    reason: EndReason
    detail: str = ""  # a stable code such as ``invalid_id``; never personal data
    farewell: Farewell | None = None  # None: "please take your card", or straight to attract
    effects: tuple[Effect, ...] = ()  # run before the session_ended event
    card_gone: bool = False  # the reader reported the card gone before the engine heard of it


@dataclass(frozen=True, repr=False)
class Call:
    """Run the sub-flow ``flow`` (given ``arg``) on top of the calling step."""

    flow: str
    arg: object = None
    effects: tuple[Effect, ...] = ()

    def __repr__(self) -> str:
        return f"Call({self.flow!r})"


@dataclass(frozen=True, repr=False)
class Finish:
    """This flow is done; ``value`` goes back to the step that called it."""

    value: object = None
    effects: tuple[Effect, ...] = ()

    def __repr__(self) -> str:
        return "Finish(<value>)"


FlowResult = Transition | Call | Finish | EndSession


# --- what a session shares with its flows -------------------------------------------------------


class SessionData:
    """The personal data a whole session shares (the identified resident); ``wipe`` drops it."""

    __slots__ = ("holder",)

    def __init__(self) -> None:
        self.holder: CardHolder | None = None

    def wipe(self) -> None:
        self.holder = None

    def __repr__(self) -> str:
        return "SessionData(<redacted>)"


@dataclass
class FlowContext:
    """What every flow of a session may use: content, time, where it runs, the session's data."""

    catalogue: Catalogue
    clock: Clock
    terminal_id: str
    zone: dt.tzinfo
    idle_timeout_s: int
    session: SessionData = field(default_factory=SessionData)
    # The devices' last known states (the engine keeps it current; flows only read it).
    devices: Mapping[str, DeviceState] = field(default_factory=dict)
    # Every flow by name (flows.registry.FLOWS, handed in so flows need not import each other).
    flows: Mapping[str, type[Flow]] = field(default_factory=dict)
    # Whether the session is in elder mode right now (the flows page long lists more finely).
    elder: Callable[[], bool] = lambda: False
    # The terminal's centre ([terminal] site): where it receives applications (收件地点).
    site: str = ""
    # Where printed QR codes point (the hub's public pages: progress, appointments).
    links_base: str = DEFAULT_LINKS_BASE
    # Working days and holidays: promised dates, deferred materials' deadlines, appointment days.
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    # The UIDs of the staff badges that open the maintenance menu ([staff] badges, or the
    # set_staff_badges command): upper-case hex.
    staff_badges: frozenset[str] = frozenset()


# --- declaring steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    """One step, declared once. ``accepts`` lists the input event types its handler is given."""

    id: str
    shows: type
    to: frozenset[str]
    accepts: frozenset[type]
    ends: bool
    awaits: type | None
    calls: frozenset[str]
    card_pull_expected: bool
    entry: bool = False


def step(
    name: str,
    shows: type,
    *,
    to: Iterable[str] = (),
    accepts: Iterable[type] = (Tap,),
    ends: bool = False,
    awaits: type | None = None,
    calls: Iterable[str] = (),
    card_pull_expected: bool = False,
    entry: bool = False,
) -> StepSpec:
    """Declare a step; what the declaration implies is added: an awaited outcome, a sub-flow's
    return and an expected card pull as inputs, and, for a step that calls a sub-flow, itself as
    a successor (it shows its screen again when the sub-flow returns)."""
    inputs = set(accepts)
    successors = set(to)
    if awaits is not None:
        inputs.add(EffectDone)
    if calls:
        inputs.add(Returned)
        successors.add(name)
    if card_pull_expected:
        inputs.add(CardPulled)
    return StepSpec(
        name,
        shows,
        frozenset(successors),
        frozenset(inputs),
        ends,
        awaits,
        frozenset(calls),
        card_pull_expected,
        entry,
    )


def _check_declaration(name: str, initial: str, steps: Mapping[str, StepSpec]) -> None:
    where = f"flow {name!r}"
    if initial not in steps:
        raise FlowError(f"{where}: initial step {initial!r} is not declared")
    for spec in steps.values():
        unknown = spec.to - set(steps)
        if unknown:
            raise FlowError(f"{where}: step {spec.id!r} leads to undeclared {sorted(unknown)}")
        if spec.awaits is not None:
            effect = EFFECTS.get(spec.awaits)
            if effect is None or not effect.awaited:
                raise FlowError(f"{where}: step {spec.id!r} awaits {spec.awaits.__name__}, "
                                "which is not an awaited effect (flows.effect_specs)")
        if spec.shows is Progress and spec.awaits is None and not spec.calls:
            # Nothing a resident can do moves a progress screen on: it must wait for something.
            raise FlowError(f"{where}: progress step {spec.id!r} awaits no effect")
    reachable = {initial} | {spec.id for spec in steps.values() if spec.entry}
    frontier = list(reachable)
    while frontier:
        for successor in steps[frontier.pop()].to:
            if successor not in reachable:
                reachable.add(successor)
                frontier.append(successor)
    unreachable = sorted(set(steps) - reachable)
    if unreachable:
        raise FlowError(f"{where}: steps nothing leads to: {unreachable}")
    can_end = {spec.id for spec in steps.values() if spec.ends}
    changed = True
    while changed:
        changed = False
        for spec in steps.values():
            if spec.id not in can_end and spec.to & can_end:
                can_end.add(spec.id)
                changed = True
    dead_ends = sorted(set(steps) - can_end)
    if dead_ends:
        raise FlowError(f"{where}: steps from which the flow can never end: {dead_ends}")


# --- the flow base class ------------------------------------------------------------------------


class Flow:
    """Base of every flow; see the module docstring. Subclasses set NAME, INITIAL and STEPS."""

    NAME: ClassVar[str]
    INITIAL: ClassVar[str]
    STEPS: ClassVar[tuple[StepSpec, ...]]
    SPEC: ClassVar[Mapping[str, StepSpec]]
    # Devices the flow cannot do without: a menu shows it unavailable, with the reason, while
    # one of them is down.
    NEEDS: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        steps = {spec.id: spec for spec in cls.STEPS}
        if len(steps) != len(cls.STEPS):
            raise FlowError(f"flow {cls.NAME!r}: a step id is declared twice")
        _check_declaration(cls.NAME, cls.INITIAL, steps)
        handlers = {attr.removeprefix("step_") for attr in dir(cls) if attr.startswith("step_")}
        if handlers != set(steps):
            raise FlowError(
                f"flow {cls.NAME!r}: steps without a handler {sorted(set(steps) - handlers)}, "
                f"handlers without a step {sorted(handlers - set(steps))}"
            )
        cls.SPEC = MappingProxyType(steps)

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        self.ctx = ctx
        self.arg = arg
        self._step = self.INITIAL

    # --- driven by the engine ------------------------------------------------------------------

    @property
    def current_step(self) -> str:
        return self._step

    @property
    def expects_card_pull(self) -> bool:
        return self.SPEC[self._step].card_pull_expected

    def begin(self) -> FlowResult:
        """The flow's first screen (or a sub-flow it calls at once); checked like any step.

        A flow may begin at INITIAL or at any step declared ``entry=True`` (identify begins at
        reading a card, resolving a code, or straight at the identity of an ID card read already).
        """
        self._step = self.INITIAL
        result = self.start()
        if isinstance(result, Transition):
            first = self._successor_of(result)
            if first != self.INITIAL and not self.SPEC[first].entry:
                raise FlowError(f"flow {self.NAME!r} may not begin at {first!r}")
            self._check_screen(self.SPEC[first], result)
            self._step = first
        elif not isinstance(result, Call):
            raise FlowError(f"flow {self.NAME!r} must start with its first screen or a call")
        else:
            self._check_call(self.SPEC[self.INITIAL], result)
        return result

    def handle(self, event: Event) -> FlowResult | None:
        """Let the current step answer ``event``; None when the step does not take it."""
        spec = self.SPEC[self._step]
        if not isinstance(event, tuple(spec.accepts)):
            return None
        if isinstance(event, EffectDone) and (
            spec.awaits is None or not isinstance(event.effect, spec.awaits)
        ):
            return None
        handler: Callable[[Event], FlowResult | None] = getattr(self, f"step_{self._step}")
        result = handler(event)
        if result is None:
            return None
        if isinstance(result, Finish | EndSession):
            if not spec.ends:
                raise FlowError(f"step {self.NAME}.{spec.id} may not end")
            return result
        if isinstance(result, Call):
            self._check_call(spec, result)
            return result
        successor = self._successor_of(result)
        if successor not in spec.to:
            raise FlowError(f"transition {self.NAME}.{spec.id} -> {successor} is not declared")
        self._check_screen(self.SPEC[successor], result)
        self._step = successor
        return result

    def wipe(self) -> None:
        """Drop the personal data this flow holds (the engine also wipes ``ctx.session``)."""

    # --- for subclasses ------------------------------------------------------------------------

    def start(self) -> Transition | Call:
        raise NotImplementedError

    def screen_id(self, of_step: str) -> str:
        return f"{self.NAME}.{of_step}"

    def text(self, of_step: str, name: str, /, **params: str | Text) -> Text:
        """A text of one of this flow's steps: key ``<flow>.<step>.<name>``."""
        return t(f"{self.NAME}.{of_step}.{name}", **params)

    def print_failed(self, reason: str, way_out: str) -> Message:
        """The ``print_failed`` step's screen: what went wrong with the printer, and the way to
        print the same again (``retry``) or ``way_out``."""
        return Message(
            self.screen_id("print_failed"),
            self.text("print_failed", "title"),
            (printer_line(reason), self.text("print_failed", "body")),
            (common_action("retry", primary=True), common_action(way_out)),
            Tone.ERROR,
            self.ctx.idle_timeout_s,
        )

    def action(self, of_step: str, action_id: str, *, primary: bool = False) -> Action:
        """A button whose label is this step's own (``<flow>.<step>.<id>``: 确认打印, 确认预约)."""
        return Action(action_id, self.text(of_step, action_id), style=_style(primary))

    # --- checks --------------------------------------------------------------------------------

    def _successor_of(self, transition: Transition) -> str:
        prefix = f"{self.NAME}."
        screen_id = transition.screen.screen
        successor = screen_id.removeprefix(prefix)
        if not screen_id.startswith(prefix) or successor not in self.SPEC:
            raise FlowError(f"step {self.NAME}.{self._step} showed undeclared {screen_id!r}")
        return successor

    def _check_screen(self, spec: StepSpec, transition: Transition) -> None:
        screen: Screen = transition.screen
        if screen.screen != self.screen_id(spec.id):
            raise FlowError(f"step {self.NAME}.{spec.id} shows screen id {screen.screen!r}")
        if not isinstance(screen, spec.shows):
            raise FlowError(f"step {self.NAME}.{spec.id} declared {spec.shows.__name__}, "
                            f"showed {type(screen).__name__}")
        awaited = [e for e in transition.effects if is_awaited(e)]
        wanted = spec.awaits
        if wanted is None and awaited:
            raise FlowError(f"step {self.NAME}.{spec.id} awaits nothing but asked for "
                            f"{type(awaited[0]).__name__}")
        if wanted is not None and (len(awaited) != 1 or not isinstance(awaited[0], wanted)):
            # The engine would wait for an outcome that never comes: a stuck screen.
            raise FlowError(f"step {self.NAME}.{spec.id} awaits {wanted.__name__} "
                            f"but asked for {[type(e).__name__ for e in awaited]}")

    def _check_call(self, spec: StepSpec, call: Call) -> None:
        if call.flow not in spec.calls:
            raise FlowError(f"step {self.NAME}.{spec.id} may not call flow {call.flow!r}")
        if any(is_awaited(e) for e in call.effects):
            raise FlowError(f"step {self.NAME}.{spec.id} awaits an effect while calling a flow")


def common_action(action_id: str, *, primary: bool = False) -> Action:
    """A button every flow shares, labelled ``action.<id>`` (返回, 结束办理, 重试)."""
    return Action(action_id, t(f"action.{action_id}"), style=_style(primary))


def _style(primary: bool) -> ActionStyle:
    return ActionStyle.PRIMARY if primary else ActionStyle.SECONDARY


def tapped(event: Event, choices: Mapping[str, Callable[[], FlowResult]]) -> FlowResult | None:
    """For a step that answers taps only: what the tapped target leads to; None for the rest."""
    if isinstance(event, Tap) and event.target in choices:
        return choices[event.target]()
    return None

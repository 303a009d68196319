"""SessionEngine: runs resident sessions one at a time, with idle timeouts and one way to end.

The terminal feeds every input in as an event (``handle``) and gets back an ``Output``: the view to
show and the effects to perform. The engine owns what is common to every session: the attract
screen, starting a session when a card goes in, the idle timer and its countdown, tracking which
readers hold a card, and ending a session by ONE path whatever ended it (done, timeout, card
pulled, cancel, error): the session's personal data is wiped, a ``session_ended`` event is emitted,
and the screen goes back to attract; if the card is still in the reader a "please take your card"
screen waits for it first. The steps in between are flows.errand's.

Screen ids: the in-session steps are ``flows.errand.Step`` (their values); the engine's own are
``attract``, ``take_card`` (a session ended with the card still in), ``thanks``,
``notice.card_removed``, ``notice.session_error``, ``error.unsupported_card``,
``error.invalid_id`` and ``error.card_read``. A farewell screen shown while the card is still in
has no button and ends with the ``take_card.prompt`` line; without a card it has ``continue``.

Idle timer: every screen with ``idle_timeout_s`` gets that many seconds from when it was shown or
last touched. Any tap, even on nothing, restarts it (someone is there). On each ``Tick`` the
engine asks its clock; ``View.countdown_s`` is set once ``countdown_visible_s`` or fewer seconds
remain, and at zero the session ends with reason ``timeout`` (a farewell screen goes to attract).

Effects and outcomes: the contract the terminal's effect runner honours.
Each effect is answered by ``EffectDone(effect, outcome)`` carrying the very effect object the
engine emitted: the engine matches by identity, so an outcome meant for an earlier step or an
ended session (equal, not identical) is ignored.

- ``ReadCard(reader)`` -> ``Succeeded(CardHolder)``, or ``Failed(reason)`` with reason
  ``card_removed``, ``unsupported_card``, ``card_data_invalid``, ``timeout`` or ``offline``.
- ``RunErrand(errand_id, holder)`` -> ``Succeeded(ErrandDocument)``, or ``Failed(reason)`` with
  ``hub_unavailable``, ``not_enrolled``, ``suspended``, ``deceased``, ``invalid_id``,
  ``unknown_errand`` or ``hub_error``.
- ``CheckPrinter()`` -> ``Succeeded(DeviceState)`` (ok or degraded go on; a fault is treated as a
  failure with the state's reason), or ``Failed(reason)`` with ``paper_out``, ``cover_open``,
  ``offline``, ``no_response`` or another printer code.
- ``PrintReceipt(receipt)`` -> ``Succeeded(None)``, or ``Failed(reason)`` as for ``CheckPrinter``.
- ``SubmitRating(...)`` -> ``Succeeded(queued: bool)``: the runner puts it in the outbox, so it
  normally succeeds. It is emitted as the session ends, so its outcome is not waited for.
- ``RecordEvent(...)`` is fire and forget: no ``EffectDone`` comes back. Its fields never carry
  personal data: reasons are short codes, and ids are errand ids, never a person's.

Operations events (``RecordEvent.type``: fields), none with personal data: ``session_started``;
``session_ended``: reason (done / timeout / card_pulled / cancel / error), detail for errors;
``guide_viewed``: item_id; ``errand_completed``: errand_id; ``receipt_printed``: kind (proof /
guide), errand_id; ``errand_failed`` (warning): errand_id, stage (printer / hub / print /
print_guide), reason; ``rating_submitted``: errand_id, level; ``rating_skipped``: errand_id;
``card_left_in_reader`` (warning); ``effect_timeout`` (warning): effect; ``flow_error``
(critical): step, error (the exception's type name only).

A step waits for at most one effect. Should its outcome never come, the session ends after
``effect_timeout_s`` (reason ``error``, detail ``effect_timeout``) rather than hang on a progress
screen; the runner's own device and hub timeouts are far shorter.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass

from flows.catalogue import Catalogue
from flows.clock import CHINA_ZONE, Clock
from flows.errand import CARD_REMOVED_NOTICE, EndReason, EndSession, ErrandFlow, Farewell
from flows.steps import (
    Action,
    ActionStyle,
    Attract,
    CardInserted,
    CardPulled,
    CheckPrinter,
    Effect,
    EffectDone,
    Event,
    Message,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    RunErrand,
    Screen,
    Tap,
    Tick,
    Tone,
    Transition,
    View,
    screen_actions,
    t,
)

NOTICE_TIMEOUT_S = 10  # a notice after a session (card removed, error) with no card to wait for
# Effects a step waits for; the others (SubmitRating, RecordEvent) are not waited for.
_AWAITED = (ReadCard, RunErrand, CheckPrinter, PrintReceipt)

_SESSION_ERROR = Farewell(
    "notice.session_error",
    t("notice.session_error.title"),
    (t("notice.session_error.body"),),
    Tone.ERROR,
)


@dataclass(frozen=True)
class Output:
    """What the terminal does after an event: show ``view`` and run ``effects`` in order."""

    view: View
    effects: tuple[Effect, ...] = ()


class _Phase(enum.Enum):
    IDLE = "idle"  # the attract screen; no session, no personal data
    SESSION = "session"  # a resident's session: the flow holds personal data
    AFTER = "after"  # the session has ended; a farewell screen (take card, notice, thanks)


class SessionEngine:
    """Runs the errand flow for one resident after another; see the module docstring."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        clock: Clock,
        terminal_id: str,
        idle_timeout_s: int = 60,
        countdown_visible_s: int = 20,
        zone: dt.tzinfo = CHINA_ZONE,
        effect_timeout_s: int = 120,
    ) -> None:
        if idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be positive")
        if countdown_visible_s < 0:
            raise ValueError("countdown_visible_s must not be negative")
        if effect_timeout_s <= 0:
            raise ValueError("effect_timeout_s must be positive")
        self._catalogue = catalogue
        self._clock = clock
        self._terminal_id = terminal_id
        self._idle_timeout_s = idle_timeout_s
        self._countdown_visible_s = countdown_visible_s
        self._zone = zone
        self._effect_timeout_s = effect_timeout_s

        self._cards: set[str] = set()  # readers that hold a card right now
        self._phase = _Phase.IDLE
        self._flow: ErrandFlow | None = None
        self._reader: str | None = None  # the reader of the session's card (session and after)
        self._waiting_for_pull = False  # AFTER: the farewell waits for the card to be taken
        self._awaiting: Effect | None = None
        self._awaiting_since = 0.0
        self._screen: Screen = self._attract_screen()
        self._shown_at = clock.monotonic()

    # --- public ------------------------------------------------------------------------------

    @property
    def in_session(self) -> bool:
        """True while a resident's session runs (and the engine holds their data)."""
        return self._phase is _Phase.SESSION

    @property
    def idle(self) -> bool:
        """True on the attract screen: nobody is being served, so updates may start."""
        return self._phase is _Phase.IDLE

    @property
    def view(self) -> View:
        """What the screen shows now, with the countdown as of the clock's current time."""
        return View(self._screen, self._countdown())

    def start(self) -> Output:
        """Show the attract screen; a session still running is ended first, by the usual path."""
        if self._phase is _Phase.SESSION:
            return self._end(EndSession(EndReason.ERROR, "restarted", _SESSION_ERROR))
        self._to_attract()
        return self._output()

    def handle(self, event: Event) -> Output:
        """Answer one input event; never raises for anything a resident or a device can do."""
        match event:
            case Tick():
                return self._on_tick()
            case Tap():
                return self._on_tap(event)
            case CardInserted():
                return self._on_card_inserted(event)
            case CardPulled():
                return self._on_card_pulled(event)
            case EffectDone():
                return self._on_effect_done(event)
        return self._output()

    # --- events ------------------------------------------------------------------------------

    def _on_tick(self) -> Output:
        now = self._clock.monotonic()
        if (
            self._phase is _Phase.SESSION
            and self._awaiting is not None
            and now - self._awaiting_since >= self._effect_timeout_s
        ):
            stuck = RecordEvent(
                "effect_timeout",
                "warning",
                {"effect": type(self._awaiting).__name__},
            )
            end = EndSession(EndReason.ERROR, "effect_timeout", _SESSION_ERROR, (stuck,))
            return self._end(end)
        remaining = self._remaining(now)
        if remaining is None or remaining > 0:
            return self._output()
        if self._phase is _Phase.SESSION:
            return self._end(EndSession(EndReason.TIMEOUT))
        if self._phase is _Phase.AFTER:
            left = self._waiting_for_pull  # waiting means the card is still in: a pull ends it
            self._to_attract()
            if left:
                # Somebody walked away without their card: staff should collect it.
                return self._output((RecordEvent("card_left_in_reader", "warning"),))
        return self._output()

    def _on_tap(self, tap: Tap) -> Output:
        self._shown_at = self._clock.monotonic()
        if not any(a.id == tap.target and a.enabled for a in screen_actions(self._screen)):
            return self._output()
        if self._phase is _Phase.SESSION:
            return self._run_flow(tap)
        if self._phase is _Phase.AFTER:
            # The only target a farewell has is the way back to the start.
            self._to_attract()
        return self._output()

    def _on_card_inserted(self, event: CardInserted) -> Output:
        self._cards.add(event.reader)
        ready = self._phase is _Phase.IDLE or (
            self._phase is _Phase.AFTER and not self._waiting_for_pull
        )
        if not ready:
            return self._output()
        self._flow = ErrandFlow(
            catalogue=self._catalogue,
            clock=self._clock,
            terminal_id=self._terminal_id,
            zone=self._zone,
            idle_timeout_s=self._idle_timeout_s,
        )
        self._reader = event.reader
        self._phase = _Phase.SESSION
        started = self._flow.start(event.reader)
        return self._apply(started, (RecordEvent("session_started"),))

    def _on_card_pulled(self, event: CardPulled) -> Output:
        self._cards.discard(event.reader)
        if event.reader != self._reader:
            return self._output()
        if self._phase is _Phase.SESSION:
            if self._flow is not None and self._flow.expects_card_pull:
                return self._run_flow(event)
            return self._end(EndSession(EndReason.CARD_PULLED, farewell=CARD_REMOVED_NOTICE))
        if self._phase is _Phase.AFTER and self._waiting_for_pull:
            self._to_attract()
        return self._output()

    def _on_effect_done(self, done: EffectDone) -> Output:
        if (
            self._phase is not _Phase.SESSION
            or self._awaiting is None
            or done.effect is not self._awaiting
        ):
            return self._output()  # stale: for a step or a session that is gone
        return self._run_flow(done)

    # --- session -----------------------------------------------------------------------------

    def _run_flow(self, event: Event) -> Output:
        flow = self._flow
        if flow is None:
            return self._output()
        step = flow.step
        try:
            result = flow.handle(event)
        except Exception as exc:
            # A bug must not leave a resident's data on the screen or freeze the kiosk. Only the
            # exception's type is reported: its message could quote anything.
            crashed = RecordEvent(
                "flow_error",
                "critical",
                {"step": str(step), "error": type(exc).__name__},
            )
            return self._end(EndSession(EndReason.ERROR, "flow_error", _SESSION_ERROR, (crashed,)))
        if result is None:
            return self._output()
        if isinstance(result, EndSession):
            return self._end(result)
        return self._apply(result)

    def _apply(self, transition: Transition, leading: tuple[Effect, ...] = ()) -> Output:
        self._show(transition.screen)
        awaited = [e for e in transition.effects if isinstance(e, _AWAITED)]
        self._awaiting = awaited[0] if awaited else None
        self._awaiting_since = self._clock.monotonic()
        return self._output((*leading, *transition.effects))

    def _end(self, end: EndSession) -> Output:
        """The one way a session ends: wipe, report, then take card / farewell / attract."""
        if self._flow is not None:
            self._flow.wipe()
        self._flow = None
        self._awaiting = None  # a RunErrand or PrintReceipt carries the resident's data
        if end.card_gone and self._reader is not None:
            self._cards.discard(self._reader)
        fields: dict[str, str] = {"reason": str(end.reason)}
        if end.detail:
            fields["detail"] = end.detail
        effects = (*end.effects, RecordEvent("session_ended", fields=fields))
        farewell = end.farewell
        if self._reader in self._cards:
            self._phase = _Phase.AFTER
            self._waiting_for_pull = True
            self._show(self._take_card_screen(farewell))
        elif farewell is not None:
            self._phase = _Phase.AFTER
            self._waiting_for_pull = False
            self._show(self._notice_screen(farewell))
        else:
            self._to_attract()
        return self._output(effects)

    # --- screens and timer -------------------------------------------------------------------

    def _to_attract(self) -> None:
        self._phase = _Phase.IDLE
        self._flow = None
        self._reader = None
        self._waiting_for_pull = False
        self._awaiting = None
        self._show(self._attract_screen())

    def _show(self, screen: Screen) -> None:
        self._screen = screen
        self._shown_at = self._clock.monotonic()

    def _attract_screen(self) -> Attract:
        return Attract("attract", t("attract.title"), (t("attract.body"), t("attract.hint")))

    def _take_card_screen(self, farewell: Farewell | None) -> Message:
        # No button: the only way on is to take the card (or the timeout, for a forgotten one).
        if farewell is None:
            return Message(
                "take_card",
                t("take_card.title"),
                (t("take_card.body"),),
                idle_timeout_s=self._idle_timeout_s,
            )
        return Message(
            farewell.screen,
            farewell.title,
            (*farewell.lines, t("take_card.prompt")),
            tone=farewell.tone,
            idle_timeout_s=self._idle_timeout_s,
        )

    def _notice_screen(self, farewell: Farewell) -> Message:
        home = Action("continue", t("action.home"), style=ActionStyle.PRIMARY)
        return Message(
            farewell.screen,
            farewell.title,
            farewell.lines,
            (home,),
            farewell.tone,
            farewell.timeout_s if farewell.timeout_s is not None else NOTICE_TIMEOUT_S,
        )

    def _remaining(self, now: float) -> float | None:
        timeout = self._screen.idle_timeout_s
        if timeout is None:
            return None
        return timeout - (now - self._shown_at)

    def _countdown(self) -> int | None:
        remaining = self._remaining(self._clock.monotonic())
        if remaining is None or remaining > self._countdown_visible_s:
            return None
        return max(0, math.ceil(remaining))

    def _output(self, effects: tuple[Effect, ...] = ()) -> Output:
        return Output(self.view, effects)

"""SessionEngine: runs resident sessions one at a time, with idle timeouts and one way to end.

The terminal feeds every input in as an event (``handle``) and gets back an ``Output``: the view to
show and the effects to perform. The engine owns what is common to every session: the attract
screen, starting a session when a card goes in, the idle timer and its countdown, tracking which
readers hold a card, and ending a session by ONE path whatever ended it (done, timeout, card
pulled, cancel, error): the session's personal data is wiped, a ``session_ended`` event is emitted,
and the screen goes back to attract; if the card is still in the reader a "please take your card"
screen waits for it first, and should the card be forgotten, a ``card_left`` screen says so until
it is taken (``card_left_in_reader`` is reported once). The steps in between are the flows'
(flows.registry), run as a stack of sub-flows: identify -> home -> errand -> rating for a card;
guides alone for a tap on the attract screen (no identity, nothing personal). A card inserted
while someone browses the guides ends that session and starts a card session. A receipt's QR
scanned at the attract screen starts a session of its own without identity (progress: the case's
status only); an appointment slip's or an unknown code gets a notice saying what it is.

Screen ids: a flow step's screen is ``<flow>.<step>``; the engine's own are ``attract``,
``take_card`` (a session ended with the card still in), ``card_left`` (a card from an ended session
is still in the reader), ``thanks``, ``notice.card_removed``, ``notice.session_error``,
``error.unsupported_card``, ``error.invalid_id`` and ``error.card_read``. A farewell screen shown
while the card is still in has no button and ends with the ``take_card.prompt`` line; without a
card it has ``continue``.

Idle timer: every screen with ``idle_timeout_s`` gets that many seconds from when it was shown or
last touched. Any tap, even on nothing, restarts it (someone is there). On each ``Tick`` the
engine asks its clock; ``View.countdown_s`` is set once ``countdown_visible_s`` or fewer seconds
remain, and at zero the session ends with reason ``timeout`` (a farewell screen goes to attract).
In elder mode (长辈模式, the ``mode.toggle`` target on every screen) every idle timeout is doubled;
the mode lasts for the session and is back to normal when attract returns.

Help (帮办, flows.help_call): ``help.call`` on every screen, in a session or not, calls staff
without leaving the screen (``View.help`` says so); ``help.cancel`` cancels; the ``help_ack``
command arrives as ``HelpAcknowledged``. While staff are called or coming nothing times out.

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
``card_left_in_reader`` (warning); ``effect_timeout`` (warning): effect; ``help_requested``
(warning): help_id, screen, elder_mode; ``help_cancelled``: help_id; ``flow_error``
(critical): step (``<flow>.<step>``), error (the exception's type name only). The names are
``flows.event_names.EventType``.

Which effects a step waits for is declared once, in flows.effect_specs, and each step declares the
one it awaits (flows.platform checks both). Should its outcome never come, the session ends after
``effect_timeout_s`` (reason ``error``, detail ``effect_timeout``) rather than hang on a progress
screen; the runner's own device and hub timeouts are far shorter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

from devices.base import DeviceState
from flows import farewells
from flows.catalogue import Catalogue
from flows.clock import CHINA_ZONE, Clock
from flows.device_text import first_unusable, printer_line
from flows.effect_specs import is_awaited
from flows.event_names import EventType
from flows.help_call import HELP_CALL, HELP_CANCEL, HelpDesk
from flows.identify import CardInReader, IdentityCode, PresentedIdCard, check_presented
from flows.notices import Notices
from flows.operations_events import code
from flows.platform import (
    DEFAULT_LINKS_BASE,
    Call,
    EndReason,
    EndSession,
    Farewell,
    Finish,
    Flow,
    FlowContext,
    FlowError,
    FlowResult,
)
from flows.progress import CaseLookup
from flows.registry import FLOWS
from flows.steps import (
    Action,
    ActionStyle,
    Attract,
    CardInserted,
    CardPulled,
    CodeScanned,
    DeviceChanged,
    Effect,
    EffectDone,
    Event,
    Form,
    HelpAcknowledged,
    IdCardPresented,
    Message,
    PublicNotice,
    RecordEvent,
    Returned,
    Screen,
    Tap,
    TextEntered,
    Tick,
    Tone,
    Transition,
    View,
    screen_actions,
    t,
)
from flows.working_days import WorkingCalendar

NOTICE_TIMEOUT_S = 10  # a notice after a session (card removed, error) with no card to wait for
MODE_TOGGLE = "mode.toggle"  # the 长辈模式 / large text switch, on every screen
BROWSE_GUIDES = "guides"  # the attract screen's way into the guides, no card needed
E_ID_CODE = "e_id"  # CodeScanned.kind of an e-ID code shown from a phone (一码办)


@dataclass(frozen=True)
class Output:
    """What the terminal does after an event: show ``view`` and run ``effects`` in order."""

    view: View
    effects: tuple[Effect, ...] = ()


class _Phase(enum.Enum):
    IDLE = "idle"  # the attract screen; no session, no personal data
    SESSION = "session"  # a resident's session: the flows hold personal data
    AFTER = "after"  # the session has ended; a farewell screen (take card, notice, thanks)
    CARD_LEFT = "card_left"  # a card from an ended session is still in the reader


class SessionEngine:
    """Runs the flows for one resident after another; see the module docstring."""

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
        notices: Notices | None = None,
        help_desk: HelpDesk | None = None,
        site: str = "",
        links_base: str = DEFAULT_LINKS_BASE,
        calendar: WorkingCalendar | None = None,
        staff_badges: frozenset[str] = frozenset(),
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
        self._notices = notices or Notices(())
        self._help = help_desk or HelpDesk(clock)
        self._site = site
        self._links_base = links_base
        self._calendar = calendar or WorkingCalendar()
        self._staff_badges = frozenset(uid.upper() for uid in staff_badges)

        self._cards: set[str] = set()  # readers that hold a card right now
        self._phase = _Phase.IDLE
        self._stack: list[Flow] = []
        self._context: FlowContext | None = None
        self._reader: str | None = None  # the reader of the session's card (session and after)
        self._waiting_for_pull = False  # AFTER: the farewell waits for the card to be taken
        self._awaiting: Effect | None = None
        self._awaiting_since = 0.0
        self._elder = False
        self._devices: dict[str, DeviceState] = {}  # last known states; flows read them
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
    def in_maintenance(self) -> bool:
        """True while staff use the maintenance menu (the heartbeat's ``maintenance`` state)."""
        return self._phase is _Phase.SESSION and "maintenance" in self.flow_stack

    def set_staff_badges(self, uids: frozenset[str]) -> None:
        """The badges that open the maintenance menu from the next card on (set_staff_badges)."""
        self._staff_badges = frozenset(uid.upper() for uid in uids)

    @property
    def elder(self) -> bool:
        """True while the large-type, voice-guided elder mode is on."""
        return self._elder

    @property
    def awaiting(self) -> Effect | None:
        """The effect whose outcome the current step waits for, if any (tests, diagnostics)."""
        return self._awaiting

    @property
    def flow_stack(self) -> tuple[str, ...]:
        """The names of the running flows, bottom first (for tests and diagnostics)."""
        return tuple(flow.NAME for flow in self._stack)

    @property
    def view(self) -> View:
        """What the screen shows now, with the countdown as of the clock's current time (and on
        the attract screen, the public notice in force now)."""
        screen = self._screen
        if isinstance(screen, Attract):
            screen = dataclasses.replace(screen, notice=self._notice())
        return View(screen, self._countdown(), self._elder, self._help.status())

    def start(self) -> Output:
        """Show the attract screen; a session still running is ended first, by the usual path."""
        if self._phase is _Phase.SESSION:
            return self._end(EndSession(EndReason.ERROR, "restarted", farewells.SESSION_ERROR))
        self._to_attract()
        return self._output()

    def handle(self, event: Event) -> Output:
        """Answer one input event; never raises for anything a resident or a device can do."""
        match event:
            case Tick():
                return self._on_tick()
            case Tap():
                return self._on_tap(event)
            case TextEntered():
                return self._on_text(event)
            case CardInserted():
                return self._on_card_inserted(event)
            case CardPulled():
                return self._on_card_pulled(event)
            case EffectDone():
                return self._on_effect_done(event)
            case DeviceChanged():
                return self._on_device_changed(event)
            case HelpAcknowledged():
                self._help.acknowledged(event)
            case CodeScanned():
                return self._on_code(event)
            case IdCardPresented():
                return self._on_id_card(event)
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
                EventType.EFFECT_TIMEOUT,
                "warning",
                {"effect": type(self._awaiting).__name__},
            )
            end = EndSession(EndReason.ERROR, "effect_timeout", farewells.SESSION_ERROR, (stuck,))
            return self._end(end)
        remaining = self._remaining(now)
        if remaining is None or remaining > 0:
            return self._output()
        if self._phase is _Phase.SESSION:
            return self._end(EndSession(EndReason.TIMEOUT))
        if self._phase is _Phase.AFTER:
            if self._waiting_for_pull:
                # Somebody walked away without their card: say so on the glass until it is taken,
                # and tell staff once.
                self._phase = _Phase.CARD_LEFT
                self._elder = False
                self._show(self._card_left_screen())
                return self._output((RecordEvent(EventType.CARD_LEFT_IN_READER, "warning"),))
            self._to_attract()
        elif self._phase is _Phase.IDLE and self._elder:
            self._elder = False  # someone switched large text on and walked away
            self._show(self._attract_screen())
        return self._output()

    def _on_tap(self, tap: Tap) -> Output:
        self._shown_at = self._clock.monotonic()
        if tap.target == HELP_CALL:
            return self._output(self._help.call(self._screen.screen, self._elder))
        if tap.target == HELP_CANCEL:
            return self._output(self._help.cancel())
        if tap.target == MODE_TOGGLE:
            self._elder = not self._elder
            if self._phase is _Phase.IDLE:
                self._show(self._attract_screen())  # the attract screen times the mode out
            return self._output()
        if not any(a.id == tap.target and a.enabled for a in screen_actions(self._screen)):
            return self._output()
        if self._phase is _Phase.SESSION:
            return self._run_flow(tap)
        if tap.target == BROWSE_GUIDES and self._phase is _Phase.IDLE:
            return self._start_session(FLOWS["guides"], None, reader=None)
        if self._phase is _Phase.AFTER:
            # The only target a farewell has is the way back to the start.
            self._to_attract()
        return self._output()

    def _on_text(self, entered: TextEntered) -> Output:
        self._shown_at = self._clock.monotonic()
        screen = self._screen
        fields = {f"field.{f.id}" for f in screen.fields} if isinstance(screen, Form) else set()
        if self._phase is not _Phase.SESSION or entered.target not in fields:
            return self._output()
        return self._run_flow(entered)

    def _on_card_inserted(self, event: CardInserted) -> Output:
        self._cards.add(event.reader)
        leading: tuple[Effect, ...] = ()
        if self._anonymous_session():
            # Someone browsing the guides without a card now identifies: the guide session
            # (nothing personal in it) makes way for a card session.
            leading = self._end(EndSession(EndReason.DONE, "card_inserted")).effects
        if not self._ready():
            return self._output(leading)
        started = self._start_session(FLOWS["identify"], CardInReader(event.reader),
                                      reader=event.reader)
        return Output(started.view, (*leading, *started.effects))

    def _on_id_card(self, event: IdCardPresented) -> Output:
        # A presented card is read and gone: it never holds a session open, never needs taking.
        # While a resident is identified, another card waved at the reader changes nothing.
        leading: tuple[Effect, ...] = ()
        if self._anonymous_session():
            leading = self._end(EndSession(EndReason.DONE, "id_card_presented")).effects
        if not self._ready():
            return self._output(leading)
        checked = check_presented(event.holder, event.reason,
                                  self._clock.now().astimezone(self._zone).date())
        if isinstance(checked, Farewell):
            refused = RecordEvent(EventType.ID_CARD_REFUSED, "info",
                                  {"reason": code(event.reason or checked.screen.split(".")[-1])})
            self._phase = _Phase.AFTER
            self._waiting_for_pull = False
            self._show(self._notice_screen(checked))
            return self._output((*leading, refused))
        started = self._start_session(FLOWS["identify"], PresentedIdCard(checked), reader=None)
        return Output(started.view, (*leading, *started.effects))

    def _anonymous_session(self) -> bool:
        """A session nobody identified in (guides, a receipt's progress): any way of identifying
        replaces it, since it holds nothing personal."""
        return (
            self._phase is _Phase.SESSION
            and self._reader is None
            and (self._context is None or self._context.session.holder is None)
            and "maintenance" not in self.flow_stack
        )

    def _ready(self) -> bool:
        """Nothing on screen that a new session may not replace: attract, or a farewell that does
        not wait for a card to be taken."""
        return self._phase is _Phase.IDLE or (
            self._phase is _Phase.AFTER and not self._waiting_for_pull
        )

    def _on_card_pulled(self, event: CardPulled) -> Output:
        self._cards.discard(event.reader)
        if event.reader != self._reader:
            return self._output()
        if self._phase is _Phase.SESSION:
            if self._stack and self._stack[-1].expects_card_pull:
                return self._run_flow(event)
            return self._end(EndSession(EndReason.CARD_PULLED, farewell=farewells.CARD_REMOVED))
        if (self._phase is _Phase.AFTER and self._waiting_for_pull) or (
            self._phase is _Phase.CARD_LEFT
        ):
            self._to_attract()
        return self._output()

    def _on_code(self, scanned: CodeScanned) -> Output:
        leading: tuple[Effect, ...] = ()
        if scanned.kind == E_ID_CODE and self._anonymous_session():
            leading = self._end(EndSession(EndReason.DONE, "code_scanned")).effects
        elif self._phase is _Phase.SESSION:
            return self._run_flow(scanned)  # a flow that takes codes has them; the rest ignore
        if not self._ready():
            return self._output(leading)
        # The kind only: a code's text may be personal, and a reference is a case's.
        scanned_event = RecordEvent(EventType.CODE_SCANNED, fields={"kind": scanned.kind})
        if scanned.kind == E_ID_CODE and scanned.reference:
            started = self._start_session(FLOWS["identify"], IdentityCode(scanned.reference),
                                          reader=None)
            return Output(started.view, (*leading, scanned_event, *started.effects))
        if scanned.kind == "receipt" and scanned.reference:
            started = self._start_session(FLOWS["progress"], CaseLookup(scanned.reference),
                                          reader=None)
            return Output(started.view, (scanned_event, *started.effects))
        farewell = (farewells.CODE_APPOINTMENT if scanned.kind == "appointment"
                    else farewells.CODE_UNKNOWN)
        self._phase = _Phase.AFTER
        self._waiting_for_pull = False
        self._show(self._notice_screen(farewell))
        return self._output((scanned_event,))

    def _on_device_changed(self, event: DeviceChanged) -> Output:
        self._devices[event.device] = event.state
        if self._phase is _Phase.IDLE:
            # The attract screen's promise follows the devices. A session's screens change only
            # at their next step: a menu redrawn under a resident's finger is worse than stale.
            attract = self._attract_screen()
            if attract != self._screen:
                self._screen = attract
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

    def _start_session(self, root: type[Flow], arg: object, *, reader: str | None) -> Output:
        self._context = FlowContext(
            catalogue=self._catalogue,
            clock=self._clock,
            terminal_id=self._terminal_id,
            zone=self._zone,
            idle_timeout_s=self._idle_timeout_s,
            devices=self._devices,
            flows=FLOWS,
            elder=lambda: self._elder,
            site=self._site,
            links_base=self._links_base,
            calendar=self._calendar,
            staff_badges=self._staff_badges,
        )
        self._reader = reader
        self._phase = _Phase.SESSION
        flow = root(self._context, arg)
        self._stack = [flow]
        return self._guarded(flow, flow.begin, (RecordEvent(EventType.SESSION_STARTED),))

    def _run_flow(self, event: Event) -> Output:
        if not self._stack:
            return self._output()
        top = self._stack[-1]
        return self._guarded(top, lambda: top.handle(event))

    def _guarded(
        self,
        flow: Flow,
        answer: Callable[[], FlowResult | None],
        leading: tuple[Effect, ...] = (),
    ) -> Output:
        """Run a flow's answer and everything it leads to; a bug ends the session cleanly."""
        try:
            return self._follow(answer(), leading)
        except Exception as exc:
            # A bug must not leave a resident's data on the screen or freeze the kiosk. Only the
            # exception's type is reported: its message could quote anything.
            top = self._stack[-1] if self._stack else flow
            crashed = RecordEvent(
                EventType.FLOW_ERROR,
                "critical",
                {"step": f"{top.NAME}.{top.current_step}", "error": type(exc).__name__},
            )
            end = EndSession(EndReason.ERROR, "flow_error", farewells.SESSION_ERROR, (crashed,))
            return self._end(end, leading)

    def _follow(self, result: FlowResult | None, leading: tuple[Effect, ...]) -> Output:
        """Apply a flow's answer: calls push a sub-flow, finishes pop back to its caller."""
        effects = list(leading)
        while True:
            match result:
                case None:
                    return self._output(tuple(effects))
                case Transition():
                    return self._apply(result, tuple(effects))
                case EndSession():
                    return self._end(result, tuple(effects))
                case Call(flow=name, arg=arg):
                    effects += result.effects
                    assert self._context is not None
                    child = FLOWS[name](self._context, arg)
                    self._stack.append(child)
                    result = child.begin()
                case Finish():
                    effects += result.effects
                    done = self._stack.pop()
                    if done.NAME == "maintenance":
                        effects.append(RecordEvent(EventType.MAINTENANCE_LEFT))
                    if not self._stack:
                        return self._end(EndSession(EndReason.DONE), tuple(effects))
                    result = self._stack[-1].handle(Returned(done.NAME, result.value))
                    if result is None:
                        raise FlowError(f"{self._stack[-1].NAME} ignored the return of {done.NAME}")

    def _apply(self, transition: Transition, leading: tuple[Effect, ...] = ()) -> Output:
        self._show(transition.screen)
        awaited = [e for e in transition.effects if is_awaited(e)]
        self._awaiting = awaited[0] if awaited else None
        self._awaiting_since = self._clock.monotonic()
        return self._output((*leading, *transition.effects))

    def _end(self, end: EndSession, leading: tuple[Effect, ...] = ()) -> Output:
        """The one way a session ends: wipe, report, then take card / farewell / attract."""
        if "maintenance" in self.flow_stack:
            # However it ended (left, badge timeout, restart): operations see the cabinet closed.
            leading = (*leading, RecordEvent(EventType.MAINTENANCE_LEFT))
        for flow in self._stack:
            flow.wipe()
        if self._context is not None:
            self._context.session.wipe()
        self._stack = []
        self._context = None
        self._awaiting = None  # a RunErrand or PrintReceipt carries the resident's data
        if end.card_gone and self._reader is not None:
            self._cards.discard(self._reader)
        fields: dict[str, str] = {"reason": str(end.reason)}
        if end.detail:
            fields["detail"] = end.detail
        effects = (*leading, *end.effects, RecordEvent(EventType.SESSION_ENDED, fields=fields))
        farewell = end.farewell
        if self._reader is not None and self._reader in self._cards:
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
        self._stack = []
        self._context = None
        self._reader = None
        self._waiting_for_pull = False
        self._awaiting = None
        self._elder = False  # the mode lasts for one session
        self._show(self._attract_screen())

    def _show(self, screen: Screen) -> None:
        self._screen = screen
        self._shown_at = self._clock.monotonic()

    def _attract_screen(self) -> Attract:
        guides = Action(BROWSE_GUIDES, t("attract.guides"), style=ActionStyle.PRIMARY)
        # Promise only what works now: no "insert your card" without a reader, no printing
        # without paper; the guides need neither.
        reader = first_unusable(frozenset({"card_reader"}), self._devices)
        printer = first_unusable(frozenset({"printer"}), self._devices)
        body = t("attract.body") if reader is None else t("attract.body_no_reader")
        # The other ways of identifying, each promised only once its device has said it works.
        ways = tuple(
            t(key)
            for device, key in (("id_reader", "attract.id_card"), ("scanner", "attract.e_code"))
            if device in self._devices and self._devices[device].usable
        )
        hint = (
            t("attract.hint")
            if printer is None
            else t("attract.hint_no_printer", reason=printer_line(printer[1]))
        )
        return Attract(
            "attract",
            t("attract.title"),
            (body, *ways, hint),
            (guides,),
            # Only large text on an unattended attract screen times out (back to normal).
            idle_timeout_s=self._idle_timeout_s if self._elder else None,
        )

    def _notice(self) -> PublicNotice | None:
        # Rotated by the clock: every view of the attract screen asks which notice is up now,
        # so one expires on time without anybody scheduling it.
        notice = self._notices.showing(self._clock.now())
        if notice is None:
            return None
        return PublicNotice(t(notice.title_key), t(notice.body_key), notice.urgent)

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

    def _card_left_screen(self) -> Message:
        return Message(
            "card_left",
            t("card_left.title"),
            (t("card_left.body"),),
            tone=Tone.WARNING,
            idle_timeout_s=None,
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
        if timeout is None or self._help.waiting:
            # Someone waiting for the staff they called is not idle: nothing times out meanwhile.
            return None
        if self._elder:
            timeout *= 2  # 适老化: slower readers get twice the time on every screen
        return timeout - (now - self._shown_at)

    def _countdown(self) -> int | None:
        remaining = self._remaining(self._clock.monotonic())
        if remaining is None or remaining > self._countdown_visible_s:
            return None
        return max(0, math.ceil(remaining))

    def _output(self, effects: tuple[Effect, ...] = ()) -> Output:
        return Output(self.view, effects)

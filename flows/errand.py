"""The errand flow of one session: card read, identity, menu, proof printing, guides, rating.

A declared state machine. ``Step`` lists every in-session step (its value is the id of the screen
the step shows); ``ErrandFlow.GRAPH`` declares which step may follow which, and ``MAY_END`` which
steps may end the session themselves. Both are checked when this module is imported (every step
reachable, none a dead end) and on every transition at run time. Each step has one handler,
named in ``ErrandFlow.HANDLERS``, that turns an event into a ``Transition``, an ``EndSession``,
or ``None`` for an event the step does not care about.

What is not the flow's business is the engine's (flows.engine): idle timeouts, card presence, a
card pulled mid-session, stale effect outcomes, unknown taps, and ending a session, which always
goes through the engine's one path. The session's personal data (the card holder, the issued
document and the receipt made from it) lives only in ``ErrandSession`` and ``wipe`` drops it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from devices.base import CardHolder, DeviceState, Receipt
from flows.catalogue import Catalogue, CatalogueItem, ItemKind
from flows.clock import Clock
from flows.hub import REFUSAL_REASONS, ErrandDocument
from flows.identity import InvalidIdNumber, mask_id_number, mask_name, validate_id_number
from flows.rating import RATING_LEVELS, level_for_action
from flows.receipt import guide_receipt, proof_receipt
from flows.steps import (
    Action,
    ActionStyle,
    CardPulled,
    CheckPrinter,
    Effect,
    EffectDone,
    Event,
    Failed,
    Guide,
    GuideSection,
    Menu,
    Message,
    PrintReceipt,
    Progress,
    ReadCard,
    RecordEvent,
    RunErrand,
    SubmitRating,
    Succeeded,
    Tap,
    Text,
    Tone,
    Transition,
    t,
)

THANKS_TIMEOUT_S = 8

# Printer reasons with their own message; anything else gets the generic one.
PRINTER_REASONS = frozenset({"paper_out", "cover_open", "offline", "no_response"})


class Step(enum.StrEnum):
    """Every step of a session; the value is the id of the screen it shows."""

    READING_CARD = "reading_card"
    IDENTITY = "identity"
    ERRAND_MENU = "errand_menu"
    CONFIRM = "confirm"
    CHECKING_PRINTER = "checking_printer"
    PRINTER_UNAVAILABLE = "error.printer"
    FETCHING = "fetching"
    HUB_UNAVAILABLE = "error.hub_unavailable"
    REFUSED = "error.refused"
    PRINTING = "printing"
    PRINT_FAILED = "error.print_failed"
    TAKE_CARD_AND_RECEIPT = "take_card_and_receipt"
    RATING = "rating"
    GUIDE = "guide"
    PRINTING_GUIDE = "printing_guide"
    GUIDE_PRINT_FAILED = "error.guide_print_failed"


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


FlowResult = Transition | EndSession


CARD_REMOVED_NOTICE = Farewell(
    "notice.card_removed",
    t("notice.card_removed.title"),
    (t("notice.card_removed.body"),),
    Tone.WARNING,
)
UNSUPPORTED_CARD = Farewell(
    "error.unsupported_card",
    t("error.unsupported_card.title"),
    (t("error.unsupported_card.body"),),
    Tone.ERROR,
)
INVALID_ID = Farewell(
    "error.invalid_id", t("error.invalid_id.title"), (t("error.invalid_id.body"),), Tone.ERROR
)
CARD_READ_FAILED = Farewell(
    "error.card_read", t("error.card_read.title"), (t("error.card_read.body"),), Tone.ERROR
)
THANKS = Farewell(
    "thanks", t("thanks.title"), (t("thanks.body"),), Tone.SUCCESS, timeout_s=THANKS_TIMEOUT_S
)


class FlowError(RuntimeError):
    """A handler broke the declared step graph: a bug in this module, never the resident's doing."""


class ErrandSession:
    """The one place a session's personal data lives; ``wipe`` drops all of it."""

    __slots__ = ("document", "holder", "item", "receipt")

    def __init__(self) -> None:
        self.holder: CardHolder | None = None
        self.item: CatalogueItem | None = None
        self.document: ErrandDocument | None = None
        self.receipt: Receipt | None = None  # the proof as printed (masked), kept for a reprint

    def wipe(self) -> None:
        self.holder = None
        self.item = None
        self.document = None
        self.receipt = None

    def __repr__(self) -> str:
        return "ErrandSession(<redacted>)"


def _action(action_id: str, *, primary: bool = False) -> Action:
    style = ActionStyle.PRIMARY if primary else ActionStyle.SECONDARY
    return Action(action_id, t(f"action.{action_id}"), style=style)


_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _code(reason: str) -> str:
    """An outcome's reason as it may go into an event: a short code, or ``other``.

    Reasons come from the effect runner; if one ever carried free text it must not reach telemetry.
    """
    return reason if _CODE.match(reason) else "other"


def _event(event_type: str, severity: str = "info", **fields: str | int) -> RecordEvent:
    # A plain dict: the effect runner serialises it to JSON as it is.
    return RecordEvent(event_type, severity, dict(fields))


def _errand_failed(item: CatalogueItem, stage: str, reason: str) -> RecordEvent:
    return _event("errand_failed", "warning", errand_id=item.id, stage=stage, reason=reason)


def _outcome(event: Event, kind: type[Effect]) -> Succeeded | Failed | None:
    """The outcome of a ``kind`` effect the step awaits; None for any other event."""
    if isinstance(event, EffectDone) and isinstance(event.effect, kind):
        return event.outcome
    return None


def _tapped(event: Event, choices: Mapping[str, Callable[[], FlowResult]]) -> FlowResult | None:
    """For a step that answers taps only: what the tapped target leads to; None for the rest."""
    if isinstance(event, Tap) and event.target in choices:
        return choices[event.target]()
    return None


def validate_graph(
    initial: Step, graph: Mapping[Step, frozenset[Step]], may_end: frozenset[Step]
) -> None:
    """Raise FlowError unless every step is declared, reachable, and can reach an ending step."""
    undeclared = [step for step in Step if step not in graph]
    if undeclared:
        raise FlowError(f"steps without a declared successor set: {undeclared}")
    reachable = {initial}
    frontier = [initial]
    while frontier:
        for successor in graph[frontier.pop()]:
            if successor not in reachable:
                reachable.add(successor)
                frontier.append(successor)
    unreachable = [step for step in Step if step not in reachable]
    if unreachable:
        raise FlowError(f"steps nothing leads to: {unreachable}")
    can_end = set(may_end)
    changed = True
    while changed:
        changed = False
        for step, successors in graph.items():
            if step not in can_end and successors & can_end:
                can_end.add(step)
                changed = True
    dead_ends = [step for step in Step if step not in can_end]
    if dead_ends:
        raise FlowError(f"steps from which the session can never end: {dead_ends}")


class ErrandFlow:
    """One resident's session, from reading the card to the rating."""

    INITIAL: ClassVar[Step] = Step.READING_CARD
    GRAPH: ClassVar[Mapping[Step, frozenset[Step]]] = MappingProxyType(
        {
            Step.READING_CARD: frozenset({Step.IDENTITY}),
            Step.IDENTITY: frozenset({Step.ERRAND_MENU}),
            Step.ERRAND_MENU: frozenset({Step.CONFIRM, Step.GUIDE}),
            Step.CONFIRM: frozenset({Step.CHECKING_PRINTER, Step.ERRAND_MENU}),
            Step.CHECKING_PRINTER: frozenset({Step.FETCHING, Step.PRINTER_UNAVAILABLE}),
            Step.PRINTER_UNAVAILABLE: frozenset({Step.ERRAND_MENU}),
            Step.FETCHING: frozenset({Step.PRINTING, Step.HUB_UNAVAILABLE, Step.REFUSED}),
            Step.HUB_UNAVAILABLE: frozenset({Step.CHECKING_PRINTER, Step.ERRAND_MENU}),
            Step.REFUSED: frozenset({Step.ERRAND_MENU}),
            Step.PRINTING: frozenset({Step.TAKE_CARD_AND_RECEIPT, Step.PRINT_FAILED}),
            Step.PRINT_FAILED: frozenset({Step.PRINTING}),
            Step.TAKE_CARD_AND_RECEIPT: frozenset({Step.RATING}),
            Step.RATING: frozenset(),
            Step.GUIDE: frozenset({Step.PRINTING_GUIDE, Step.ERRAND_MENU}),
            Step.PRINTING_GUIDE: frozenset({Step.GUIDE, Step.GUIDE_PRINT_FAILED}),
            Step.GUIDE_PRINT_FAILED: frozenset({Step.PRINTING_GUIDE, Step.GUIDE}),
        }
    )
    # Steps whose handlers may end the session (the engine may end it anywhere: timeout, card).
    MAY_END: ClassVar[frozenset[Step]] = frozenset(
        {
            Step.READING_CARD,
            Step.IDENTITY,
            Step.ERRAND_MENU,
            Step.PRINTER_UNAVAILABLE,
            Step.REFUSED,
            Step.PRINT_FAILED,
            Step.RATING,
        }
    )
    # Where taking the card out is the expected move rather than the end of the session.
    CARD_PULL_EXPECTED: ClassVar[frozenset[Step]] = frozenset({Step.TAKE_CARD_AND_RECEIPT})

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        clock: Clock,
        terminal_id: str,
        zone: dt.tzinfo,
        idle_timeout_s: int,
    ) -> None:
        self._catalogue = catalogue
        self._clock = clock
        self._terminal_id = terminal_id
        self._zone = zone
        self._idle_timeout_s = idle_timeout_s
        self._session = ErrandSession()
        self._step = self.INITIAL

    @property
    def step(self) -> Step:
        return self._step

    @property
    def expects_card_pull(self) -> bool:
        return self._step in self.CARD_PULL_EXPECTED

    def start(self, reader: str) -> Transition:
        """The first step: read the card just inserted in ``reader``."""
        self._step = self.INITIAL
        screen = Progress(Step.READING_CARD, t("reading_card.title"), (t("reading_card.body"),))
        return Transition(screen, (ReadCard(reader),))

    def handle(self, event: Event) -> FlowResult | None:
        """Let the current step answer ``event``; None when the step does not care about it."""
        result = self.HANDLERS[self._step](self, event)
        if result is None:
            return None
        if isinstance(result, EndSession):
            if self._step not in self.MAY_END:
                raise FlowError(f"step {self._step} may not end the session")
            return result
        try:
            successor = Step(result.screen.screen)
        except ValueError:
            raise FlowError(f"step {self._step} showed an undeclared screen") from None
        if successor not in self.GRAPH[self._step]:
            raise FlowError(f"transition {self._step} -> {successor} is not declared")
        self._step = successor
        return result

    def wipe(self) -> None:
        """Drop every piece of personal data this session holds."""
        self._session.wipe()

    # --- the steps ---------------------------------------------------------------------------

    def _on_reading_card(self, event: Event) -> FlowResult | None:
        outcome = _outcome(event, ReadCard)
        if outcome is None:
            return None
        if isinstance(outcome, Failed):
            return self._card_not_read(outcome.reason)
        holder = outcome.value
        if not isinstance(holder, CardHolder):
            return self._card_not_read("card_data_invalid")
        try:
            number = validate_id_number(holder.id_number)
        except InvalidIdNumber as exc:
            # A wrong check digit is a card issued with a bad number: its own screen, so the
            # resident knows to go to a window rather than to try again. A malformed number is
            # a bad read like any other.
            if exc.reason == "check_digit":
                return EndSession(EndReason.ERROR, "invalid_id", INVALID_ID)
            return self._card_not_read("card_data_invalid")
        self._session.holder = dataclasses.replace(holder, id_number=number)
        return self._show_identity()

    def _on_identity(self, event: Event) -> FlowResult | None:
        return _tapped(
            event, {"continue": self._show_menu, "cancel": lambda: EndSession(EndReason.CANCEL)}
        )

    def _on_errand_menu(self, event: Event) -> FlowResult | None:
        if not isinstance(event, Tap):
            return None
        if event.target == "finish":
            return EndSession(EndReason.DONE)
        if not event.target.startswith("errand."):
            return None
        item = self._catalogue.item(event.target.removeprefix("errand."))
        if item is None:
            return None
        self._session.item = item
        if item.kind is ItemKind.INSTANT:
            return self._show_confirm(item)
        return self._show_guide(item, effects=(_event("guide_viewed", item_id=item.id),))

    def _on_confirm(self, event: Event) -> FlowResult | None:
        return _tapped(event, {"confirm": self._check_printer, "back": self._show_menu})

    def _on_checking_printer(self, event: Event) -> FlowResult | None:
        outcome = _outcome(event, CheckPrinter)
        if outcome is None:
            return None
        if isinstance(outcome, Failed):
            return self._show_printer_unavailable(outcome.reason)
        state = outcome.value
        if not isinstance(state, DeviceState):
            return self._show_printer_unavailable("no_response")
        if not state.usable:
            return self._show_printer_unavailable(state.reason or "fault")
        # Printer first, hub second: asking the hub issues a case number, and a proof the
        # resident cannot get on paper is worse than not starting.
        holder = self._holder()
        screen = Progress(Step.FETCHING, t("fetching.title"), (t("fetching.body"),))
        return Transition(screen, (RunErrand(self._item().id, holder),))

    def _on_printer_unavailable(self, event: Event) -> FlowResult | None:
        return self._back_or_finish(event)

    def _on_fetching(self, event: Event) -> FlowResult | None:
        outcome = _outcome(event, RunErrand)
        if outcome is None:
            return None
        item = self._item()
        if isinstance(outcome, Failed):
            reason = _code(outcome.reason)
            failed = _errand_failed(item, "hub", reason)
            if reason in REFUSAL_REASONS:
                return self._show_refused(reason, failed)
            return self._show_hub_unavailable(reason, failed)
        document = outcome.value
        if not isinstance(document, ErrandDocument) or document.errand_id != item.id:
            return self._show_hub_unavailable("hub_error", _errand_failed(item, "hub", "hub_error"))
        self._session.document = document
        self._session.receipt = proof_receipt(
            document,
            self._holder(),
            terminal_id=self._terminal_id,
            printed_at=self._clock.now(),
            zone=self._zone,
        )
        return self._print_proof()

    def _on_hub_unavailable(self, event: Event) -> FlowResult | None:
        return _tapped(event, {"retry": self._check_printer, "back": self._show_menu})

    def _on_refused(self, event: Event) -> FlowResult | None:
        return self._back_or_finish(event)

    def _on_printing(self, event: Event) -> FlowResult | None:
        outcome = _outcome(event, PrintReceipt)
        if outcome is None:
            return None
        item = self._item()
        if isinstance(outcome, Failed):
            return self._print_failed(Step.PRINT_FAILED, "finish", "print", item, outcome)
        screen = Message(
            Step.TAKE_CARD_AND_RECEIPT,
            t("take_card_and_receipt.title"),
            (t("take_card_and_receipt.body"),),
            tone=Tone.SUCCESS,
            idle_timeout_s=self._idle_timeout_s,
        )
        done = (
            _event("errand_completed", errand_id=item.id),
            _event("receipt_printed", kind="proof", errand_id=item.id),
        )
        return Transition(screen, done)

    def _print_failed(
        self, step: Step, way_out: str, stage: str, item: CatalogueItem, outcome: Failed
    ) -> Transition:
        """A print job failed: say why, offer to print the same thing again, or a way out."""
        reason = _code(outcome.reason)
        key = step.value  # error.print_failed / error.guide_print_failed
        screen = Message(
            step,
            t(f"{key}.title"),
            (_printer_line(reason), t(f"{key}.body")),
            (_action("retry", primary=True), _action(way_out)),
            Tone.ERROR,
            self._idle_timeout_s,
        )
        return Transition(screen, (_errand_failed(item, stage, reason),))

    def _on_print_failed(self, event: Event) -> FlowResult | None:
        # Retry prints the same receipt again: the hub is not asked twice and nothing is lost.
        return _tapped(event, {"retry": self._print_proof, "finish": _done})

    def _on_take_card_and_receipt(self, event: Event) -> FlowResult | None:
        # The engine passes the session card's CardPulled here, the one step that expects it.
        if not isinstance(event, CardPulled):
            return None
        document = self._document()
        options = tuple(Action(level.action_id, t(level.key)) for level in RATING_LEVELS)
        screen = Menu(
            Step.RATING,
            t("rating.title"),
            options,
            (t("rating.body"), t("rating.case_number", case_number=document.case_number)),
            (_action("skip"),),
            self._idle_timeout_s,
        )
        return Transition(screen)

    def _on_rating(self, event: Event) -> FlowResult | None:
        if not isinstance(event, Tap):
            return None
        document = self._document()
        if event.target == "skip":
            skipped = _event("rating_skipped", errand_id=document.errand_id)
            return EndSession(EndReason.DONE, farewell=THANKS, effects=(skipped,))
        level = level_for_action(event.target)
        if level is None:
            return None
        effects: tuple[Effect, ...] = (
            SubmitRating(document.errand_id, document.case_number, level.level),
            _event("rating_submitted", errand_id=document.errand_id, level=level.level),
        )
        return EndSession(EndReason.DONE, farewell=THANKS, effects=effects)

    def _on_guide(self, event: Event) -> FlowResult | None:
        return _tapped(event, {"print_guide": self._print_guide, "back": self._show_menu})

    def _on_printing_guide(self, event: Event) -> FlowResult | None:
        outcome = _outcome(event, PrintReceipt)
        if outcome is None:
            return None
        item = self._item()
        if isinstance(outcome, Failed):
            return self._print_failed(Step.GUIDE_PRINT_FAILED, "back", "print_guide", item, outcome)
        printed = _event("receipt_printed", kind="guide", errand_id=item.id)
        return self._show_guide(item, printed=True, effects=(printed,))

    def _on_guide_print_failed(self, event: Event) -> FlowResult | None:
        return _tapped(
            event, {"retry": self._print_guide, "back": lambda: self._show_guide(self._item())}
        )

    # Declared, not looked up by name: a step without a handler fails at import (see below).
    HANDLERS: ClassVar[Mapping[Step, Callable[[ErrandFlow, Event], FlowResult | None]]] = (
        MappingProxyType(
            {
                Step.READING_CARD: _on_reading_card,
                Step.IDENTITY: _on_identity,
                Step.ERRAND_MENU: _on_errand_menu,
                Step.CONFIRM: _on_confirm,
                Step.CHECKING_PRINTER: _on_checking_printer,
                Step.PRINTER_UNAVAILABLE: _on_printer_unavailable,
                Step.FETCHING: _on_fetching,
                Step.HUB_UNAVAILABLE: _on_hub_unavailable,
                Step.REFUSED: _on_refused,
                Step.PRINTING: _on_printing,
                Step.PRINT_FAILED: _on_print_failed,
                Step.TAKE_CARD_AND_RECEIPT: _on_take_card_and_receipt,
                Step.RATING: _on_rating,
                Step.GUIDE: _on_guide,
                Step.PRINTING_GUIDE: _on_printing_guide,
                Step.GUIDE_PRINT_FAILED: _on_guide_print_failed,
            }
        )
    )

    # --- screens -----------------------------------------------------------------------------

    def _show_identity(self) -> Transition:
        holder = self._holder()
        screen = Message(
            Step.IDENTITY,
            t("identity.title"),
            (
                t("identity.name", name=mask_name(holder.name)),
                t("identity.id_number", id_number=mask_id_number(holder.id_number)),
                t("identity.hint"),
            ),
            (_action("continue", primary=True), _action("cancel")),
            idle_timeout_s=self._idle_timeout_s,
        )
        return Transition(screen)

    def _show_menu(self) -> Transition:
        options = tuple(
            Action(f"errand.{item.id}", t(item.title_key)) for item in self._catalogue.items
        )
        screen = Menu(
            Step.ERRAND_MENU,
            t("errand_menu.title"),
            options,
            (t("errand_menu.body"),),
            (_action("finish"),),
            self._idle_timeout_s,
        )
        return Transition(screen)

    def _show_confirm(self, item: CatalogueItem) -> Transition:
        screen = Message(
            Step.CONFIRM,
            t("confirm.title"),
            (t("confirm.errand", errand=t(item.title_key)), t("confirm.privacy")),
            (_action("confirm", primary=True), _action("back")),
            idle_timeout_s=self._idle_timeout_s,
        )
        return Transition(screen)

    def _check_printer(self) -> Transition:
        screen = Progress(Step.CHECKING_PRINTER, t("checking_printer.title"))
        return Transition(screen, (CheckPrinter(),))

    def _show_printer_unavailable(self, reason: str) -> Transition:
        reason = _code(reason)
        screen = Message(
            Step.PRINTER_UNAVAILABLE,
            t("error.printer.title"),
            (_printer_line(reason), t("error.printer.body")),
            (_action("back", primary=True), _action("finish")),
            Tone.WARNING,
            self._idle_timeout_s,
        )
        return Transition(screen, (_errand_failed(self._item(), "printer", reason),))

    def _show_hub_unavailable(self, reason: str, failed: RecordEvent) -> Transition:
        body = "error.hub_unavailable.body" if reason == "hub_unavailable" else "error.hub.body"
        screen = Message(
            Step.HUB_UNAVAILABLE,
            t("error.hub_unavailable.title"),
            (t(body),),
            (_action("retry", primary=True), _action("back")),
            Tone.ERROR,
            self._idle_timeout_s,
        )
        return Transition(screen, (failed,))

    def _show_refused(self, reason: str, failed: RecordEvent) -> Transition:
        screen = Message(
            Step.REFUSED,
            t("error.refused.title"),
            (t(f"error.refused.{reason}"), t("error.refused.body")),
            (_action("back"), _action("finish", primary=True)),
            Tone.ERROR,
            self._idle_timeout_s,
        )
        return Transition(screen, (failed,))

    def _print_proof(self) -> Transition:
        receipt = self._session.receipt
        if receipt is None:
            raise FlowError("printing a proof that was never made")
        screen = Progress(Step.PRINTING, t("printing.title"), (t("printing.body"),))
        return Transition(screen, (PrintReceipt(receipt),))

    def _show_guide(
        self, item: CatalogueItem, *, printed: bool = False, effects: Iterable[Effect] = ()
    ) -> Transition:
        guide = item.guide
        if guide is None:
            raise FlowError(f"item {item.id} has no guide")
        materials = tuple(
            t(
                "guide.material",
                index=str(number),
                name=t(item.key("materials", material.id, "name")),
                notes=(
                    t("guide.notes", notes=t(item.key("materials", material.id, "notes")))
                    if material.notes is not None
                    else ""
                ),
                deferrable=t("guide.deferrable") if material.deferrable else "",
            )
            for number, material in enumerate(guide.materials, start=1)
        )
        sections = (
            GuideSection(t("guide.materials"), materials),
            GuideSection(
                t("guide.time_limit"),
                (t("guide.time_limit_value", days=str(guide.time_limit_working_days)),),
            ),
            GuideSection(t("guide.fees"), (t(item.key("fees")),)),
            GuideSection(t("guide.department"), (t(item.key("department")),)),
            GuideSection(
                t("guide.legal_basis"),
                tuple(
                    t(item.key("legal_basis", str(number)))
                    for number in range(1, len(guide.legal_basis) + 1)
                ),
            ),
        )
        lines: list[Text] = []
        if printed:
            lines.append(t("guide.printed"))
        if item.summary is not None:
            lines.append(t(item.key("summary")))
        lines.append(t("guide.all_at_once"))
        if any(material.deferrable for material in guide.materials):
            lines.append(t("guide.deferrable_hint"))
        screen = Guide(
            Step.GUIDE,
            t(item.title_key),
            sections,
            qr_data=guide.guide_url,
            qr_caption=t("guide.qr_caption"),
            lines=tuple(lines),
            actions=(_action("print_guide", primary=True), _action("back")),
            # Reading a full guide takes longer than pressing a button.
            idle_timeout_s=2 * self._idle_timeout_s,
        )
        return Transition(screen, tuple(effects))

    def _print_guide(self) -> Transition:
        receipt = guide_receipt(
            self._item(),
            terminal_id=self._terminal_id,
            printed_at=self._clock.now(),
            zone=self._zone,
        )
        screen = Progress(Step.PRINTING_GUIDE, t("printing_guide.title"))
        return Transition(screen, (PrintReceipt(receipt),))

    # --- helpers -----------------------------------------------------------------------------

    def _card_not_read(self, reason: str) -> EndSession:
        if reason == "card_removed":
            return EndSession(EndReason.CARD_PULLED, "", CARD_REMOVED_NOTICE, card_gone=True)
        if reason == "unsupported_card":
            return EndSession(EndReason.ERROR, "unsupported_card", UNSUPPORTED_CARD)
        return EndSession(EndReason.ERROR, _code(reason), CARD_READ_FAILED)

    def _back_or_finish(self, event: Event) -> FlowResult | None:
        return _tapped(event, {"back": self._show_menu, "finish": _done})

    def _holder(self) -> CardHolder:
        if self._session.holder is None:
            raise FlowError("no card holder in this session")
        return self._session.holder

    def _item(self) -> CatalogueItem:
        if self._session.item is None:
            raise FlowError("no errand chosen in this session")
        return self._session.item

    def _document(self) -> ErrandDocument:
        if self._session.document is None:
            raise FlowError("no document issued in this session")
        return self._session.document


def _done() -> EndSession:
    return EndSession(EndReason.DONE)


def _printer_line(reason: str) -> Text:
    known = reason if reason in PRINTER_REASONS else "other"
    return t(f"error.printer.{known}")


# The graph and the handler table are checked once, here, so a broken flow cannot even be imported.
validate_graph(ErrandFlow.INITIAL, ErrandFlow.GRAPH, ErrandFlow.MAY_END)
if set(ErrandFlow.HANDLERS) != set(Step):
    raise FlowError("every step needs exactly one handler in ErrandFlow.HANDLERS")

"""Identify: whichever way a resident shows who they are, check it and confirm it (masked).

The bottom of an identified session's stack: identify -> home -> errand -> rating. Three ways in,
one identity out (``ctx.session.holder``, where every flow above finds it; masked on screen):

- a social security card held in the PC/SC reader (``CardInReader``): read it (``ReadCard``);
  a card without the SSSE application but with a listed UID is a staff badge, and opens the
  maintenance menu instead (flows.maintenance); an unlisted one is refused like any other card;
- a resident ID card presented to the SAM reader (``PresentedIdCard``): read by the device at
  once, so the flow begins at the identity screen; an expired card is declined;
- an e-ID code shown from a phone to the scanner (``IdentityCode``): the hub resolves the opaque
  token (``ResolveCode``); expired, reused and foreign codes are refused, each with its message.

Whatever the way, the same checks follow (the ID number's check digit) and the same ``CardHolder``
goes up the stack; only the social security card is held in a slot, so only its session ends
when the card leaves (the engine knows which sessions have a reader).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from devices.base import CardHolder, IdentityDocument, StaffBadge
from flows import farewells
from flows.event_names import EventType
from flows.identity import InvalidIdNumber, mask_id_number, mask_name, validate_id_number
from flows.operations_events import code
from flows.platform import (
    Call,
    EndReason,
    EndSession,
    Farewell,
    Flow,
    FlowResult,
    common_action,
    step,
    tapped,
)
from flows.steps import (
    EffectDone,
    Event,
    Failed,
    Message,
    Progress,
    ReadCard,
    RecordEvent,
    ResolveCode,
    Returned,
    Transition,
)


@dataclass(frozen=True)
class CardInReader:
    """A card went into ``reader`` and stays there for the session."""

    reader: str


@dataclass(frozen=True, repr=False)
class PresentedIdCard:
    """A resident ID card the SAM reader has read already; the card itself is gone again."""

    holder: CardHolder

    def __repr__(self) -> str:
        return "PresentedIdCard(<redacted>)"


@dataclass(frozen=True, repr=False)
class IdentityCode:
    """An e-ID code scanned from a phone: an opaque token only the hub can resolve."""

    code: str

    def __repr__(self) -> str:
        return "IdentityCode(<code>)"


IdentifyArg = CardInReader | PresentedIdCard | IdentityCode

# Why an ID card presented to the SAM reader gave no identity -> what the resident is told.
_PRESENTED_FAREWELLS: dict[str, Farewell] = {
    "residence_permit": farewells.RESIDENCE_PERMIT,
    "foreign_permanent_resident": farewells.FOREIGN_PERMANENT_RESIDENT,
    "unknown_card_type": farewells.ID_CARD_UNKNOWN_TYPE,
    # Lifted off before the read was done (the answer cut off, or gone by the select).
    "card_removed": farewells.ID_CARD_MOVED,
    "answer_cut_off": farewells.ID_CARD_MOVED,
    "no_card": farewells.ID_CARD_MOVED,
}

# Why the hub would not resolve an e-ID code -> what the resident is told.
_CODE_FAREWELLS: dict[str, Farewell] = {
    "code_expired": farewells.CODE_EXPIRED,
    "code_used": farewells.CODE_USED,
    "code_unknown": farewells.CODE_FOREIGN,
}


def presented_refusal(reason: str) -> Farewell:
    """What to show when an ID card was presented but gave no identity (``reason`` from the
    reader: another document type, moved away mid-read, a read that failed)."""
    return _PRESENTED_FAREWELLS.get(reason, farewells.ID_CARD_READ_FAILED)


class IdentifyFlow(Flow):
    """Identifies the resident by the way given as ``arg`` (an ``IdentifyArg``)."""

    NAME = "identify"
    INITIAL = "reading_card"
    STEPS = (
        step("reading_card", Progress, awaits=ReadCard, to=("identity",), calls=("maintenance",),
             ends=True),
        step("resolving_code", Progress, awaits=ResolveCode, to=("identity",), ends=True,
             entry=True),
        step("identity", Message, calls=("home",), ends=True, entry=True),
    )

    def start(self) -> Transition:
        arg = self.arg
        if isinstance(arg, CardInReader):
            return Transition(self._progress("reading_card"), (ReadCard(arg.reader),))
        if isinstance(arg, IdentityCode):
            return Transition(self._progress("resolving_code"), (ResolveCode(arg.code),))
        if isinstance(arg, PresentedIdCard):
            # The engine checked the card before starting (``check_presented``): a card the
            # checks refuse never gets a session.
            self.ctx.session.holder = arg.holder
            return self._show_identity()
        raise TypeError("the identify flow needs a card in a reader, an ID card or a code")

    def step_reading_card(self, event: Event) -> FlowResult | None:
        if isinstance(event, Returned):
            return EndSession(EndReason.DONE, "maintenance")  # staff left the maintenance menu
        if not isinstance(event, EffectDone):
            return None
        outcome = event.outcome
        if isinstance(outcome, Failed):
            return _card_not_read(outcome.reason)
        card = outcome.value
        if isinstance(card, StaffBadge):
            if card.uid in self.ctx.staff_badges:
                return Call("maintenance")
            # The UID stays here: it is a credential. Operations hear that a badge was refused.
            refused = RecordEvent(EventType.BADGE_REFUSED, "warning")
            return EndSession(EndReason.ERROR, "badge_not_listed", farewells.UNSUPPORTED_CARD,
                              (refused,))
        if not isinstance(card, CardHolder):
            return _card_not_read("card_data_invalid")
        return self._identified(card)

    def step_resolving_code(self, event: Event) -> FlowResult | None:
        if not isinstance(event, EffectDone):
            return None
        outcome = event.outcome
        if isinstance(outcome, Failed):
            farewell = _CODE_FAREWELLS.get(outcome.reason, farewells.CODE_NOT_CHECKED)
            return EndSession(EndReason.ERROR, code(outcome.reason), farewell)
        holder = outcome.value
        if not isinstance(holder, CardHolder):
            return EndSession(EndReason.ERROR, "hub_error", farewells.CODE_NOT_CHECKED)
        return self._identified(dataclasses.replace(holder, document=IdentityDocument.E_CODE))

    def step_identity(self, event: Event) -> FlowResult | None:
        if isinstance(event, Returned):
            # The home menu ends the session itself; should it ever return, so does this.
            return EndSession(EndReason.DONE)
        return tapped(
            event,
            {"continue": lambda: Call("home"), "cancel": lambda: EndSession(EndReason.CANCEL)},
        )

    def _identified(self, holder: CardHolder) -> FlowResult:
        checked = check_holder(holder)
        if isinstance(checked, EndSession):
            return checked
        self.ctx.session.holder = checked
        return self._show_identity()

    def _progress(self, of_step: str) -> Progress:
        return Progress(
            self.screen_id(of_step),
            self.text(of_step, "title"),
            (self.text(of_step, "body"),),
        )

    def _show_identity(self) -> Transition:
        holder = self.ctx.session.holder
        assert holder is not None
        screen = Message(
            self.screen_id("identity"),
            self.text("identity", "title"),
            (
                self.text("identity", "document_" + holder.document.value),
                self.text("identity", "name", name=mask_name(holder.name)),
                self.text("identity", "id_number", id_number=mask_id_number(holder.id_number)),
                self.text("identity", "hint"),
            ),
            (common_action("continue", primary=True), common_action("cancel")),
            idle_timeout_s=self.ctx.idle_timeout_s,
        )
        return Transition(screen)


def check_holder(holder: CardHolder) -> CardHolder | EndSession:
    """The checks every way of identifying shares: the ID number, normalised (x -> X)."""
    try:
        number = validate_id_number(holder.id_number)
    except InvalidIdNumber as exc:
        # A wrong check digit is a document issued with a bad number: its own screen, so the
        # resident knows to go to a window rather than to try again. A malformed number is
        # a bad read like any other.
        if exc.reason == "check_digit":
            return EndSession(EndReason.ERROR, "invalid_id", farewells.INVALID_ID)
        return _card_not_read("card_data_invalid")
    return dataclasses.replace(holder, id_number=number)


def check_presented(
    holder: CardHolder | None, reason: str, today: dt.date
) -> CardHolder | Farewell:
    """Whether an ID card presented to the SAM reader may start a session: the checked holder
    when it may, else what to tell the resident (another document, a failed read, a bad number,
    an expired card). ``today`` is the local date: the card's 有效期止 is its last valid day."""
    if holder is None:
        return presented_refusal(reason)
    if holder.expires is not None and holder.expires < today:
        return farewells.ID_CARD_EXPIRED
    checked = check_holder(holder)
    if isinstance(checked, EndSession):
        return checked.farewell or farewells.ID_CARD_READ_FAILED
    return checked


def _card_not_read(reason: str) -> EndSession:
    if reason == "card_removed":
        return EndSession(EndReason.CARD_PULLED, "", farewells.CARD_REMOVED, card_gone=True)
    if reason == "unsupported_card":
        return EndSession(EndReason.ERROR, "unsupported_card", farewells.UNSUPPORTED_CARD)
    return EndSession(EndReason.ERROR, code(reason), farewells.CARD_READ_FAILED)

"""Identify: read the card just inserted, show who it belongs to (masked), then the home menu.

The bottom of a card session's stack: identify -> home -> errand -> rating. The resident's
identity goes into ``ctx.session.holder``, where every flow above finds it; masked on screen.
"""

from __future__ import annotations

import dataclasses

from devices.base import CardHolder
from flows import farewells
from flows.identity import InvalidIdNumber, mask_id_number, mask_name, validate_id_number
from flows.operations_events import code
from flows.platform import (
    Call,
    EndReason,
    EndSession,
    Flow,
    FlowResult,
    common_action,
    step,
    tapped,
)
from flows.steps import EffectDone, Event, Failed, Message, Progress, ReadCard, Returned, Transition


class IdentifyFlow(Flow):
    """Reads the card in the reader given as ``arg`` and confirms the identity."""

    NAME = "identify"
    INITIAL = "reading_card"
    STEPS = (
        step("reading_card", Progress, awaits=ReadCard, to=("identity",), ends=True),
        step("identity", Message, calls=("home",), ends=True),
    )

    def start(self) -> Transition:
        if not isinstance(self.arg, str):
            raise TypeError("the identify flow needs the reader's name")
        screen = Progress(
            self.screen_id("reading_card"),
            self.text("reading_card", "title"),
            (self.text("reading_card", "body"),),
        )
        return Transition(screen, (ReadCard(self.arg),))

    def step_reading_card(self, event: Event) -> FlowResult | None:
        if not isinstance(event, EffectDone):
            return None
        outcome = event.outcome
        if isinstance(outcome, Failed):
            return _card_not_read(outcome.reason)
        holder = outcome.value
        if not isinstance(holder, CardHolder):
            return _card_not_read("card_data_invalid")
        try:
            number = validate_id_number(holder.id_number)
        except InvalidIdNumber as exc:
            # A wrong check digit is a card issued with a bad number: its own screen, so the
            # resident knows to go to a window rather than to try again. A malformed number is
            # a bad read like any other.
            if exc.reason == "check_digit":
                return EndSession(EndReason.ERROR, "invalid_id", farewells.INVALID_ID)
            return _card_not_read("card_data_invalid")
        self.ctx.session.holder = dataclasses.replace(holder, id_number=number)
        return self._show_identity()

    def step_identity(self, event: Event) -> FlowResult | None:
        if isinstance(event, Returned):
            # The home menu ends the session itself; should it ever return, so does this.
            return EndSession(EndReason.DONE)
        return tapped(
            event,
            {"continue": lambda: Call("home"), "cancel": lambda: EndSession(EndReason.CANCEL)},
        )

    def _show_identity(self) -> Transition:
        holder = self.ctx.session.holder
        assert holder is not None
        screen = Message(
            self.screen_id("identity"),
            self.text("identity", "title"),
            (
                self.text("identity", "name", name=mask_name(holder.name)),
                self.text("identity", "id_number", id_number=mask_id_number(holder.id_number)),
                self.text("identity", "hint"),
            ),
            (common_action("continue", primary=True), common_action("cancel")),
            idle_timeout_s=self.ctx.idle_timeout_s,
        )
        return Transition(screen)


def _card_not_read(reason: str) -> EndSession:
    if reason == "card_removed":
        return EndSession(EndReason.CARD_PULLED, "", farewells.CARD_REMOVED, card_gone=True)
    if reason == "unsupported_card":
        return EndSession(EndReason.ERROR, "unsupported_card", farewells.UNSUPPORTED_CARD)
    return EndSession(EndReason.ERROR, code(reason), farewells.CARD_READ_FAILED)

"""Proof: an instant errand (一证通办) that prints a proof, e.g. the social insurance enrollment
proof: confirm, check the printer, ask the hub, print, take card and receipt, then the rating.

Printer first, hub second: asking the hub issues a case number, and a proof the resident cannot
get on paper is worse than not starting. The document and its receipt are personal data held
only here; ``wipe`` drops them.
"""

from __future__ import annotations

from devices.base import DeviceState, IdentityDocument, Receipt
from flows.catalogue import CatalogueItem
from flows.device_text import printer_line
from flows.event_names import EventType
from flows.hub import FINAL_REFUSALS, ErrandDocument
from flows.operations_events import code, errand_failed, event
from flows.platform import (
    Call,
    EndReason,
    EndSession,
    Finish,
    Flow,
    FlowContext,
    FlowError,
    FlowResult,
    common_action,
    step,
    tapped,
)
from flows.rating import RatingRequest
from flows.receipt import proof_receipt
from flows.report import ReportContext
from flows.steps import (
    CheckPrinter,
    Confirm,
    Done,
    EffectDone,
    Event,
    Failed,
    Message,
    PrintReceipt,
    Progress,
    RecordEvent,
    Returned,
    RunErrand,
    SummaryRow,
    Tap,
    Tone,
    Transition,
    t,
)


class ProofFlow(Flow):
    """Runs the instant errand ``arg`` (a CatalogueItem) for the identified resident."""

    NAME = "proof"
    NEEDS = frozenset({"printer"})
    INITIAL = "confirm"
    STEPS = (
        step("confirm", Confirm, to=("checking_printer",), ends=True),
        step("checking_printer", Progress, awaits=CheckPrinter,
             to=("fetching", "printer_unavailable")),
        step("printer_unavailable", Message, calls=("report",), ends=True),
        step("fetching", Progress, awaits=RunErrand,
             to=("printing", "hub_unavailable", "refused")),
        step("hub_unavailable", Message, to=("checking_printer",), calls=("report",),
             ends=True),
        step("refused", Message, calls=("report",), ends=True),
        step("printing", Progress, awaits=PrintReceipt, to=("done", "print_failed")),
        step("print_failed", Message, to=("printing",), ends=True),
        step("done", Done, card_pull_expected=True, calls=("rating",), ends=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._document: ErrandDocument | None = None
        self._receipt: Receipt | None = None  # the proof as printed (masked), kept for a reprint
        self._shown: Message | None = None  # the failure screen a report returns to

    def wipe(self) -> None:
        self._document = None
        self._receipt = None

    def start(self) -> Transition:
        item = self._item()
        screen = Confirm(
            self.screen_id("confirm"),
            self.text("confirm", "title"),
            (SummaryRow(self.text("confirm", "errand"), t(item.title_key)),),
            (self.text("confirm", "privacy"),),
            (self.action("confirm", "confirm", primary=True), common_action("back")),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

    # --- steps -----------------------------------------------------------------------------------

    def step_confirm(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"confirm": self._check_printer, "back": Finish})

    def step_checking_printer(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            return self._printer_unavailable(outcome.reason)
        state = outcome.value
        if not isinstance(state, DeviceState):
            return self._printer_unavailable("no_response")
        if not state.usable:
            return self._printer_unavailable(state.reason or "fault")
        holder = self.ctx.session.holder
        if holder is None:
            raise FlowError("a proof needs an identified resident")
        screen = Progress(
            self.screen_id("fetching"),
            self.text("fetching", "title"),
            (self.text("fetching", "body"),),
        )
        return Transition(screen, (RunErrand(self._item().id, holder),))

    def step_printer_unavailable(self, ev: Event) -> FlowResult | None:
        return self._back_or_finish(ev)

    def step_fetching(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        item = self._item()
        if isinstance(outcome, Failed):
            reason = code(outcome.reason)
            failed = errand_failed(item, "hub", reason)
            if reason in FINAL_REFUSALS:
                return self._refused(reason, failed)
            return self._hub_unavailable(reason, failed)
        document = outcome.value
        if not isinstance(document, ErrandDocument) or document.errand_id != item.id:
            return self._hub_unavailable("hub_error", errand_failed(item, "hub", "hub_error"))
        holder = self.ctx.session.holder
        if holder is None:
            raise FlowError("a proof needs an identified resident")
        self._document = document
        self._receipt = proof_receipt(
            document,
            holder,
            terminal_id=self.ctx.terminal_id,
            printed_at=self.ctx.clock.now(),
            zone=self.ctx.zone,
        )
        return self._print()

    def step_hub_unavailable(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._reshow()
        return tapped(ev, {"retry": self._check_printer, "back": Finish,
                           "report": self._report})

    def step_refused(self, ev: Event) -> FlowResult | None:
        return self._back_or_finish(ev)

    def step_printing(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        item = self._item()
        if isinstance(ev.outcome, Failed):
            reason = code(ev.outcome.reason)
            failed = errand_failed(item, "print", reason)
            return Transition(self.print_failed(reason, "finish"), (failed,))
        holder = self.ctx.session.holder
        if holder is not None and holder.document is not IdentityDocument.SOCIAL_SECURITY_CARD:
            # An ID card or an e-ID code is not in any reader: nothing to take out, so the
            # resident goes on to the rating with a tap instead of by taking the card.
            screen_done = Done(
                self.screen_id("done"),
                self.text("done", "title"),
                (self.text("done", "body_no_card"),),
                (self.action("done", "rate", primary=True),),
                idle_timeout_s=self.ctx.idle_timeout_s,
            )
        else:
            screen_done = Done(
                self.screen_id("done"),
                self.text("done", "title"),
                (self.text("done", "body"),),
                idle_timeout_s=self.ctx.idle_timeout_s,
            )
        return Transition(
            screen_done,
            (
                event(EventType.ERRAND_COMPLETED, errand_id=item.id),
                event(EventType.RECEIPT_PRINTED, kind="proof", errand_id=item.id),
            ),
        )

    def step_print_failed(self, ev: Event) -> FlowResult | None:
        # Retry prints the same receipt again: the hub is not asked twice and nothing is lost.
        return tapped(ev, {"retry": self._print, "finish": lambda: EndSession(EndReason.DONE)})

    def step_done(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return Finish()
        # The engine passes the session card's CardPulled here, the one step that expects it; a
        # session without a card in a reader goes on by the ``rate`` button instead.
        if isinstance(ev, Tap) and ev.target != "rate":
            return None
        document = self._document
        if document is None:
            raise FlowError("no document issued in this session")
        return Call("rating", RatingRequest(document.errand_id, document.case_number))

    # --- screens ---------------------------------------------------------------------------------

    def _check_printer(self) -> Transition:
        screen = Progress(
            self.screen_id("checking_printer"), self.text("checking_printer", "title")
        )
        return Transition(screen, (CheckPrinter(),))

    def _printer_unavailable(self, reason: str) -> Transition:
        reason = code(reason)
        screen = Message(
            self.screen_id("printer_unavailable"),
            self.text("printer_unavailable", "title"),
            (printer_line(reason), self.text("printer_unavailable", "body")),
            (common_action("back", primary=True), common_action("report"),
             common_action("finish")),
            Tone.WARNING,
            self.ctx.idle_timeout_s,
        )
        self._shown = screen
        return Transition(screen, (errand_failed(self._item(), "printer", reason),))

    def _hub_unavailable(self, reason: str, failed: RecordEvent) -> Transition:
        body = "body" if reason == "hub_unavailable" else "hub_error"
        screen = Message(
            self.screen_id("hub_unavailable"),
            self.text("hub_unavailable", "title"),
            (self.text("hub_unavailable", body),),
            (common_action("retry", primary=True), common_action("report"),
             common_action("back")),
            Tone.ERROR,
            self.ctx.idle_timeout_s,
        )
        self._shown = screen
        return Transition(screen, (failed,))

    def _refused(self, reason: str, failed: RecordEvent) -> Transition:
        # A refusal is final: trying again gives the same answer, so there is no retry button.
        screen = Message(
            self.screen_id("refused"),
            self.text("refused", "title"),
            (self.text("refused", reason), self.text("refused", "body")),
            (common_action("back"), common_action("report"),
             common_action("finish", primary=True)),
            Tone.ERROR,
            self.ctx.idle_timeout_s,
        )
        self._shown = screen
        return Transition(screen, (failed,))

    def _print(self) -> Transition:
        if self._receipt is None:
            raise FlowError("printing a proof that was never made")
        screen = Progress(
            self.screen_id("printing"),
            self.text("printing", "title"),
            (self.text("printing", "body"),),
        )
        return Transition(screen, (PrintReceipt(self._receipt),))

    def _back_or_finish(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._reshow()
        return tapped(ev, {"back": Finish, "finish": lambda: EndSession(EndReason.DONE),
                           "report": self._report})

    def _report(self) -> Call:
        """办不成事: from a failure screen, about this item; the screen shows again after."""
        return Call("report", ReportContext(self._item().id, self.screen_id(self.current_step)))

    def _reshow(self) -> Transition:
        # Back from a report: the failure screen as it was, without its event again.
        assert self._shown is not None
        return Transition(self._shown)

    def _item(self) -> CatalogueItem:
        if not isinstance(self.arg, CatalogueItem):
            raise TypeError("the proof flow needs a catalogue item")
        return self.arg

"""Slip: print one receipt or slip for the flow that calls it, telling the truth about the printer.

Every errand after the proof ends with paper: an application's receipt, a progress slip, an
appointment slip, a report's slip. This sub-flow checks the printer, prints, offers a retry when
the job fails, and lets the resident go on without paper (the calling flow then shows the number
on screen instead). It returns ``True`` once the slip is printed, ``False`` when it was not.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.base import DeviceState, Receipt
from flows.device_text import printer_line
from flows.event_names import EventType
from flows.operations_events import code, event
from flows.platform import Finish, Flow, FlowResult, common_action, step, tapped
from flows.steps import (
    Action,
    CheckPrinter,
    EffectDone,
    Event,
    Failed,
    Message,
    PrintReceipt,
    Progress,
    Text,
    Tone,
    Transition,
)


@dataclass(frozen=True, repr=False)
class SlipRequest:
    """What to print; ``kind`` (receipt_printed's field: application, progress, appointment,
    report) and ``errand_id`` go into the event, the receipt itself is personal."""

    receipt: Receipt
    kind: str
    errand_id: str

    def __repr__(self) -> str:
        return f"SlipRequest({self.kind!r}, {self.errand_id!r})"


class SlipFlow(Flow):
    """Prints ``arg`` (a SlipRequest); returns whether it was printed."""

    NAME = "slip"
    INITIAL = "checking_printer"
    STEPS = (
        step("checking_printer", Progress, awaits=CheckPrinter,
             to=("printing", "printer_unavailable")),
        step("printer_unavailable", Message, to=("checking_printer",), ends=True),
        step("printing", Progress, awaits=PrintReceipt, to=("print_failed",), ends=True),
        step("print_failed", Message, to=("printing",), ends=True),
    )

    def start(self) -> Transition:
        return self._check()

    def wipe(self) -> None:
        self.arg = None

    def step_checking_printer(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            return self._unavailable(outcome.reason)
        state = outcome.value
        if not isinstance(state, DeviceState) or not state.usable:
            reason = state.reason if isinstance(state, DeviceState) else "no_response"
            return self._unavailable(reason or "fault")
        return self._print()

    def step_printer_unavailable(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"retry": self._check, "skip": lambda: Finish(False)})

    def step_printing(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        request = self._request()
        if isinstance(ev.outcome, Failed):
            reason = code(ev.outcome.reason)
            screen = Message(
                self.screen_id("print_failed"),
                self.text("print_failed", "title"),
                (printer_line(reason), self.text("print_failed", "body")),
                (common_action("retry", primary=True), self.action("print_failed", "skip")),
                Tone.ERROR,
                self.ctx.idle_timeout_s,
            )
            failed = event(EventType.ERRAND_FAILED, "warning", errand_id=request.errand_id,
                           stage="print", reason=reason)
            return Transition(screen, (failed,))
        printed = event(EventType.RECEIPT_PRINTED, kind=request.kind,
                        errand_id=request.errand_id)
        return Finish(True, (printed,))

    def step_print_failed(self, ev: Event) -> FlowResult | None:
        # Retry prints the same slip again: nothing is asked of the hub twice.
        return tapped(ev, {"retry": self._print, "skip": lambda: Finish(False)})

    # --- screens ---------------------------------------------------------------------------------

    def _check(self) -> Transition:
        screen = Progress(self.screen_id("checking_printer"),
                          self.text("checking_printer", "title"))
        return Transition(screen, (CheckPrinter(),))

    def _print(self) -> Transition:
        screen = Progress(self.screen_id("printing"), self.text("printing", "title"),
                          (self.text("printing", "body"),))
        return Transition(screen, (PrintReceipt(self._request().receipt),))

    def _unavailable(self, reason: str) -> Transition:
        reason = code(reason)
        request = self._request()
        screen = Message(
            self.screen_id("printer_unavailable"),
            self.text("printer_unavailable", "title"),
            (printer_line(reason), self.text("printer_unavailable", "body")),
            (common_action("retry"), self.action("printer_unavailable", "skip", primary=True)),
            Tone.WARNING,
            self.ctx.idle_timeout_s,
        )
        failed = event(EventType.ERRAND_FAILED, "warning", errand_id=request.errand_id,
                       stage="printer", reason=reason)
        return Transition(screen, (failed,))

    def _request(self) -> SlipRequest:
        if not isinstance(self.arg, SlipRequest):
            raise TypeError("the slip flow needs a SlipRequest")
        return self.arg


def slip_lines_and_actions(flow: Flow, step_id: str,
                           printed: bool | None) -> tuple[tuple[Text, ...], tuple[Action, ...]]:
    """For a done screen that offers its slip: the line saying how printing went (none before
    it was tried) and the buttons: print (``<flow>.<step>.print``) and finish, or finish alone
    once the slip was printed or given up."""
    if printed is None:
        return (), (flow.action(step_id, "print", primary=True), common_action("finish"))
    line = flow.text(step_id, "printed" if printed else "not_printed")
    return (line,), (common_action("finish", primary=True),)

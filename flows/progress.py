"""Progress (办件进度): a case's status by scanning its receipt's QR (no card), or the resident's
cases by card; either way a progress slip to take away.

Scanned at the attract screen, a receipt's QR starts a session without identity: the screen shows
only the case's status and dates, nothing personal (anyone holding a receipt may see as much). A
receipt printed while the hub was down carries the terminal's local reference; the effect runner
answers it from this terminal's queue (status ``queued``) until the case number is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.catalogue import CatalogueItem
from flows.event_names import EventType
from flows.hub import FINAL_REFUSALS, CaseProgress
from flows.hub_queries import CaseQuery, CasesQuery
from flows.operations_events import code, event
from flows.platform import (
    Call,
    EndReason,
    EndSession,
    Finish,
    Flow,
    FlowContext,
    FlowResult,
    common_action,
    step,
    tapped,
)
from flows.report import offering_report, report_call
from flows.slip import SlipRequest
from flows.slips import local_date, progress_slip
from flows.steps import (
    Action,
    AskHub,
    Confirm,
    EffectDone,
    Event,
    Failed,
    Menu,
    Message,
    Progress,
    Returned,
    SummaryRow,
    Tap,
    Text,
    Tone,
    Transition,
    t,
)

MAX_CASES = 12  # the newest; older cases are at a window (or online)


@dataclass(frozen=True)
class CaseLookup:
    """The progress flow's argument when a receipt was scanned: the reference it carries."""

    reference: str


class ProgressFlow(Flow):
    """``arg``: a CaseLookup (a scanned receipt), or None for the identified resident's cases."""

    NAME = "progress"
    INITIAL = "looking_up"
    STEPS = (
        step("looking_up", Progress, awaits=AskHub,
             to=("status", "cases", "no_cases", "not_found", "hub_unavailable"), ends=True),
        step("cases", Menu, to=("status",), ends=True),
        step("no_cases", Message, ends=True),
        step("not_found", Message, calls=("report",), ends=True),
        step("hub_unavailable", Message, to=("looking_up",), calls=("report",), ends=True),
        step("status", Confirm, to=("cases",), calls=("slip",), ends=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._cases: tuple[CaseProgress, ...] = ()
        self._shown: CaseProgress | None = None
        self._printed: bool | None = None
        self._failure: Message | None = None  # the failure screen a report comes back to

    def wipe(self) -> None:
        self._cases = ()
        self._shown = None

    def start(self) -> Transition:
        return self._look_up()

    # --- steps -----------------------------------------------------------------------------------

    def step_looking_up(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed):
            reason = code(outcome.reason)
            failed = event(EventType.ERRAND_FAILED, "warning", errand_id="progress",
                           stage="hub", reason=reason)
            if reason in ("case_unknown", "invalid_reference") or reason in FINAL_REFUSALS:
                return Transition(self._failed("not_found", Tone.WARNING, ("back",)), (failed,))
            return Transition(self._failed("hub_unavailable", Tone.ERROR, ("retry", "back")),
                              (failed,))
        value = outcome.value
        if isinstance(value, CaseProgress):
            return self._status(value)
        if isinstance(value, tuple) and all(isinstance(c, CaseProgress) for c in value):
            self._cases = value[:MAX_CASES]
            if not self._cases:
                return Transition(self._message("no_cases", Tone.INFO, ("back",)))
            if len(self._cases) == 1:
                return self._status(self._cases[0])
            return self._list()
        return Transition(self._failed("hub_unavailable", Tone.ERROR, ("retry", "back")))

    def step_cases(self, ev: Event) -> FlowResult | None:
        if not isinstance(ev, Tap) or not ev.target.startswith("case."):
            return tapped(ev, {"back": self._leave})
        index = ev.target.removeprefix("case.")
        if not index.isdigit() or int(index) >= len(self._cases):
            return None
        self._printed = None
        return self._status(self._cases[int(index)])

    def step_no_cases(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"back": self._leave})

    def step_not_found(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"back": self._leave, "report": lambda: report_call(self)})

    def step_hub_unavailable(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._failure_again()
        return tapped(ev, {"retry": self._look_up, "back": self._leave,
                           "report": lambda: report_call(self)})

    def _failure_again(self) -> Transition:
        assert self._failure is not None
        return Transition(self._failure)

    def step_status(self, ev: Event) -> FlowResult | None:
        shown = self._shown
        if shown is None:
            return None
        if isinstance(ev, Returned):
            self._printed = bool(ev.value)
            return self._status(shown)
        choices = {
            "print": lambda: Call("slip", self._slip(shown)),
            "back": self._list if len(self._cases) > 1 else self._leave,
            "finish": self._leave,
        }
        return tapped(ev, choices)

    # --- screens ---------------------------------------------------------------------------------

    def _look_up(self) -> Transition:
        if isinstance(self.arg, CaseLookup):
            query: CaseQuery | CasesQuery = CaseQuery(self.arg.reference)
            body = self.text("looking_up", "body_case")
        else:
            holder = self.ctx.session.holder
            if holder is None:
                raise TypeError("the progress flow needs a scanned receipt or a resident")
            query = CasesQuery(holder.id_number)
            body = self.text("looking_up", "body_cases")
        screen = Progress(self.screen_id("looking_up"), self.text("looking_up", "title"), (body,))
        return Transition(screen, (AskHub(query),))

    def _list(self) -> Transition:
        options = tuple(
            Action(f"case.{n}", self.text("cases", "case", item=self._item_title(case),
                                         status=t(f"case.status.{case.status}"),
                                         date=local_date(case.received_on)))
            for n, case in enumerate(self._cases)
        )
        screen = Menu(self.screen_id("cases"), self.text("cases", "title"), options,
                      (self.text("cases", "body", count=str(len(self._cases))),),
                      (common_action("back"),), self.ctx.idle_timeout_s)
        return Transition(screen)

    def _status(self, case: CaseProgress) -> Transition:
        self._shown = case
        rows = [
            SummaryRow(self.text("status", "case_number"), case.case_number),
            SummaryRow(self.text("status", "item"), self._item_title(case)),
            SummaryRow(self.text("status", "status"), t(f"case.status.{case.status}")),
            SummaryRow(self.text("status", "received"), local_date(case.received_on)),
        ]
        if case.promised_by is not None:
            rows.append(SummaryRow(self.text("status", "promised"),
                                   local_date(case.promised_by)))
        lines: list[Text] = [self.text("status", f"hint_{case.status}")]
        if self._printed is True:
            lines.append(self.text("status", "printed"))
        elif self._printed is False:
            lines.append(self.text("status", "not_printed"))
        back = "back" if len(self._cases) > 1 else "finish"
        actions = (self.action("status", "print", primary=self._printed is None),
                   common_action(back, primary=self._printed is not None))
        screen = Confirm(self.screen_id("status"), self.text("status", "title"), tuple(rows),
                         tuple(lines), actions, self.ctx.idle_timeout_s)
        viewed = event(EventType.PROGRESS_VIEWED, status=str(case.status),
                       by="receipt" if isinstance(self.arg, CaseLookup) else "card")
        return Transition(screen, (viewed,) if self._printed is None else ())

    def _failed(self, step_id: str, tone: Tone, actions: tuple[str, ...]) -> Message:
        self._failure = offering_report(self._message(step_id, tone, actions))
        return self._failure

    def _message(self, step_id: str, tone: Tone, actions: tuple[str, ...]) -> Message:
        buttons = tuple(common_action(a, primary=n == 0) for n, a in enumerate(actions))
        return Message(self.screen_id(step_id), self.text(step_id, "title"),
                       (self.text(step_id, "body"),), buttons, tone, self.ctx.idle_timeout_s)

    def _slip(self, case: CaseProgress) -> SlipRequest:
        receipt = progress_slip(case, self._item(case), links_base=self.ctx.links_base,
                                terminal_id=self.ctx.terminal_id, printed_at=self.ctx.clock.now(),
                                zone=self.ctx.zone)
        return SlipRequest(receipt, "progress", "progress")

    def _item(self, case: CaseProgress) -> CatalogueItem | None:
        return self.ctx.catalogue.item(case.item_id)

    def _item_title(self, case: CaseProgress) -> Text | str:
        item = self._item(case)
        return t(item.title_key) if item is not None else case.item_id

    def _leave(self) -> FlowResult:
        # From a scanned receipt this is the whole session; by card, back to the home menu.
        if isinstance(self.arg, CaseLookup):
            return EndSession(EndReason.DONE)
        return Finish()


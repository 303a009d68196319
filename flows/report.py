"""Report (办不成事反映): what could not be done, the item concerned, a phone number for the
call back if the resident wants one; the hub's reference and promised call-back time on a slip.

Reachable from the home menu and from the failure screens of an errand (which hand over their
item); a resident who has not identified may report too, from the guides. Reports go through the
submission queue like applications: when the hub is down the slip says the report is stored on
this terminal and will be sent. Ends with the 好差评 rating of the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from flows.catalogue import CatalogueItem
from flows.event_names import EventType
from flows.forms import FormEntry
from flows.hub import Report, ReportFiled
from flows.operations_events import code, event
from flows.phone import mask_phone, phone_rule
from flows.platform import Call, Finish, Flow, FlowContext, FlowResult, common_action, step, tapped
from flows.rating import RatingRequest
from flows.slip import SlipRequest, slip_lines_and_actions
from flows.slips import report_slip
from flows.steps import (
    Action,
    Confirm,
    Done,
    EffectDone,
    Event,
    Failed,
    Form,
    Lodge,
    Lodged,
    Menu,
    Message,
    Progress,
    Returned,
    SummaryRow,
    Tap,
    Text,
    TextEntered,
    Tone,
    Transition,
    t,
)

# The fixed list (Chinese as printed; the screen's words are translations of the same ids).
PROBLEMS: dict[str, str] = {
    "materials_unclear": "材料要求不清楚",
    "not_available_here": "事项在这里办不了",
    "refused_unclear": "被拒绝但不清楚原因",
    "machine_fault": "机器或系统故障",
    "too_hard": "操作太复杂，不会用",
    "other": "其他问题",
}
NO_ITEM = "none"


@dataclass(frozen=True)
class ReportContext:
    """Where a report was started: the item concerned (or "") and the screen it came from."""

    item_id: str = ""
    screen: str = ""


class ReportFlow(Flow):
    """``arg``: a ReportContext, or None from the home menu."""

    NAME = "report"
    INITIAL = "problem"
    STEPS = (
        step("problem", Menu, to=("item", "phone"), ends=True),
        step("item", Menu, to=("problem", "phone")),
        step("phone", Form, accepts=(Tap, TextEntered), to=("phone", "confirm", "problem")),
        step("confirm", Confirm, to=("phone", "filing")),
        step("filing", Progress, awaits=Lodge, to=("filed", "failed")),
        step("failed", Message, to=("filing",), ends=True),
        step("filed", Done, calls=("slip", "rating"), ends=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        context = arg if isinstance(arg, ReportContext) else ReportContext()
        self._item_id = context.item_id if ctx.catalogue.item(context.item_id) else ""
        self._from_screen = context.screen
        self._problem = ""
        self._form = FormEntry((phone_rule(required=False),))
        self._lodged: Lodged | None = None
        self._phone_masked = ""
        self._printed: bool | None = None

    def wipe(self) -> None:
        self._form.wipe()
        self._lodged = None

    def start(self) -> Transition:
        return self._problems()

    # --- steps -----------------------------------------------------------------------------------

    def step_problem(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("problem."):
            problem = ev.target.removeprefix("problem.")
            if problem not in PROBLEMS:
                return None
            self._problem = problem
            return self._phone() if self._item_id else self._items()
        return tapped(ev, {"back": Finish})

    def step_item(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Tap) and ev.target.startswith("item."):
            item_id = ev.target.removeprefix("item.")
            if item_id != NO_ITEM and self.ctx.catalogue.item(item_id) is None:
                return None
            self._item_id = "" if item_id == NO_ITEM else item_id
            return self._phone()
        return tapped(ev, {"back": self._problems})

    def step_phone(self, ev: Event) -> FlowResult | None:
        if self._form.apply(ev):
            return self._phone()
        if not isinstance(ev, Tap):
            return None
        if ev.target == "next":
            return self._confirm() if self._form.check() else self._phone()
        if ev.target == "skip":
            self._form.wipe()
            return self._confirm()
        return tapped(ev, {"back": self._problems})

    def step_confirm(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"submit": self._file, "back": self._phone})

    def step_filing(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        outcome = ev.outcome
        if isinstance(outcome, Failed) or not isinstance(outcome.value, Lodged):
            reason = code(outcome.reason) if isinstance(outcome, Failed) else "bad_answer"
            screen = Message(self.screen_id("failed"), self.text("failed", "title"),
                             (self.text("failed", reason if reason == "disk_full" else "body"),),
                             (common_action("retry", primary=True), common_action("finish")),
                             Tone.ERROR, self.ctx.idle_timeout_s)
            failed = event(EventType.ERRAND_FAILED, "warning", errand_id="report",
                           stage="hub", reason=reason)
            return Transition(screen, (failed,))
        self._lodged = outcome.value
        # The number went with the report; only its masked form stays, for the slip.
        phone = self._form.values.get("phone", "")
        self._phone_masked = mask_phone(phone) if phone else ""
        self._form.wipe()
        filed = event(EventType.REPORT_FILED, problem=self._problem,
                      queued=outcome.value.answer is None)
        return Transition(self._filed_screen(), (filed,))

    def step_failed(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"retry": self._file, "finish": Finish})

    def step_filed(self, ev: Event) -> FlowResult | None:
        lodged = self._lodged
        if lodged is None:
            return None
        if isinstance(ev, Returned):
            if ev.flow == "slip":
                self._printed = bool(ev.value)
                return Transition(self._filed_screen())
            return Finish()
        answer = lodged.answer
        reference = answer.hub_reference if isinstance(answer, ReportFiled) else lodged.reference
        return tapped(ev, {
            "print": lambda: Call("slip", self._slip()),
            "finish": lambda: Call("rating", RatingRequest("report", reference)),
        })

    # --- screens ---------------------------------------------------------------------------------

    def _problems(self) -> Transition:
        options = tuple(Action(f"problem.{p}", self.text("problem", p)) for p in PROBLEMS)
        screen = Menu(self.screen_id("problem"), self.text("problem", "title"), options,
                      (self.text("problem", "body"),), (common_action("back"),),
                      self.ctx.idle_timeout_s)
        return Transition(screen)

    def _items(self) -> Transition:
        options = (
            *(Action(f"item.{item.id}", t(item.title_key)) for item in self.ctx.catalogue.items),
            Action(f"item.{NO_ITEM}", self.text("item", NO_ITEM)),
        )
        screen = Menu(self.screen_id("item"), self.text("item", "title"), options, (),
                      (common_action("back"),), self.ctx.idle_timeout_s)
        return Transition(screen)

    def _phone(self) -> Transition:
        screen = Form(self.screen_id("phone"), self.text("phone", "title"),
                      self._form.fields(self.screen_id("phone")), self._form.focus,
                      (self.text("phone", "body"),),
                      (self.action("phone", "next", primary=True), self.action("phone", "skip"),
                       common_action("back")), self.ctx.idle_timeout_s)
        return Transition(screen)

    def _confirm(self) -> Transition:
        phone = self._form.values.get("phone", "")
        rows = [SummaryRow(self.text("confirm", "problem"),
                           self.text("problem", self._problem)),
                SummaryRow(self.text("confirm", "item"), self._item_text()),
                SummaryRow(self.text("confirm", "phone"),
                           mask_phone(phone) if phone else self.text("confirm", "no_phone"))]
        screen = Confirm(self.screen_id("confirm"), self.text("confirm", "title"), tuple(rows),
                         (self.text("confirm", "body"),),
                         (self.action("confirm", "submit", primary=True), common_action("back")),
                         self.ctx.idle_timeout_s)
        return Transition(screen)

    def _file(self) -> Transition:
        report = Report(
            reference="",  # the queue gives it the terminal's next local reference
            problem=self._problem,
            item_id=self._item_id,
            phone=self._form.values.get("phone", ""),
            terminal_id=self.ctx.terminal_id,
            screen=self._from_screen,
            filed_at=self.ctx.clock.now(),
        )
        screen = Progress(self.screen_id("filing"), self.text("filing", "title"))
        return Transition(screen, (Lodge(report),))

    def _filed_screen(self) -> Done:
        lodged = self._lodged
        assert lodged is not None
        answer = lodged.answer
        lines: list[Text] = []
        if isinstance(answer, ReportFiled):
            lines += [self.text("filed", "reference", reference=answer.hub_reference),
                      self.text("filed", "callback", by=_local(answer.callback_by, self.ctx.zone))]
        else:
            lines += [self.text("filed", "reference", reference=lodged.reference),
                      self.text("filed", "queued")]
        slip_line, actions = slip_lines_and_actions(self, "filed", self._printed)
        lines += slip_line
        return Done(self.screen_id("filed"), self.text("filed", "title"), tuple(lines),
                    actions, self.ctx.idle_timeout_s)

    def _slip(self) -> SlipRequest:
        lodged = self._lodged
        assert lodged is not None
        answer = lodged.answer
        filed = answer if isinstance(answer, ReportFiled) else None
        item = self._item()
        receipt = report_slip(
            reference=lodged.reference,
            hub_reference=filed.hub_reference if filed is not None else None,
            problem=PROBLEMS[self._problem],
            item=item.title.zh if item is not None else "",
            callback_by=filed.callback_by if filed is not None else None,
            phone_masked=self._phone_masked,
            terminal_id=self.ctx.terminal_id,
            printed_at=self.ctx.clock.now(),
            zone=self.ctx.zone,
        )
        return SlipRequest(receipt, "report", "report")

    def _item(self) -> CatalogueItem | None:
        return self.ctx.catalogue.item(self._item_id) if self._item_id else None

    def _item_text(self) -> Text:
        item = self._item()
        return t(item.title_key) if item is not None else self.text("item", NO_ITEM)


def _local(when: dt.datetime, zone: dt.tzinfo) -> str:
    return when.astimezone(zone).strftime("%m-%d %H:%M")


def offering_report(screen: Message) -> Message:
    """A failure screen with the way to report it (办不成事) added to its buttons."""
    return dataclasses.replace(screen, actions=(*screen.actions, common_action("report")))


def report_call(flow: Flow, item_id: str = "") -> Call:
    """Report from ``flow``'s failure screen now showing; the screen comes back afterwards."""
    return Call("report", ReportContext(item_id, flow.screen_id(flow.current_step)))

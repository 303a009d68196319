"""Maintenance: the menu a listed staff badge opens instead of a resident's session.

Staff test every device, print a test page, record a new paper roll, read the printer's status,
today's counters, the versions and the terminal's addresses, and restart the application. There is
no way out to the operating system from here, and nothing personal is on any of its screens: they
show the terminal's devices and figures only. Entering is reported (``maintenance_entered``) and
so is leaving (``maintenance_left``, by the engine, however the menu ended); the heartbeat's state
is ``maintenance`` meanwhile. A contactless badge is tapped and taken away, so the menu stays
until staff leave it or it times out.
"""

from __future__ import annotations

import datetime as dt

from devices.base import Align, DeviceState, FieldLine, QrCode, Receipt, Rule, TextLine
from flows.event_names import EventType
from flows.maintenance_report import (
    CheckResult,
    MaintenanceTask,
    SelfTestReport,
    TerminalStatus,
)
from flows.platform import (
    EndReason,
    EndSession,
    Finish,
    Flow,
    FlowContext,
    FlowResult,
    common_action,
    step,
)
from flows.steps import (
    Confirm,
    EffectDone,
    Event,
    Failed,
    Maintain,
    Menu,
    Message,
    PrintReceipt,
    Progress,
    RecordEvent,
    SummaryRow,
    Tap,
    Text,
    Tone,
    Transition,
    t,
)

MENU_TIMEOUT_S = 180  # staff read and walk to the cabinet between taps
PAGE_TIMEOUT_S = 180

# The menu's entries, in the order a technician works through them.
_MENU = ("self_test", "test_print", "paper_refilled", "printer", "counters", "about", "restart")
# The three pages that show parts of the terminal's status.
_STATUS_PAGES = ("printer", "counters", "about")


class MaintenanceFlow(Flow):
    """The staff menu; see the module docstring."""

    NAME = "maintenance"
    INITIAL = "menu"
    STEPS = (
        step("menu", Menu, to=("testing", "printing", "refilling", "gathering", "confirm_restart"),
             ends=True, card_pull_expected=True),
        step("testing", Progress, awaits=Maintain, to=("self_test", "failed"), ends=True,
             card_pull_expected=True),
        step("self_test", Confirm, to=("menu", "testing"), ends=True, card_pull_expected=True),
        step("printing", Progress, awaits=PrintReceipt, to=("printed", "print_failed"), ends=True,
             card_pull_expected=True),
        step("printed", Message, to=("menu",), ends=True, card_pull_expected=True),
        step("print_failed", Message, to=("printing", "menu"), ends=True, card_pull_expected=True),
        step("refilling", Progress, awaits=Maintain, to=("refilled", "failed"), ends=True,
             card_pull_expected=True),
        step("refilled", Message, to=("menu",), ends=True, card_pull_expected=True),
        step("gathering", Progress, awaits=Maintain, to=(*_STATUS_PAGES, "failed"), ends=True,
             card_pull_expected=True),
        *(step(page, Confirm, to=("menu",), ends=True, card_pull_expected=True)
          for page in _STATUS_PAGES),
        step("confirm_restart", Confirm, to=("menu", "restarting"), ends=True,
             card_pull_expected=True),
        step("restarting", Progress, awaits=Maintain, to=("failed",), ends=True,
             card_pull_expected=True),
        step("failed", Message, to=("menu",), ends=True, card_pull_expected=True),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._page = "about"  # which status page ``gathering`` leads to

    def start(self) -> Transition:
        return Transition(self._menu(), (RecordEvent(EventType.MAINTENANCE_ENTERED),))

    # --- steps ---------------------------------------------------------------------------------

    def step_menu(self, event: Event) -> FlowResult | None:
        if not isinstance(event, Tap):
            return None  # the badge taken away changes nothing
        match event.target:
            case "leave":
                return Finish()
            case "self_test":
                return self._run("testing", MaintenanceTask.SELF_TEST)
            case "test_print":
                return self._print()
            case "paper_refilled":
                return self._run("refilling", MaintenanceTask.PAPER_REFILLED)
            case "printer" | "counters" | "about":
                self._page = event.target
                screen = Progress(self.screen_id("gathering"), self.text("gathering", self._page))
                return Transition(screen, (Maintain(MaintenanceTask.STATUS),))
            case "restart":
                return Transition(self._confirm_restart())
        return None

    def step_testing(self, event: Event) -> FlowResult | None:
        outcome = self._outcome(event)
        if outcome is None:
            return None
        if not isinstance(outcome, SelfTestReport):
            return self._failed()
        return Transition(self._self_test_page(outcome))

    def step_self_test(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition,
                                 "again": lambda: self._run("testing",
                                                            MaintenanceTask.SELF_TEST)})

    def step_printing(self, event: Event) -> FlowResult | None:
        if not isinstance(event, EffectDone):
            return None
        if isinstance(event.outcome, Failed):
            return Transition(self.print_failed(event.outcome.reason, "back"))
        return Transition(self._message("printed", Tone.SUCCESS))

    def step_printed(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    def step_print_failed(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"retry": self._print, "back": self._menu_transition})

    def step_refilling(self, event: Event) -> FlowResult | None:
        if not isinstance(event, EffectDone):
            return None
        if isinstance(event.outcome, Failed):
            return self._failed()
        return Transition(self._message("refilled", Tone.SUCCESS),
                          (RecordEvent(EventType.PAPER_REFILLED),))

    def step_refilled(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    def step_gathering(self, event: Event) -> FlowResult | None:
        outcome = self._outcome(event)
        if outcome is None:
            return None
        if not isinstance(outcome, TerminalStatus):
            return self._failed()
        return Transition(self._status_page(self._page, outcome))

    def step_printer(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    def step_counters(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    def step_about(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    def step_confirm_restart(self, event: Event) -> FlowResult | None:
        return self._tap(event, {
            "back": self._menu_transition,
            "restart": lambda: self._run("restarting", MaintenanceTask.RESTART),
        })

    def step_restarting(self, event: Event) -> FlowResult | None:
        if not isinstance(event, EffectDone):
            return None
        if isinstance(event.outcome, Failed):
            return self._failed()
        # The application goes down a moment from now; end cleanly before it does.
        return EndSession(EndReason.DONE, "restart")

    def step_failed(self, event: Event) -> FlowResult | None:
        return self._tap(event, {"back": self._menu_transition})

    # --- screens -------------------------------------------------------------------------------

    def _menu(self) -> Menu:
        options = tuple(self.action("menu", entry) for entry in _MENU)
        return Menu(
            self.screen_id("menu"),
            self.text("menu", "title"),
            options,
            (self.text("menu", "body", terminal_id=self.ctx.terminal_id),),
            (self.action("menu", "leave", primary=True),),
            idle_timeout_s=MENU_TIMEOUT_S,
        )

    def _menu_transition(self) -> FlowResult:
        return Transition(self._menu())

    def _run(self, of_step: str, task: MaintenanceTask) -> Transition:
        screen = Progress(self.screen_id(of_step), self.text(of_step, "title"))
        return Transition(screen, (Maintain(task),))

    def _print(self) -> Transition:
        screen = Progress(self.screen_id("printing"), self.text("printing", "title"))
        now = self.ctx.clock.now()
        page = test_page(self.ctx.terminal_id, self.ctx.site, now, self.ctx.zone)
        return Transition(screen, (PrintReceipt(page),))

    def _message(self, of_step: str, tone: Tone) -> Message:
        return Message(
            self.screen_id(of_step),
            self.text(of_step, "title"),
            (self.text(of_step, "body"),),
            (common_action("back", primary=True),),
            tone,
            PAGE_TIMEOUT_S,
        )

    def _failed(self) -> Transition:
        return Transition(self._message("failed", Tone.ERROR))

    def _confirm_restart(self) -> Confirm:
        return Confirm(
            self.screen_id("confirm_restart"),
            self.text("confirm_restart", "title"),
            (),
            (self.text("confirm_restart", "body"),),
            (self.action("confirm_restart", "restart", primary=True), common_action("back")),
            PAGE_TIMEOUT_S,
        )

    def _self_test_page(self, report: SelfTestReport) -> Confirm:
        rows = tuple(
            SummaryRow(t(f"maintenance.device.{check.device}"),
                       _verdict(check.result, check.reason, check.detail))
            for check in report.checks
        )
        summary = ("some_failed" if report.failed
                   else "all_passed" if report.passed else "some_warnings")
        return Confirm(
            self.screen_id("self_test"),
            self.text("self_test", "title"),
            rows,
            (self.text("self_test", summary),),
            (common_action("back", primary=True), self.action("self_test", "again")),
            PAGE_TIMEOUT_S,
        )

    def _status_page(self, page: str, status: TerminalStatus) -> Confirm:
        rows = {"printer": _printer_rows, "counters": _counter_rows, "about": _about_rows}[page]
        return Confirm(
            self.screen_id(page),
            self.text(page, "title"),
            rows(status),
            (),
            (common_action("back", primary=True),),
            PAGE_TIMEOUT_S,
        )

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _outcome(event: Event) -> object | None:
        """A Maintain effect's value; ``False`` stands for a failure (never None: that means the
        event was not this step's)."""
        if not isinstance(event, EffectDone):
            return None
        if isinstance(event.outcome, Failed):
            return False
        return event.outcome.value

    @staticmethod
    def _tap(event: Event, choices: dict[str, object]) -> FlowResult | None:
        if isinstance(event, Tap) and event.target in choices:
            answer = choices[event.target]
            assert callable(answer)
            result: FlowResult = answer()
            return result
        return None


def test_page(terminal_id: str, site: str, now: dt.datetime, zone: dt.tzinfo) -> Receipt:
    """The test page (menu and ``test_print`` command): fonts, alignment, a QR code and the cut,
    with the terminal's id and nothing personal."""
    return Receipt((
        TextLine("打印测试页", Align.CENTER, emphasis=True, large=True),
        Rule(),
        FieldLine("终端编号", terminal_id),
        FieldLine("服务中心", site or "—"),
        FieldLine("打印时间", now.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")),
        Rule(),
        TextLine("中文字库：一二三四五六七八九十 办件编号 好差评 长辈模式"),
        TextLine("ASCII: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"),
        TextLine("加粗 居中", Align.CENTER, emphasis=True),
        TextLine("右对齐", Align.RIGHT),
        QrCode(f"kiosk-test:{terminal_id}", "二维码打印测试"),
        TextLine("本页不含个人信息。", Align.CENTER),
    ))


def _verdict(result: CheckResult, reason: str, detail: str) -> Text:
    # Reason codes stay as they are (paper_out): staff quote them to operations.
    if reason and detail:
        both = t("maintenance.result.pair", first=reason, second=detail)
        return t(f"maintenance.result.{result.value}_detail", detail=both)
    if reason or detail:
        return t(f"maintenance.result.{result.value}_detail", detail=reason or detail)
    return t(f"maintenance.result.{result.value}")


def _state(state: DeviceState) -> Text:
    if state.reason:
        return t(f"maintenance.health.{state.health.value}_detail", reason=state.reason)
    return t(f"maintenance.health.{state.health.value}")


def _flag(value: bool | None) -> Text:
    return t("maintenance.flag.unknown" if value is None else f"maintenance.flag.{value!s}".lower())


def _printer_rows(status: TerminalStatus) -> tuple[SummaryRow, ...]:
    printer = status.printer
    roll = (
        t("maintenance.printer.roll_value", count=str(printer.receipts_since_refill),
          capacity=str(printer.roll_capacity))
        if printer.roll_capacity
        else t("maintenance.printer.roll_uncounted", count=str(printer.receipts_since_refill))
    )
    return (
        SummaryRow(t("maintenance.printer.state"), _state(printer.state)),
        SummaryRow(t("maintenance.printer.paper_near_end"), _flag(printer.paper_near_end)),
        SummaryRow(t("maintenance.printer.paper_out"), _flag(printer.paper_out)),
        SummaryRow(t("maintenance.printer.cover_open"), _flag(printer.cover_open)),
        SummaryRow(t("maintenance.printer.roll"), roll),
    )


def _counter_rows(status: TerminalStatus) -> tuple[SummaryRow, ...]:
    counters = status.counters
    ratings = counters.get("ratings", {})
    by_level = "  ".join(f"{level}:{count}" for level, count in sorted(dict(ratings).items())) \
        if isinstance(ratings, dict) else ""
    return (
        SummaryRow(t("maintenance.counters.sessions"), str(counters.get("sessions", 0))),
        SummaryRow(t("maintenance.counters.completed_errands"),
                   str(counters.get("completed_errands", 0))),
        SummaryRow(t("maintenance.counters.receipts"), str(counters.get("receipts", 0))),
        SummaryRow(t("maintenance.counters.ratings"), by_level or "—"),
    )


def _about_rows(status: TerminalStatus) -> tuple[SummaryRow, ...]:
    return (
        SummaryRow(t("maintenance.about.terminal_id"), status.terminal_id),
        SummaryRow(t("maintenance.about.site"), status.site or "—"),
        SummaryRow(t("maintenance.about.software"), status.software_version),
        SummaryRow(t("maintenance.about.content"), status.content_version or "—"),
        SummaryRow(t("maintenance.about.addresses"), "  ".join(status.addresses) or "—"),
    )


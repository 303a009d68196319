"""The staff badge's maintenance menu, step by step: every entry, the events, nothing personal."""

from __future__ import annotations

import flows_support
import pytest
from flows_support import Kiosk, packaged_catalogue, receipt_strings

from devices.base import DeviceState, StaffBadge
from flows.catalogue import Catalogue
from flows.maintenance_report import (
    SELF_TEST_DEVICES,
    CheckResult,
    DeviceCheck,
    MaintenanceTask,
    PrinterDetail,
    SelfTestReport,
    TerminalStatus,
)
from flows.steps import (
    CardInserted,
    CardPulled,
    Confirm,
    Maintain,
    PrintReceipt,
    ReadCard,
    Text,
)

READER = "Virtual PCD 00 00"
STATUS = TerminalStatus(
    "T-0001", "示范镇便民服务中心", "1.4.0", "2026.12.01", ("eth0 192.168.1.20",),
    PrinterDetail(DeviceState.degraded("paper_near_end"), True, False, False, 361, 400),
    {"sessions": 12, "completed_errands": 9, "receipts": 10,
     "ratings": {"1": 0, "2": 0, "3": 1, "4": 2, "5": 6}},
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return packaged_catalogue()


def in_maintenance(catalogue: Catalogue) -> Kiosk:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.succeed(ReadCard, StaffBadge(flows_support.STAFF_UID))
    assert k.screen_id == "maintenance.menu"
    return k


def values(screen: object) -> list[str]:
    assert isinstance(screen, Confirm)
    return [row.value.key if isinstance(row.value, Text) else row.value for row in screen.rows]


def test_entering_and_leaving_are_events_and_the_badge_may_be_taken_away(
    catalogue: Catalogue,
) -> None:
    k = in_maintenance(catalogue)
    assert len(k.events("maintenance_entered")) == 1
    k.send(CardPulled(READER))  # a contactless badge is tapped, not left on the reader
    assert k.screen_id == "maintenance.menu" and k.engine.in_maintenance
    k.tap("leave")
    assert len(k.events("maintenance_left")) == 1
    assert not k.engine.in_maintenance
    assert k.screen_id == "attract"


def test_maintenance_left_is_reported_on_a_timeout_too(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.wait(float(k.screen.idle_timeout_s or 0))
    assert len(k.events("maintenance_left")) == 1
    assert [e.fields["reason"] for e in k.events("session_ended")] == ["timeout"]


def test_the_menu_offers_every_task_and_no_way_out_to_the_system(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    targets = [a.id for a in k.screen.options] + [a.id for a in k.screen.actions]  # type: ignore[attr-defined]
    assert targets == ["self_test", "test_print", "paper_refilled", "printer", "counters",
                       "about", "restart", "leave"]


def test_the_self_test_shows_one_row_per_device_in_order(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("self_test")
    assert k.awaited(Maintain) == Maintain(MaintenanceTask.SELF_TEST)
    checks = tuple(DeviceCheck(d, CheckResult.PASSED) for d in SELF_TEST_DEVICES[:-1])
    failed = DeviceCheck("broker", CheckResult.FAILED, "no_answer", "5000 ms")
    k.succeed(Maintain, SelfTestReport((*checks, failed)))
    assert k.screen_id == "maintenance.self_test"
    screen = k.screen
    assert isinstance(screen, Confirm)
    assert [row.label.key for row in screen.rows] == [
        f"maintenance.device.{d}" for d in SELF_TEST_DEVICES]
    assert values(screen)[-1] == "maintenance.result.failed_detail"
    assert screen.lines[0].key == "maintenance.self_test.some_failed"
    k.tap("again")
    assert k.screen_id == "maintenance.testing"


def test_a_test_print_carries_nothing_personal(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("test_print")
    printed = k.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    text = "".join(receipt_strings(printed.receipt))
    assert "T-0001" in text and "测试" in text
    k.fail(PrintReceipt, "paper_out")
    assert k.screen_id == "maintenance.print_failed"
    k.tap("retry")
    k.succeed(PrintReceipt)
    assert k.screen_id == "maintenance.printed"


def test_paper_refilled_is_recorded_and_reported(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("paper_refilled")
    assert k.awaited(Maintain) == Maintain(MaintenanceTask.PAPER_REFILLED)
    k.succeed(Maintain, None)
    assert k.screen_id == "maintenance.refilled"
    assert len(k.events("paper_refilled")) == 1


@pytest.mark.parametrize("page", ["printer", "counters", "about"])
def test_each_status_page_shows_its_part(catalogue: Catalogue, page: str) -> None:
    k = in_maintenance(catalogue)
    k.tap(page)
    assert k.screen.title.key == f"maintenance.gathering.{page}"
    k.succeed(Maintain, STATUS)
    assert k.screen_id == f"maintenance.{page}"
    shown = repr(k.screen)
    if page == "about":
        assert "T-0001" in shown and "1.4.0" in shown and "192.168.1.20" in shown
    if page == "counters":
        assert "'12'" in shown and "5:6" in shown
    if page == "printer":
        assert "'361'" in shown and "'400'" in shown
    k.tap("back")
    assert k.screen_id == "maintenance.menu"


def test_restart_asks_first_then_ends_the_menu(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("restart")
    assert k.screen_id == "maintenance.confirm_restart"
    k.tap("back")
    assert k.screen_id == "maintenance.menu"
    k.tap("restart")
    k.tap("restart")
    assert k.awaited(Maintain) == Maintain(MaintenanceTask.RESTART)
    k.succeed(Maintain, None)
    assert [e.fields.get("detail") for e in k.events("session_ended")] == ["restart"]
    assert len(k.events("maintenance_left")) == 1


def test_a_failed_task_says_so_and_leads_back(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("counters")
    k.fail(Maintain, "internal_error")
    assert k.screen_id == "maintenance.failed"
    k.tap("back")
    assert k.screen_id == "maintenance.menu"


def test_a_warning_is_not_a_failure(catalogue: Catalogue) -> None:
    k = in_maintenance(catalogue)
    k.tap("self_test")
    k.succeed(Maintain, SelfTestReport((DeviceCheck("printer", CheckResult.WARNING,
                                                    "paper_near_end"),
                                        DeviceCheck("camera", CheckResult.NOT_FITTED))))
    assert k.screen.lines[0].key == "maintenance.self_test.some_warnings"

"""办不成事 reports: from the menu or a failure screen, an optional phone, a slip, the rating."""

from __future__ import annotations

import datetime as dt

from flows_support import Kiosk, packaged_catalogue, receipt_strings, to_home

from devices.base import DeviceState
from flows.hub import Report, ReportFiled
from flows.steps import (
    CheckPrinter,
    Form,
    Lodge,
    Lodged,
    PrintReceipt,
    RunErrand,
    SubmitRating,
    TextEntered,
)

CATALOGUE = packaged_catalogue()
FILED = Lodged("L-T-0001-20250314-0001",
               ReportFiled("L-T-0001-20250314-0001", "BBCS20250314001",
                           dt.datetime(2025, 3, 15, 1, 0, tzinfo=dt.UTC)))


def _at_phone() -> Kiosk:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("service.report")
    assert kiosk.screen_id == "report.problem"
    kiosk.tap("problem.materials_unclear")
    assert kiosk.screen_id == "report.item"
    kiosk.tap("item.resident_pension_enrollment")
    assert kiosk.screen_id == "report.phone"
    return kiosk


def test_a_report_with_a_phone_number_is_lodged_and_shows_the_reference() -> None:
    kiosk = _at_phone()
    for digit in "13812345678":
        kiosk.tap(f"key.{digit}")
    form = kiosk.screen
    assert isinstance(form, Form) and form.fields[0].shown == "138****5678"
    kiosk.tap("next")
    assert kiosk.screen_id == "report.confirm"
    kiosk.tap("submit")
    lodge = kiosk.awaited(Lodge)
    assert isinstance(lodge, Lodge) and isinstance(lodge.item, Report)
    report = lodge.item
    assert (report.problem, report.item_id, report.phone) == (
        "materials_unclear", "resident_pension_enrollment", "13812345678")
    assert "13812345678" not in repr(lodge)
    kiosk.succeed(Lodge, FILED)
    assert kiosk.screen_id == "report.filed"
    assert [line.key for line in kiosk.screen.lines] == [
        "report.filed.reference", "report.filed.callback"]
    assert kiosk.screen.lines[0].params["reference"] == "BBCS20250314001"
    assert [dict(e.fields) for e in kiosk.events("report_filed")] == [
        {"problem": "materials_unclear", "queued": False}]


def test_the_slip_shows_the_phone_masked_and_the_call_back_time() -> None:
    kiosk = _at_phone()
    kiosk.send(TextEntered("field.phone", "13812345678"))
    kiosk.tap("next")
    kiosk.tap("submit")
    kiosk.succeed(Lodge, FILED)
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    printed = kiosk.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    strings = receipt_strings(printed.receipt)
    assert "138****5678" in strings and "13812345678" not in "".join(strings)
    assert "BBCS20250314001" in strings and "材料要求不清楚" in strings
    assert "2025-03-15 09:00前" in strings
    kiosk.succeed(PrintReceipt)
    assert kiosk.screen.lines[-1].key == "report.filed.printed"
    kiosk.tap("finish")
    assert kiosk.screen_id == "rating.choose"
    kiosk.tap("rating.5")
    rating = next(e for out in kiosk.outputs for e in out.effects if isinstance(e, SubmitRating))
    assert (rating.errand_id, rating.case_number) == ("report", "BBCS20250314001")


def test_a_wrong_mobile_number_is_said_and_nothing_is_sent() -> None:
    kiosk = _at_phone()
    kiosk.send(TextEntered("field.phone", "12345678901"))
    kiosk.tap("next")
    form = kiosk.screen
    assert isinstance(form, Form) and kiosk.screen_id == "report.phone"
    assert form.fields[0].error is not None and form.fields[0].error.key == "form.error.mobile"


def test_no_phone_is_fine_and_a_queued_report_says_so() -> None:
    kiosk = _at_phone()
    kiosk.tap("skip")
    kiosk.tap("submit")
    lodge = kiosk.awaited(Lodge)
    assert isinstance(lodge, Lodge) and isinstance(lodge.item, Report) and lodge.item.phone == ""
    kiosk.succeed(Lodge, Lodged("L-T-0001-20250314-0002", None))
    assert [line.key for line in kiosk.screen.lines] == [
        "report.filed.reference", "report.filed.queued"]


def test_a_full_disk_is_said_plainly_with_the_hotline() -> None:
    kiosk = _at_phone()
    kiosk.tap("skip")
    kiosk.tap("submit")
    kiosk.fail(Lodge, "disk_full")
    assert kiosk.screen_id == "report.failed"
    assert kiosk.screen.lines[0].key == "report.failed.disk_full"


def test_from_a_refusal_the_item_is_known_and_the_refusal_shows_again_after() -> None:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("errand.ssc_enrollment_proof")
    kiosk.tap("confirm")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    kiosk.fail(RunErrand, "suspended")
    assert kiosk.screen_id == "proof.refused"
    kiosk.tap("report")
    kiosk.tap("problem.refused_unclear")
    assert kiosk.screen_id == "report.phone"  # the item is the errand's: no need to ask
    kiosk.tap("back")
    kiosk.tap("back")
    assert kiosk.screen_id == "proof.refused"
    assert len(kiosk.events("errand_failed")) == 1  # shown again, not failed again

"""Progress (办件进度): by a receipt's QR without a card, or the resident's cases by card."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows_support import HOLDER, Kiosk, packaged_catalogue, receipt_strings, to_home

from devices.base import DeviceState
from flows.hub import CaseProgress, CaseStatus
from flows.hub_queries import CaseQuery, CasesQuery
from flows.steps import (
    AskHub,
    CheckPrinter,
    CodeScanned,
    Confirm,
    Menu,
    PrintReceipt,
)

CATALOGUE = packaged_catalogue()
CASE = CaseProgress("SB20250314000001", "resident_pension_enrollment", CaseStatus.IN_REVIEW,
                    dt.date(2025, 3, 10), dt.datetime(2025, 3, 14, 2, 0, tzinfo=dt.UTC),
                    dt.date(2025, 4, 1))
OLDER = dataclasses.replace(CASE, case_number="SB20250301000009", item_id="employment_registration",
                            status=CaseStatus.APPROVED)


def _scanned(reference: str = CASE.case_number) -> Kiosk:
    kiosk = Kiosk(CATALOGUE)
    kiosk.send(CodeScanned("receipt", reference))
    return kiosk


def _rows(kiosk: Kiosk) -> dict[str, object]:
    screen = kiosk.screen
    assert isinstance(screen, Confirm)
    return {row.label.key.rsplit(".", 1)[-1]: row.value for row in screen.rows}


def test_a_scanned_receipt_shows_the_case_without_a_card() -> None:
    kiosk = _scanned()
    assert kiosk.screen_id == "progress.looking_up"
    ask = kiosk.awaited(AskHub)
    assert isinstance(ask, AskHub) and ask.query == CaseQuery(CASE.case_number)
    assert [dict(e.fields) for e in kiosk.events("code_scanned")] == [{"kind": "receipt"}]
    kiosk.succeed(AskHub, CASE)
    assert kiosk.screen_id == "progress.status"
    rows = _rows(kiosk)
    assert rows["case_number"] == CASE.case_number
    assert rows["status"].key == "case.status.in_review"  # type: ignore[attr-defined]
    assert rows["promised"] == "2025年4月1日"
    assert kiosk.engine.flow_stack == ("progress",)  # no identity anywhere


def test_the_progress_slip_prints_and_the_session_ends_on_finish() -> None:
    kiosk = _scanned()
    kiosk.succeed(AskHub, CASE)
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    printed = kiosk.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    strings = receipt_strings(printed.receipt)
    assert "办件进度" in strings and CASE.case_number in strings and "审查中" in strings
    assert any(s.startswith("https://") and "/v1/progress/SB20250314000001?c=" in s
               for s in strings)
    kiosk.succeed(PrintReceipt)
    assert kiosk.screen_id == "progress.status"
    assert kiosk.screen.lines[-1].key == "progress.status.printed"
    assert [dict(e.fields) for e in kiosk.events("receipt_printed")] == [
        {"kind": "progress", "errand_id": "progress"}]
    kiosk.tap("finish")
    assert not kiosk.engine.in_session
    assert [e.fields["reason"] for e in kiosk.events("session_ended")] == ["done"]


def test_without_a_printer_the_resident_goes_on_and_is_told_to_note_the_number() -> None:
    kiosk = _scanned()
    kiosk.succeed(AskHub, CASE)
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.fault("paper_out"))
    assert kiosk.screen_id == "slip.printer_unavailable"
    kiosk.tap("skip")
    assert kiosk.screen_id == "progress.status"
    assert kiosk.screen.lines[-1].key == "progress.status.not_printed"


def test_an_unknown_case_says_so_and_offers_no_retry() -> None:
    kiosk = _scanned("SB20990101000001")
    kiosk.fail(AskHub, "case_unknown")
    assert kiosk.screen_id == "progress.not_found"
    assert [a.id for a in kiosk.screen.actions] == ["back", "report"]  # type: ignore[union-attr]
    kiosk.tap("back")
    assert not kiosk.engine.in_session


def test_the_hub_down_offers_a_retry() -> None:
    kiosk = _scanned()
    kiosk.fail(AskHub, "hub_unavailable")
    assert kiosk.screen_id == "progress.hub_unavailable"
    kiosk.tap("retry")
    kiosk.succeed(AskHub, CASE)
    assert kiosk.screen_id == "progress.status"


def test_a_foreign_code_gets_a_notice_and_no_session() -> None:
    kiosk = Kiosk(CATALOGUE)
    kiosk.send(CodeScanned("unknown"))
    assert kiosk.screen_id == "notice.code_unknown"
    assert not kiosk.engine.in_session
    kiosk.send(CodeScanned("appointment", "A1B2C3"))  # a notice is not a session: it takes codes
    assert kiosk.screen_id == "notice.code_appointment"


def test_a_code_scanned_during_a_card_session_is_ignored() -> None:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.send(CodeScanned("receipt", CASE.case_number))
    assert kiosk.screen_id == "home.menu"
    assert kiosk.events("code_scanned") == []


def test_by_card_the_residents_cases_are_listed_and_each_opens() -> None:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("service.progress")
    ask = kiosk.awaited(AskHub)
    assert isinstance(ask, AskHub) and ask.query == CasesQuery(HOLDER.id_number)
    assert "11010519491231002X" not in repr(ask)
    kiosk.succeed(AskHub, (CASE, OLDER))
    assert isinstance(kiosk.screen, Menu) and kiosk.screen_id == "progress.cases"
    assert [o.id for o in kiosk.screen.options] == ["case.0", "case.1"]
    kiosk.tap("case.1")
    assert _rows(kiosk)["case_number"] == OLDER.case_number
    kiosk.tap("back")
    assert kiosk.screen_id == "progress.cases"
    kiosk.tap("back")
    assert kiosk.screen_id == "home.menu"


def test_by_card_with_no_cases() -> None:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("service.progress")
    kiosk.succeed(AskHub, ())
    assert kiosk.screen_id == "progress.no_cases"
    kiosk.tap("back")
    assert kiosk.screen_id == "home.menu"


def test_a_card_inserted_during_a_receipt_lookup_starts_a_card_session() -> None:
    from flows.steps import CardInserted  # noqa: PLC0415

    kiosk = _scanned()
    kiosk.succeed(AskHub, CASE)
    kiosk.send(CardInserted("Virtual PCD 00 00"))
    assert kiosk.screen_id == "identify.reading_card"
    assert [e.fields["reason"] for e in kiosk.events("session_ended")] == ["done"]


def test_a_failure_offers_a_report_and_comes_back_after_it() -> None:
    kiosk = _scanned()
    kiosk.fail(AskHub, "hub_unavailable")
    kiosk.tap("report")
    assert kiosk.screen_id == "report.problem"
    kiosk.tap("back")
    assert kiosk.screen_id == "progress.hub_unavailable"
    assert len(kiosk.events("errand_failed")) == 1

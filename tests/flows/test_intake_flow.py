"""Intake (承诺件): each material scanned, deferred (容缺) or not applicable; delivery; phone;
review; lodged now or queued; the receipt tells the truth; the pages leave with the session."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows_support import HOLDER, Kiosk, packaged_catalogue, receipt_strings, to_home

from devices.base import DeviceState
from flows.hub import (
    CaseAccepted,
    CaseSubmission,
    Delivery,
    MaterialOutcome,
    PostalAddress,
    ScannedPage,
)
from flows.hub_queries import AddressQuery
from flows.steps import (
    AskHub,
    Captured,
    CapturePage,
    CheckPrinter,
    Confirm,
    Lodge,
    Lodged,
    PrintReceipt,
    Scan,
    SubmitRating,
    TextEntered,
    Tick,
)

CATALOGUE = packaged_catalogue()
ITEM = "temporary_assistance"  # six materials, four of them deferrable; 15 working days
JPEG = b"\xff\xd8\xff\xe0" + b"page" * 64 + b"\xff\xd9"
THUMB = b"\xff\xd8\xff\xe0thumb\xff\xd9"
ADDRESS = "浙江省温州市瑞安市塘下镇鲍田村12号"


# Friday 18 September 2026, 09:30 in Beijing: 中秋 (25-27 Sep) and 国庆 (1-7 Oct) ahead, with
# the make-up working days Sunday 20 September and Saturday 10 October.
FRIDAY = dt.datetime(2026, 9, 18, 1, 30, tzinfo=dt.UTC)


def _start() -> Kiosk:
    kiosk = to_home(Kiosk(CATALOGUE, now=FRIDAY))
    kiosk.tap(f"errand.{ITEM}")
    assert kiosk.screen_id == "intake.intro"
    kiosk.tap("start")
    return kiosk


def _capture(kiosk: Kiosk) -> None:
    kiosk.tap("capture")
    effect = kiosk.awaited(CapturePage)
    assert isinstance(effect, CapturePage)
    kiosk.succeed(CapturePage, Captured(ScannedPage(effect.material_id, effect.page, JPEG), THUMB))


def _scan(kiosk: Kiosk, pages: int = 1) -> None:
    kiosk.tap("scan")
    for _ in range(pages):
        _capture(kiosk)
    kiosk.tap("done")


def _to_phone(kiosk: Kiosk) -> None:
    _scan(kiosk, 2)  # 居民身份证: both sides
    kiosk.tap("defer")  # 户口簿
    assert kiosk.screen_id == "intake.defer"
    kiosk.tap("agree")
    _scan(kiosk)  # 申请书
    _scan(kiosk)  # 困难情况证明
    kiosk.tap("defer")
    kiosk.tap("agree")  # 授权书
    _scan(kiosk)  # 银行账户
    assert kiosk.screen_id == "intake.delivery"
    kiosk.tap("pickup")
    kiosk.tap("centre.county")
    assert kiosk.screen_id == "intake.phone"


def _submission(kiosk: Kiosk) -> CaseSubmission:
    lodge = kiosk.awaited(Lodge)
    assert isinstance(lodge, Lodge) and isinstance(lodge.item, CaseSubmission)
    return lodge.item


def _lodged(kiosk: Kiosk, answer: CaseAccepted | None) -> tuple[CaseSubmission, Lodge]:
    _to_phone(kiosk)
    kiosk.send(TextEntered("field.phone", "13812345678"))
    kiosk.tap("next")
    assert kiosk.screen_id == "intake.review"
    kiosk.tap("submit")
    submission = _submission(kiosk)
    lodge = kiosk.awaited(Lodge)
    assert isinstance(lodge, Lodge)
    kiosk.succeed(Lodge, Lodged("L-T-0001-20250314-0001", answer))
    assert kiosk.screen_id == "intake.lodged"
    return submission, lodge


def test_the_submission_carries_every_material_and_page_and_nothing_more() -> None:
    kiosk = _start()
    submission, lodge = _lodged(kiosk, None)
    assert submission.item_id == ITEM and submission.id_number == HOLDER.id_number
    assert submission.phone == "13812345678" and submission.delivery is Delivery.PICKUP
    assert submission.pickup_site == "county"
    assert [(m.material_id, m.outcome, m.pages) for m in submission.materials] == [
        ("id_card", MaterialOutcome.SCANNED, 2),
        ("household_register", MaterialOutcome.DEFERRED, 0),
        ("application", MaterialOutcome.SCANNED, 1),
        ("hardship_evidence", MaterialOutcome.SCANNED, 1),
        ("verification_consent", MaterialOutcome.DEFERRED, 0),
        ("bank_account", MaterialOutcome.SCANNED, 1),
    ]
    # 容缺: five working days after Friday 18 September 2026: Sunday 20th (a make-up day), 21-24
    assert submission.materials[1].deferred_until == dt.date(2026, 9, 24)
    assert [(p.material_id, p.page) for p in submission.pages] == [
        ("id_card", 1), ("id_card", 2), ("application", 1), ("hardship_evidence", 1),
        ("bank_account", 1)]
    for text in (repr(submission), repr(lodge)):
        assert HOLDER.id_number not in text and "13812345678" not in text


def test_a_queued_application_says_so_on_screen_and_on_its_receipt() -> None:
    kiosk = _start()
    _lodged(kiosk, None)
    keys = [line.key for line in kiosk.screen.lines]
    assert keys[:3] == ["intake.lodged.reference", "intake.lodged.queued",
                        "intake.lodged.promised"]
    # 15 working days: 20-24 Sep, 28-30 Sep, 8-10 Oct (the 10th a make-up Saturday), 12-15 Oct
    assert kiosk.screen.lines[2].params["date"] == "2026年10月15日"
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    printed = kiosk.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    strings = receipt_strings(printed.receipt)
    text = "\n".join(strings)
    assert "L-T-0001-20250314-0001" in strings and "办件编号" not in strings
    assert "网络暂时中断" in text and "138****5678" in strings
    assert "□ 户口簿：2026年9月24日前" in strings
    assert any("/v1/progress/L-T-0001-20250314-0001?c=" in s for s in strings)
    assert HOLDER.id_number not in text and HOLDER.name not in text
    assert "13812345678" not in text


def test_an_accepted_application_prints_the_case_number_and_cross_region() -> None:
    kiosk = _start()
    accepted = CaseAccepted("L-T-0001-20250314-0001", "SB20250314000007", "某市民政局",
                            dt.datetime(2025, 3, 14, 1, 31, tzinfo=dt.UTC), cross_region=True)
    _lodged(kiosk, accepted)
    assert kiosk.screen.lines[0].params["case_number"] == "SB20250314000007"
    assert [dict(e.fields) for e in kiosk.events("application_lodged")] == [
        {"errand_id": ITEM, "queued": False, "deferred": 2, "delivery": "pickup"}]
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    printed = kiosk.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    strings = receipt_strings(printed.receipt)
    assert "SB20250314000007" in strings and "某市民政局" in strings
    assert any(s.startswith("本件为异地通办") for s in strings)
    kiosk.succeed(PrintReceipt)
    kiosk.tap("finish")
    kiosk.tap("rating.5")
    rating = next(e for out in kiosk.outputs for e in out.effects if isinstance(e, SubmitRating))
    assert (rating.errand_id, rating.case_number) == (ITEM, "SB20250314000007")


def test_retake_replaces_the_last_page_and_a_blank_platen_is_said() -> None:
    kiosk = _start()
    kiosk.tap("scan")
    _capture(kiosk)
    scan = kiosk.screen
    assert isinstance(scan, Scan) and scan.pages == 1 and scan.thumbnail == THUMB
    kiosk.tap("retake")
    kiosk.fail(CapturePage, "blank_page")
    scan = kiosk.screen
    assert isinstance(scan, Scan) and scan.pages == 0 and scan.thumbnail is None
    assert scan.lines[0].key == "intake.scan.blank_page"
    assert "done" not in [a.id for a in scan.actions]  # nothing to hand in yet


def test_a_camera_fault_mid_scan_says_so_and_keeps_the_pages_taken() -> None:
    kiosk = _start()
    kiosk.tap("scan")
    _capture(kiosk)
    kiosk.tap("capture")
    kiosk.fail(CapturePage, "offline")
    scan = kiosk.screen
    assert isinstance(scan, Scan) and not scan.preview and scan.pages == 1
    assert scan.lines[0].key == "intake.scan.camera_fault"
    assert kiosk.events("errand_failed")[-1].fields == {
        "errand_id": ITEM, "stage": "camera", "reason": "offline"}


def test_mail_goes_to_the_address_on_record_shown_masked() -> None:
    kiosk = _start()
    _scan(kiosk, 1)
    for _ in range(5):
        if kiosk.screen_id == "intake.delivery":
            break
        _scan(kiosk)
    kiosk.tap("mail")
    ask = kiosk.awaited(AskHub)
    assert isinstance(ask, AskHub) and ask.query == AddressQuery(HOLDER.id_number)
    kiosk.succeed(AskHub, PostalAddress(ADDRESS))
    confirm = kiosk.screen
    assert isinstance(confirm, Confirm) and confirm.rows[0].value == "浙江省温州市瑞安市塘下镇****"
    kiosk.tap("use")
    assert kiosk.screen_id == "intake.phone"


def test_no_address_on_record_offers_pick_up() -> None:
    kiosk = _start()
    for _ in range(6):
        _scan(kiosk)
    kiosk.tap("mail")
    kiosk.succeed(AskHub, None)
    assert kiosk.screen_id == "intake.no_address"
    kiosk.tap("pickup")
    assert kiosk.screen_id == "intake.pickup"


def test_a_refusal_is_final_and_a_full_disk_is_said() -> None:
    kiosk = _start()
    _to_phone(kiosk)
    kiosk.send(TextEntered("field.phone", "13812345678"))
    kiosk.tap("next")
    kiosk.tap("submit")
    kiosk.fail(Lodge, "disk_full")
    assert kiosk.screen_id == "intake.failed"
    assert kiosk.screen.lines[0].key == "intake.failed.disk_full"
    kiosk.tap("retry")
    kiosk.fail(Lodge, "not_eligible")
    assert kiosk.screen_id == "intake.refused"


def test_every_ending_drops_the_scans() -> None:
    for ending in ("timeout", "card_pulled", "lodged"):
        kiosk = _start()
        kiosk.tap("scan")
        _capture(kiosk)
        flow = kiosk.engine._stack[-1]
        if ending == "timeout":
            kiosk.clock.advance(10_000)
            kiosk.send(Tick())
        elif ending == "card_pulled":
            from flows.steps import CardPulled  # noqa: PLC0415

            kiosk.send(CardPulled("Virtual PCD 00 00"))
        else:
            kiosk.tap("done")
            for _ in range(5):
                _scan(kiosk)
            kiosk.tap("pickup")
            kiosk.tap("centre.county")
            kiosk.send(TextEntered("field.phone", "13812345678"))
            kiosk.tap("next")
            kiosk.tap("submit")
            kiosk.succeed(Lodge, Lodged("L-1", None))
        assert not flow._pages, ending
        assert flow._thumbnail is None, ending
        held = [obj for obj in vars(flow).values() if obj is JPEG or obj is THUMB]
        assert held == [], ending


def test_the_review_shows_the_phone_masked() -> None:
    kiosk = _start()
    _to_phone(kiosk)
    kiosk.send(TextEntered("field.phone", "13812345678"))
    kiosk.tap("next")
    review = kiosk.screen
    assert isinstance(review, Confirm)
    values = [row.value for row in review.rows]
    assert "138****5678" in values and "13812345678" not in repr(values)
    assert dataclasses.is_dataclass(review)

"""The errands' slips as the printer prints them: each receipt builder's blocks through the real
ESC/POS encoder to the virtual printer, read back as text, and kept as PNG to look at
(artifacts/receipts/<name>.png)."""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.base import Receipt
from devices.printer.driver import encode_receipt
from devices.printer.protocol import paper_for
from flows.catalogue import Catalogue, parse_catalogue
from flows.clock import CHINA_ZONE
from flows.hub import Appointment, CaseProgress, CaseStatus, Delivery
from flows.slips import application_receipt, appointment_slip, progress_slip, report_slip
from flows.wording import segment
from simulator.vprinter import PrintedReceipt, VirtualPrinter

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "receipts"
NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing, a Monday
LINKS = "https://zwfw.example.gov.cn"
TERMINAL = "T-SIM-0001"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    import tomllib  # noqa: PLC0415

    with (REPO / "terminal/content/catalogue.toml").open("rb") as f:
        return parse_catalogue(tomllib.load(f))


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    vprinter = VirtualPrinter(out_dir=tmp_path)
    vprinter.start()
    try:
        yield vprinter
    finally:
        vprinter.stop()


def printed(printer: VirtualPrinter, receipt: Receipt, name: str) -> PrintedReceipt:
    """Print ``receipt`` on the virtual printer and keep its PNG as artifacts/receipts/name."""
    before = len(printer.receipts())
    with socket.create_connection(printer.address, timeout=5) as sock:
        sock.sendall(encode_receipt(receipt, paper_for(80), segment))
    deadline = time.monotonic() + 5
    while len(printer.receipts()) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(printer.receipts()) == before + 1, f"{name} was not printed"
    result = printer.receipts()[-1]
    assert result.complete
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(result.png_path.read_bytes())
    return result


def test_the_application_receipt_of_a_queued_case(printer: VirtualPrinter,
                                                  catalogue: Catalogue) -> None:
    item = catalogue.item("temporary_assistance")
    assert item is not None
    receipt = application_receipt(
        item=item, reference="L-T-SIM-0001-20261207-0001", case_number=None,
        receiving_place="示范镇便民服务中心", authority="示范县民政局", cross_region=False,
        received_on=dt.date(2026, 12, 7), promised_by=dt.date(2026, 12, 28),
        deferred=(("户口簿", dt.date(2026, 12, 14)),), scanned=(("居民身份证", 2),),
        delivery=Delivery.PICKUP, delivery_text="领取地点：示范县政务服务中心",
        phone_masked="138****5678", links_base=LINKS, terminal_id=TERMINAL, printed_at=NOW,
        zone=CHINA_ZONE)
    text = printed(printer, receipt, "application-queued").text
    assert "申请受理回执" in text and "L-T-SIM-0001-20261207-0001" in text
    # No case number yet: only the text saying it follows, no 办件编号 line of its own.
    assert "网络暂时中断" in text and not re.search(r"^办件编号\s", text, re.MULTILINE)
    assert "2026年12月28日" in text and "户口簿：2026年12月14日前" in text


def test_the_application_receipt_of_a_case_decided_elsewhere(printer: VirtualPrinter,
                                                             catalogue: Catalogue) -> None:
    item = catalogue.item("elderly_allowance")
    assert item is not None
    receipt = application_receipt(
        item=item, reference="L-T-SIM-0001-20261207-0002", case_number="SB20261207000031",
        receiving_place="示范镇便民服务中心", authority="杭州市民政局", cross_region=True,
        received_on=dt.date(2026, 12, 7), promised_by=dt.date(2027, 1, 5), deferred=(),
        scanned=(("居民身份证", 2), ("户口簿", 1)), delivery=Delivery.MAIL,
        delivery_text="邮寄至：浙江省温州市瑞安市塘下镇****", phone_masked="139****0001",
        links_base=LINKS, terminal_id=TERMINAL, printed_at=NOW, zone=CHINA_ZONE)
    text = printed(printer, receipt, "application-cross-region").text
    assert re.search(r"^办件编号\s+SB20261207000031$", text, re.MULTILINE)
    assert "异地通办" in text and "免费邮寄" in text
    assert "容缺" not in text


def test_the_progress_appointment_and_report_slips(printer: VirtualPrinter,
                                                   catalogue: Catalogue) -> None:
    case = CaseProgress("SB20261207000012", "temporary_assistance", CaseStatus.IN_REVIEW,
                        dt.date(2026, 12, 7), NOW, dt.date(2026, 12, 28))
    slips = {
        "progress-slip": progress_slip(case, catalogue.item("temporary_assistance"),
                                       links_base=LINKS, terminal_id=TERMINAL, printed_at=NOW,
                                       zone=CHINA_ZONE),
        "appointment-slip": appointment_slip(
            Appointment("a1", "ABCD-EFGH", "elderly_allowance", "county", dt.date(2026, 12, 9),
                        dt.time(9, 30), dt.time(10)),
            service="高龄津贴申领", site="示范县政务服务中心", links_base=LINKS,
            terminal_id=TERMINAL, printed_at=NOW, zone=CHINA_ZONE),
        "report-slip": report_slip(
            reference="L-T-SIM-0001-20261207-0003", hub_reference="BBCS20261207001",
            problem="材料要求不清楚", item="临时救助申请",
            callback_by=NOW + dt.timedelta(days=1), phone_masked="138****5678",
            terminal_id=TERMINAL, printed_at=NOW, zone=CHINA_ZONE),
    }
    expected = {"progress-slip": ("办件进度", "审查中", "SB20261207000012"),
                "appointment-slip": ("预约凭条", "2026年12月9日 09:30-10:00", "ABCD-EFGH"),
                "report-slip": ("办不成事", "BBCS20261207001", "2026-12-08 10:00前")}
    for name, receipt in slips.items():
        text = printed(printer, receipt, name).text
        for words in expected[name]:
            assert words in text, (name, words)

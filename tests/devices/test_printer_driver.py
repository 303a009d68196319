"""Receipt printer driver against the virtual printer over TCP: golden bytes, faults, recovery."""

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from devices.base import (
    Align,
    CoverOpen,
    DeviceState,
    DeviceTimeout,
    Feed,
    FieldLine,
    PaperOut,
    PrinterError,
    PrinterOffline,
    QrCode,
    Receipt,
    Rule,
    TextLine,
)
from devices.printer.driver import PrinterConnection, ReceiptPrinter, encode_receipt
from devices.printer.protocol import PAPER_80MM
from simulator.processes import free_port
from simulator.vprinter import PrinterStatus, VirtualPrinter

GOLDEN = Path(__file__).parent.parent / "fixtures" / "printer" / "enrollment_receipt_80mm.bin"
UPDATE_GOLDEN = os.environ.get("KIOSK_UPDATE_GOLDEN") == "1"
STATUS_TIMEOUT_S = 0.3
TITLE = "社会保险参保证明"


def enrollment_receipt() -> Receipt:
    """The 参保证明 a resident prints at the kiosk; only masked personal data, as on real paper."""
    return Receipt(
        (
            TextLine(TITLE, Align.CENTER, emphasis=True, large=True),
            TextLine("Social Insurance Enrollment Proof", Align.CENTER),
            Rule(),
            FieldLine("姓名", "张*"),
            FieldLine("公民身份号码", "1101**********002X"),
            FieldLine("参保险种", "城乡居民基本养老保险"),
            FieldLine("参保状态", "正常参保"),
            FieldLine("参保地", "北京市东城区社会保险事业管理中心"),
            FieldLine("累计缴费月数", "36"),
            FieldLine("打印时间", "2025-03-01 10:15"),
            FieldLine("验证码", "A7K2-9QX4"),
            Rule(),
            TextLine("本证明可通过扫描下方二维码核验真伪。如有疑问，请咨询服务中心窗口工作人员。"),
            QrCode("https://si.example.gov.cn/verify?c=A7K29QX4", caption="扫码核验"),
            Feed(1),
            TextLine("XX镇便民服务中心 24小时自助服务区", Align.CENTER),
        )
    )


@pytest.fixture
def vprinter(tmp_path: Path) -> Iterator[VirtualPrinter]:
    with VirtualPrinter(out_dir=tmp_path / "receipts") as printer:
        yield printer


def driver_for(vprinter: VirtualPrinter, paper_mm: int = 80) -> ReceiptPrinter:
    host, port = vprinter.address
    return ReceiptPrinter(
        PrinterConnection.network(host, port),
        paper_mm=paper_mm,
        status_timeout_s=STATUS_TIMEOUT_S,
        job_timeout_s=3.0,
    )


@pytest.fixture
def printer(vprinter: VirtualPrinter) -> Iterator[ReceiptPrinter]:
    driver = driver_for(vprinter)
    yield driver
    driver.close()


# --- the job on the wire --------------------------------------------------------------------------


def test_receipt_bytes_match_the_golden_file(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    # Exchange: DLE EOT 1-4 (answered), the job from ESC @ to GS V, DLE EOT 1-4; the printer's raw
    # record of the job (status requests left out) must equal the frozen golden bytes.
    printer.print_receipt(enrollment_receipt())
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    if UPDATE_GOLDEN:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(receipt.raw)
    assert GOLDEN.exists(), "golden missing: run once with KIOSK_UPDATE_GOLDEN=1 and review it"
    golden = GOLDEN.read_bytes()
    assert receipt.raw == golden
    assert encode_receipt(enrollment_receipt(), PAPER_80MM) == golden


def test_golden_file_has_the_expected_shape() -> None:
    # Guards the frozen file itself, so a bad regeneration cannot slip through as "golden".
    golden = GOLDEN.read_bytes()
    assert golden.startswith(b"\x1b@\x1c&")  # ESC @, then FS & before any text
    assert b"\x1ba\x01\x1bE\x01\x1d!\x11" + TITLE.encode("gb18030") + b"\n" in golden
    assert "1101**********002X".encode("gb18030") in golden
    assert "张*".encode("gb18030") in golden
    qr_data = b"https://si.example.gov.cn/verify?c=A7K29QX4"
    store = b"\x1d(k" + (len(qr_data) + 3).to_bytes(2, "little") + b"1P0" + qr_data
    assert b"\x1d(k\x03\x001E1" in golden  # error correction level M
    assert store in golden
    assert golden.index(store) < golden.index(b"\x1d(k\x03\x001Q0")  # store, then print
    assert golden.endswith(b"\x1bd\x06\x1dV\x00")  # feed past the cutter, full cut
    assert b"\x1b!" not in golden  # ESC ! sizes only alphanumerics on Epson: never used
    assert b"\x1bt" not in golden  # no code-page switching: everything is GB18030


def test_printed_receipt_shows_the_chinese_text(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    printer.print_receipt(enrollment_receipt())
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    lines = receipt.text.splitlines()
    assert lines[0].strip() == TITLE
    assert "姓名" + " " * 41 + "张*" in lines
    assert "公民身份号码" + " " * 18 + "1101**********002X" in lines
    assert "[QR] https://si.example.gov.cn/verify?c=A7K29QX4" in receipt.text
    assert receipt.complete
    assert receipt.notes == ()  # nothing wrapped by the printer, no unknown command
    with Image.open(receipt.png_path) as image:
        assert image.width == 576
    assert printer.last_state() == DeviceState.ok()


def test_58mm_layout_fits_the_narrow_roll(tmp_path: Path) -> None:
    with VirtualPrinter(out_dir=tmp_path, paper_mm=58) as vprinter:
        driver = driver_for(vprinter, paper_mm=58)
        try:
            driver.print_receipt(enrollment_receipt())
        finally:
            driver.close()
        (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.notes == ()
    assert receipt.text.splitlines()[0] == TITLE  # 32 columns, exactly the width of 58 mm
    assert "-" * 32 in receipt.text.splitlines()
    with Image.open(receipt.png_path) as image:
        assert image.width == 384


# --- refusing and reporting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (PrinterStatus.PAPER_OUT, PaperOut, "paper_out"),
        (PrinterStatus.COVER_OPEN, CoverOpen, "cover_open"),
        (PrinterStatus.CUTTER_ERROR, PrinterError, "cutter_error"),
    ],
)
def test_a_printer_that_cannot_print_gets_no_job(
    vprinter: VirtualPrinter,
    printer: ReceiptPrinter,
    status: PrinterStatus,
    error: type[PrinterError],
    reason: str,
) -> None:
    vprinter.status = status
    with pytest.raises(error) as raised:
        printer.print_receipt(enrollment_receipt())
    assert raised.value.reason == reason
    assert printer.last_state() == DeviceState.fault(reason)
    assert vprinter.bytes_received == 0  # not one byte of the job went out
    assert vprinter.receipts() == []


def test_near_end_prints_and_reports_degraded(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    vprinter.status = PrinterStatus.NEAR_END
    assert printer.status() == DeviceState.degraded("paper_near_end")
    printer.print_receipt(enrollment_receipt())
    assert len(vprinter.wait_for_receipts(1, timeout_s=5.0)) == 1
    assert printer.last_state() == DeviceState.degraded("paper_near_end")


def test_paper_running_out_mid_job_is_paper_out(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    vprinter.paper_out_after(5)
    with pytest.raises(PaperOut, match="during the job"):
        printer.print_receipt(enrollment_receipt())
    (partial,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert not partial.complete
    assert len(partial.text.splitlines()) == 5
    assert printer.last_state() == DeviceState.fault("paper_out")
    # A technician reloads the roll: the next job prints in full.
    vprinter.status = PrinterStatus.OK
    printer.print_receipt(enrollment_receipt())
    receipts = vprinter.wait_for_receipts(2, timeout_s=5.0)
    assert receipts[1].complete
    assert printer.last_state() == DeviceState.ok()


def test_silent_printer_is_a_fault_within_the_timeout(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    vprinter.status = PrinterStatus.SILENT
    started = time.monotonic()
    state = printer.status()
    elapsed = time.monotonic() - started
    assert state == DeviceState.fault("no_response")
    # One unanswered request is enough; waiting once per request would take 4 x 0.3 = 1.2 s.
    assert STATUS_TIMEOUT_S <= elapsed < STATUS_TIMEOUT_S + 0.5
    with pytest.raises(DeviceTimeout):
        printer.print_receipt(enrollment_receipt())
    assert vprinter.bytes_received == 0
    assert printer.last_state() == DeviceState.fault("no_response")


def test_garbage_status_bytes_are_no_response(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    # python-escpos 3.1 would read 0xFF as "paper OK"; we must not.
    vprinter.status = PrinterStatus.GARBAGE
    assert printer.status() == DeviceState.fault("no_response")
    with pytest.raises(DeviceTimeout):
        printer.print_receipt(enrollment_receipt())
    assert vprinter.bytes_received == 0


def test_printer_recovers_when_it_answers_again(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    vprinter.status = PrinterStatus.SILENT
    assert printer.status() == DeviceState.fault("no_response")
    vprinter.status = PrinterStatus.OK
    assert printer.status() == DeviceState.ok()
    printer.print_receipt(enrollment_receipt())
    assert len(vprinter.wait_for_receipts(1, timeout_s=5.0)) == 1


def test_a_late_reply_is_never_taken_for_a_later_answer(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    # Exchange: DLE EOT 1 is answered (0x1A, off-line: cover open) only after our timeout. The next
    # check, with the printer quick and fine again, must get fresh answers, not that stale 0x1A.
    vprinter.status = PrinterStatus.COVER_OPEN
    vprinter.reply_delay_s = STATUS_TIMEOUT_S + 0.2
    assert printer.status() == DeviceState.fault("no_response")
    # Still a little slow (within the timeout), so the stale byte and a fresh reply can never
    # arrive in the same read and hide the problem.
    vprinter.reply_delay_s = 0.1
    vprinter.status = PrinterStatus.OK
    assert printer.status() == DeviceState.ok()


def test_unsolicited_bytes_are_not_read_as_status(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    # Exchange: bytes nobody asked for (0x1A "off-line", as repeated automatic status back
    # reports) arrive between two checks; more than one read's worth (16), so they must be
    # discarded before asking, not read as the reply to the next DLE EOT 1.
    assert printer.status() == DeviceState.ok()
    vprinter.send_unsolicited(b"\x1a" * 20)
    time.sleep(0.05)  # loopback delivers at once; this only leaves no doubt
    assert printer.status() == DeviceState.ok()


def test_printer_that_is_not_there_is_offline() -> None:
    driver = ReceiptPrinter(
        PrinterConnection.network("127.0.0.1", free_port()), status_timeout_s=STATUS_TIMEOUT_S
    )
    assert driver.status() == DeviceState.fault("offline")
    with pytest.raises(PrinterOffline):
        driver.print_receipt(enrollment_receipt())
    assert driver.last_state() == DeviceState.fault("offline")
    driver.close()


def test_a_restarted_printer_is_picked_up_on_the_next_job(tmp_path: Path) -> None:
    first = VirtualPrinter(out_dir=tmp_path / "first")
    first.start()
    host, port = first.address
    driver = ReceiptPrinter(PrinterConnection.network(host, port), status_timeout_s=1.0)
    try:
        driver.print_receipt(enrollment_receipt())
        first.stop()  # the printer reboots: our socket is now dead
        with pytest.raises(PrinterOffline):
            driver.print_receipt(enrollment_receipt())
        with VirtualPrinter(out_dir=tmp_path / "second", port=port) as second:
            driver.print_receipt(enrollment_receipt())
            assert len(second.wait_for_receipts(1, timeout_s=5.0)) == 1
        assert len(first.receipts()) == 1
    finally:
        driver.close()


def test_a_dropped_connection_is_reopened_without_a_restart(
    vprinter: VirtualPrinter, printer: ReceiptPrinter
) -> None:
    assert printer.status() == DeviceState.ok()
    # The printer side drops our connection (power blip, network switch): the socket is stale.
    vprinter.stop()
    vprinter.start()
    assert printer.status() == DeviceState.ok()
    printer.print_receipt(enrollment_receipt())
    assert len(vprinter.wait_for_receipts(1, timeout_s=5.0)) == 1


def test_nothing_personal_is_logged(
    vprinter: VirtualPrinter, printer: ReceiptPrinter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vprinter.paper_out_after(3)
    with pytest.raises(PaperOut) as raised:
        printer.print_receipt(enrollment_receipt())
    logged = caplog.text + str(raised.value)
    for secret in ("张", "1101**", "002X", "北京市东城区", "A7K2"):
        assert secret not in logged
    assert "paper_out" in caplog.text  # the state change itself is logged, by reason code

"""Serial scanner driver against the virtual scanner on a real pty: codes, unplug, replug, faults.

Every wait is bounded: codes are taken from a queue with a timeout, states are polled to a
deadline, and the virtual scanner's writes give up when nobody reads.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from contracts.codes import appointment_url, progress_url
from devices.base import DeviceState, Health
from devices.scanner.protocol import ScanKind, ScannedCode, ScannerReason, Terminator
from devices.scanner.serial_driver import SerialScanner
from simulator.vscanner import SERIAL_CHUNK, SERIAL_GAP_S, ScannerUnplugged, VirtualScanner

WAIT_S = 3.0
READ_TIMEOUT_S = 0.05
REOPEN_S = 0.05
ID_NUMBER = "11010519491231002X"


class Codes:
    """What the driver hands to on_code, collected from its reader thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[ScannedCode] = queue.Queue()
        self.threads: set[str] = set()

    def __call__(self, code: ScannedCode) -> None:
        self.threads.add(threading.current_thread().name)
        self.queue.put(code)

    def next(self) -> ScannedCode:
        return self.queue.get(timeout=WAIT_S)

    def texts(self, count: int) -> list[str]:
        return [self.next().text for _ in range(count)]

    def none_within(self, seconds: float) -> bool:
        try:
            self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def wait_state(scanner: SerialScanner, state: DeviceState) -> None:
    wait_for(lambda: scanner.state() == state, f"{state} (is {scanner.state()})")


@pytest.fixture
def vscanner(tmp_path: Path) -> Iterator[VirtualScanner]:
    with VirtualScanner(directory=tmp_path, name="usb-Scanner_0001-if00") as virtual:
        yield virtual


@pytest.fixture
def codes() -> Codes:
    return Codes()


@pytest.fixture
def make_scanner(codes: Codes) -> Iterator[Callable[..., SerialScanner]]:
    made: list[SerialScanner] = []

    def make(port: str, **settings: object) -> SerialScanner:
        options: dict[str, object] = {"read_timeout_s": READ_TIMEOUT_S, "reopen_s": REOPEN_S}
        options.update(settings)
        scanner = SerialScanner(port, on_code=codes, **options)  # type: ignore[arg-type]
        made.append(scanner)
        scanner.start()
        return scanner

    yield make
    for scanner in made:
        scanner.stop()


def test_codes_arrive_in_order_as_scanned(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path)
    assert scanner.state() == DeviceState.ok()  # start() opened the port already
    sent = [f"CODE-{i:03d}-" + "x" * (i % 40) for i in range(60)]
    for i, text in enumerate(sent):
        if i % 10 == 0:  # some paced like a 9600-baud UART, the rest in one write
            vscanner.scan(text, chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S)
        else:
            vscanner.scan(text)
    assert codes.texts(len(sent)) == sent
    assert codes.threads == {"scanner-serial"}


@pytest.mark.parametrize(
    ("sends", "terminator"),
    [
        (b"\r", Terminator.ANY),
        (b"\r\n", Terminator.ANY),
        (b"\n", Terminator.ANY),
        (b"\r", Terminator.CR),
        (b"\r\n", Terminator.CRLF),
    ],
)
def test_cr_and_crlf_scanners(
    tmp_path: Path,
    codes: Codes,
    make_scanner: Callable[..., SerialScanner],
    sends: bytes,
    terminator: Terminator,
) -> None:
    with VirtualScanner(sends, directory=tmp_path) as virtual:
        make_scanner(virtual.path, terminator=terminator)
        for text in ("one", "two", "three"):
            virtual.scan(text, chunk_size=2, gap_s=0.002)  # terminators split across reads too
        assert codes.texts(3) == ["one", "two", "three"]
        assert codes.none_within(0.1)  # no empty code between CR and LF


def test_receipts_and_appointments_are_classified(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    make_scanner(vscanner.path)
    receipt = progress_url("https://hub.example.gov.cn", "SB20261207000123")
    slip = appointment_url("https://hub.example.gov.cn", "A7K29QX4X")
    for text in (receipt, slip, ID_NUMBER):
        vscanner.scan(text, chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S)
    first, second, third = codes.next(), codes.next(), codes.next()
    assert (first.kind, first.reference) == (ScanKind.RECEIPT, "SB20261207000123")
    assert (second.kind, second.reference) == (ScanKind.APPOINTMENT, "A7K29QX4X")
    assert (third.kind, third.text) == (ScanKind.UNKNOWN, ID_NUMBER)


def test_a_gb18030_scanner_is_read(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    make_scanner(vscanner.path)
    vscanner.scan("张三 社会保障卡", encoding="gb18030")
    vscanner.scan("张三 社会保障卡")
    assert codes.texts(2) == ["张三 社会保障卡", "张三 社会保障卡"]


def test_unplug_is_offline_and_replug_reads_again_without_a_restart(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path)
    vscanner.scan("before")
    assert codes.next().text == "before"
    for round_ in range(3):
        vscanner.unplug()
        wait_state(scanner, DeviceState.fault(ScannerReason.OFFLINE))
        with pytest.raises(ScannerUnplugged):
            vscanner.scan("nobody hears this")
        vscanner.replug()
        wait_state(scanner, DeviceState.ok())
        vscanner.scan(f"after-{round_}", chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S)
        assert codes.next().text == f"after-{round_}"


def test_a_code_cut_off_by_the_unplug_is_not_glued_to_the_next(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path)
    vscanner.send(b"SB2026120700")  # half a code, then the cable is pulled
    time.sleep(0.1)
    vscanner.unplug()
    wait_state(scanner, DeviceState.fault(ScannerReason.OFFLINE))
    vscanner.replug()
    wait_state(scanner, DeviceState.ok())
    vscanner.scan("whole")
    assert codes.next().text == "whole"


def test_a_port_that_is_not_there_is_absent_until_it_appears(
    tmp_path: Path, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(str(tmp_path / "later"))
    assert scanner.state() == DeviceState.fault(ScannerReason.ABSENT)
    time.sleep(3 * REOPEN_S)
    assert scanner.state() == DeviceState.fault(ScannerReason.ABSENT)  # never seen: not offline
    with VirtualScanner(directory=tmp_path, name="later") as virtual:
        wait_state(scanner, DeviceState.ok())
        virtual.scan("hello")
        assert codes.next().text == "hello"


def test_garbled_input_degrades_until_a_good_code(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path, max_length=64)
    vscanner.send(b"\xff\xfe\x80\x81\r")  # a wrong baud rate looks like this
    wait_state(scanner, DeviceState.degraded(ScannerReason.GARBLED))
    vscanner.scan("good")
    assert codes.next().text == "good"
    assert scanner.state() == DeviceState.ok()
    vscanner.send(b"z" * 500)  # no terminator in sight: too long
    wait_state(scanner, DeviceState.degraded(ScannerReason.GARBLED))
    vscanner.send(b"z" * 100 + b"\r")
    vscanner.scan("resynced")
    assert codes.next().text == "resynced"
    assert codes.none_within(0.1)


def test_a_partial_code_then_silence_is_dropped(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path, partial_timeout_s=0.2)
    vscanner.send(b"lost-terminator")
    wait_state(scanner, DeviceState.degraded(ScannerReason.GARBLED))
    vscanner.scan("next")
    assert codes.next().text == "next"


def test_a_port_held_by_another_process_is_busy_until_released(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    holder = serial.Serial(vscanner.path, 9600, timeout=0.1, exclusive=True)
    try:
        scanner = make_scanner(vscanner.path)
        assert scanner.state() == DeviceState.fault(ScannerReason.BUSY)
    finally:
        holder.close()
    wait_state(scanner, DeviceState.ok())
    vscanner.scan("mine now")
    assert codes.next().text == "mine now"


def test_stop_is_bounded_even_with_a_long_read_timeout(
    vscanner: VirtualScanner, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path, read_timeout_s=5.0)
    time.sleep(0.05)  # the reader is inside its 5 s read now
    began = time.monotonic()
    scanner.stop()
    assert time.monotonic() - began < 0.5
    assert not any(t.name == "scanner-serial" for t in threading.enumerate())
    assert scanner.state().health is Health.FAULT
    # The port is closed and free again.
    serial.Serial(vscanner.path, 9600, timeout=0.1, exclusive=True).close()


def test_stop_while_waiting_to_reopen_is_bounded(
    tmp_path: Path, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(str(tmp_path / "none"), reopen_s=30.0)
    began = time.monotonic()
    scanner.stop()
    assert time.monotonic() - began < 0.5


def test_start_twice_is_refused_and_start_after_stop_works(
    vscanner: VirtualScanner, codes: Codes, make_scanner: Callable[..., SerialScanner]
) -> None:
    scanner = make_scanner(vscanner.path)
    with pytest.raises(RuntimeError):
        scanner.start()
    scanner.stop()
    scanner.start()
    vscanner.scan("again")
    assert codes.next().text == "again"


def test_a_failing_listener_does_not_stop_the_reader(
    vscanner: VirtualScanner, codes: Codes, caplog: pytest.LogCaptureFixture
) -> None:
    def listener(code: ScannedCode) -> None:
        if code.text == ID_NUMBER:
            raise ValueError(f"cannot handle {code.text}")  # a careless bug quoting the code
        codes(code)

    scanner = SerialScanner(
        vscanner.path, on_code=listener, read_timeout_s=READ_TIMEOUT_S, reopen_s=REOPEN_S
    )
    scanner.start()
    try:
        with caplog.at_level(logging.DEBUG):
            vscanner.scan(ID_NUMBER)
            vscanner.scan("next")
            assert codes.next().text == "next"
    finally:
        scanner.stop()
    assert "ValueError" in caplog.text
    assert ID_NUMBER not in caplog.text


def test_nothing_scanned_is_logged(
    vscanner: VirtualScanner,
    codes: Codes,
    make_scanner: Callable[..., SerialScanner],
    caplog: pytest.LogCaptureFixture,
) -> None:
    receipt = progress_url("https://hub.example.gov.cn", "SB20261207000123")
    with caplog.at_level(logging.DEBUG):
        scanner = make_scanner(vscanner.path, max_length=64)
        for text in (ID_NUMBER, receipt, "张三"):
            vscanner.scan(text)
        vscanner.send(ID_NUMBER.encode() * 5 + b"\r")  # too long: discarded
        vscanner.send(ID_NUMBER.encode())  # cut off by the unplug
        time.sleep(0.1)
        vscanner.unplug()
        wait_state(scanner, DeviceState.fault(ScannerReason.OFFLINE))
        assert [codes.next().text for _ in range(3)] == [ID_NUMBER, receipt, "张三"]
    assert "unknown code, 18 characters" in caplog.text
    for secret in (ID_NUMBER, "1101", "SB2026", "张三", "hub.example"):
        assert secret not in caplog.text


def test_settings_are_checked(codes: Codes) -> None:
    with pytest.raises(ValueError):
        SerialScanner("", on_code=codes)
    with pytest.raises(ValueError):
        SerialScanner("/dev/ttyS0", 0, on_code=codes)
    with pytest.raises(ValueError):
        SerialScanner("/dev/ttyS0", on_code=codes, read_timeout_s=0)
    with pytest.raises(ValueError):
        SerialScanner("/dev/ttyS0", on_code=codes, reopen_s=0)
    with pytest.raises(ValueError):
        SerialScanner("/dev/ttyS0", on_code=codes, partial_timeout_s=0)

"""Control panel: the scanner and camera endpoints against the real virtual devices.

The panel runs on the rig's own backend (``RigBackend``) over a real ``VirtualScanner`` (read back
by the production serial driver on its link, as the terminal reads it), a real ``VirtualCamera``
(its snapshots fetched over HTTP) and a real ``VirtualPrinter`` (for the receipts' QR codes).
Nothing else of the rig is started: no pcscd, hub, broker or terminal.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.codes import appointment_url, progress_url
from devices.scanner.protocol import ScanKind, ScannedCode, Terminator
from devices.scanner.serial_driver import SerialScanner
from simulator.cli import RigBackend
from simulator.panel import CAMERA_FAULTS, ControlPanel
from simulator.rig import RigOptions, SimulatorRig
from simulator.sample_documents import black_frames, load_document
from simulator.vcamera import VirtualCamera
from simulator.vprinter import PrinterStatus, VirtualPrinter
from simulator.vscanner import VirtualScanner

CACHE = Path(tempfile.gettempdir()) / "kiosk-sample-documents"  # shared with test_vcamera
FIXTURE_RECEIPT = Path(__file__).parents[1] / "fixtures" / "printer" / "enrollment_receipt_80mm.bin"
HUB = "http://127.0.0.1:8702"

ESC_INIT = b"\x1b@"
CUT = b"\x1d\x56\x00"


def qr_commands(data: bytes) -> bytes:
    """GS ( k: model 2, module size 4, level M, store, print (as python-escpos 3.1 emits them)."""

    def k(body: bytes) -> bytes:
        return b"\x1d(k" + len(body).to_bytes(2, "little") + body

    return k(b"1A2\x00") + k(b"1C\x04") + k(b"1E1") + k(b"1P0" + data) + k(b"1Q0")


# --- the rig's devices and the panel ---------------------------------------------------------


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorRig]:
    workdir = tmp_path_factory.mktemp("sim")
    rig = SimulatorRig(RigOptions(workdir=workdir, start_terminal=False))
    rig.scanner = VirtualScanner(directory=workdir, name="scanner.tty").start()
    rig.scanner_path = rig.scanner.path
    rig.camera = VirtualCamera(port=0, cache_dir=CACHE)
    rig.camera_url = rig.camera.start()
    rig.printer = VirtualPrinter(out_dir=workdir / "receipts")
    rig.printer.start()
    yield rig
    rig.stop()


@pytest.fixture(scope="module")
def shared_panel(rig: SimulatorRig) -> Iterator[ControlPanel]:
    panel = ControlPanel(RigBackend(rig), port=0)
    panel.start()
    yield panel
    panel.stop()


@pytest.fixture
def panel(shared_panel: ControlPanel, rig: SimulatorRig) -> Iterator[ControlPanel]:
    yield shared_panel
    # Each test leaves the devices as it found them.
    assert rig.scanner is not None and rig.camera is not None
    rig.scanner.replug()
    rig.camera.set_fault("ok")
    rig.camera.set_document("application_form")


@pytest.fixture
def codes(rig: SimulatorRig) -> Iterator[queue.Queue[ScannedCode]]:
    """What the terminal's serial driver reads from the scanner's link (terminator CR)."""
    read: queue.Queue[ScannedCode] = queue.Queue()
    driver = SerialScanner(rig.scanner_path, on_code=read.put, terminator=Terminator.CR,
                           read_timeout_s=0.05, reopen_s=0.05)
    driver.start()
    yield read
    driver.stop()


def call(panel: ControlPanel, method: str, path: str,
         body: object = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(panel.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def devices(panel: ControlPanel) -> dict[str, object]:
    status, state = call(panel, "GET", "/api/state")
    assert status == 200 and isinstance(state["devices"], dict), state
    return state["devices"]


def snapshot(camera: VirtualCamera, timeout_s: float = 5.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", camera.port, timeout=timeout_s)
    try:
        connection.request("GET", "/snapshot.jpg")
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def print_receipt(printer: VirtualPrinter, data: bytes) -> None:
    """Print ``data`` and wait for the receipt it makes."""
    count = len(printer.receipts())
    with socket.create_connection(printer.address, timeout=2.0) as sock:
        sock.sendall(data)
    printer.wait_for_receipts(count + 1, timeout_s=5.0)


# --- the scanner -------------------------------------------------------------------------------


def test_a_scanned_code_reaches_the_serial_driver_as_a_real_scanner_sends_it(
    panel: ControlPanel, codes: queue.Queue[ScannedCode]
) -> None:
    url = progress_url(HUB, "SB20261207000123")
    assert call(panel, "POST", "/api/scanner/scan", {"code": url}) == (200, {"ok": True})
    code = codes.get(timeout=3)
    assert (code.kind, code.text, code.reference) == (ScanKind.RECEIPT, url, "SB20261207000123")
    # Any text at all, Chinese included, one code per scan.
    assert call(panel, "POST", "/api/scanner/scan", {"code": "任意文字 any"})[0] == 200
    assert codes.get(timeout=3).text == "任意文字 any"
    assert codes.empty()


def test_a_line_break_in_a_code_is_sent_with_a_warning(
    panel: ControlPanel, codes: queue.Queue[ScannedCode]
) -> None:
    status, answer = call(panel, "POST", "/api/scanner/scan", {"code": "one\rtwo"})
    assert status == 200 and "two codes" in str(answer["warning"])
    assert [codes.get(timeout=3).text, codes.get(timeout=3).text] == ["one", "two"]


def test_an_unplugged_scanner_refuses_scans_with_409_until_plugged_back(
    panel: ControlPanel, rig: SimulatorRig, codes: queue.Queue[ScannedCode]
) -> None:
    assert devices(panel)["scanner_state"] == "plugged"
    assert devices(panel)["scanner_path"] == rig.scanner_path
    assert call(panel, "POST", "/api/scanner/plug", {"plugged": False}) == (
        200, {"ok": True, "plugged": False})
    assert devices(panel)["scanner_state"] == "unplugged"
    assert not Path(rig.scanner_path).exists()
    status, answer = call(panel, "POST", "/api/scanner/scan", {"code": "lost"})
    assert status == 409
    assert "unplugged" in str(answer["error"]) and "/api/scanner/plug" in str(answer["error"])

    assert call(panel, "POST", "/api/scanner/plug", {"plugged": True})[0] == 200
    assert devices(panel)["scanner_state"] == "plugged"
    # The driver opens the link again by itself (every reopen_s); then codes flow again.
    deadline = time.monotonic() + 3
    while True:
        assert call(panel, "POST", "/api/scanner/scan", {"code": "back"})[0] == 200
        try:
            assert codes.get(timeout=0.3).text == "back"
            break
        except queue.Empty:
            assert time.monotonic() < deadline, "the driver never read the replugged scanner"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing field(s): code"),
        ({"code": ""}, "code must be a non-empty string"),
        ({"code": 42}, "code must be a non-empty string"),
        ({"code": None}, "code must be a non-empty string"),
        ({"code": "码" * 2049}, "code is longer than 6144 bytes in UTF-8"),
        ({"code": "x", "terminator": "lf"}, "unknown field(s): terminator"),
    ],
)
def test_a_bad_scan_body_is_a_400_that_says_why(
    panel: ControlPanel, body: object, message: str
) -> None:
    status, answer = call(panel, "POST", "/api/scanner/scan", body)
    assert status == 400 and str(answer["error"]).startswith(message), answer


@pytest.mark.parametrize("body", [{}, {"plugged": "yes"}, {"plugged": 1}, {"plugged": None}])
def test_a_bad_plug_body_is_a_400(panel: ControlPanel, body: object) -> None:
    status, answer = call(panel, "POST", "/api/scanner/plug", body)
    assert status == 400 and "plugged" in str(answer["error"])


# --- the camera --------------------------------------------------------------------------------


def test_the_documents_are_listed_with_the_current_one_and_their_titles(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    assert rig.camera is not None
    status, listing = call(panel, "GET", "/api/camera/documents")
    assert status == 200
    assert listing == {
        "documents": rig.camera.documents(),
        "current": "application_form",
        "titles": rig.camera.document_titles(),
        "fault": "ok",
    }
    assert "empty" in rig.camera.documents()


def test_a_chosen_document_is_what_the_camera_shoots(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    assert rig.camera is not None
    assert snapshot(rig.camera) == (200, load_document("application_form", CACHE).full_jpeg)
    for name in ("certificate", "empty"):
        assert call(panel, "POST", "/api/camera/document", {"name": name}) == (200, {"ok": True})
        assert snapshot(rig.camera) == (200, load_document(name, CACHE).full_jpeg)
        assert call(panel, "GET", "/api/camera/documents")[1]["current"] == name
        assert devices(panel)["camera_document"] == name


def test_camera_faults_fail_the_camera_as_a_real_one_fails(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    camera = rig.camera
    assert camera is not None
    assert call(panel, "POST", "/api/camera/fault", {"mode": "black"}) == (200, {"ok": True})
    assert snapshot(camera) == (200, black_frames()[0])
    assert call(panel, "POST", "/api/camera/fault", {"mode": "absent"})[0] == 200
    assert snapshot(camera)[0] == 503
    assert devices(panel)["camera_fault"] == "absent"
    assert call(panel, "POST", "/api/camera/fault", {"mode": "stall"})[0] == 200
    with pytest.raises(TimeoutError):
        snapshot(camera, timeout_s=0.3)  # held open, nothing sent
    assert call(panel, "POST", "/api/camera/fault", {"mode": "ok"})[0] == 200
    assert snapshot(camera)[0] == 200


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/camera/document", {}, "missing field(s): name"),
        ("/api/camera/document", {"name": 3}, "name must be a sample document's name"),
        ("/api/camera/document", {"name": "passport"}, "name must be one of application_form"),
        ("/api/camera/document", {"name": "empty", "fault": "ok"}, "unknown field(s): fault"),
        ("/api/camera/fault", {}, "missing field(s): mode"),
        ("/api/camera/fault", {"mode": "broken"}, "mode must be one of ok, absent, black, stall"),
    ],
)
def test_a_bad_camera_body_is_a_400_that_says_why(
    panel: ControlPanel, path: str, body: object, message: str
) -> None:
    status, answer = call(panel, "POST", path, body)
    assert status == 400 and str(answer["error"]).startswith(message), answer


# --- receipts carrying QR codes ----------------------------------------------------------------


def test_a_receipts_qr_is_listed_and_scanning_it_reaches_the_driver(
    panel: ControlPanel, rig: SimulatorRig, codes: queue.Queue[ScannedCode]
) -> None:
    assert rig.printer is not None
    slip = appointment_url(HUB, "YY20261208001")
    print_receipt(rig.printer, FIXTURE_RECEIPT.read_bytes())  # a golden receipt of the driver's
    print_receipt(rig.printer, ESC_INIT + b"slip\n" + qr_commands(slip.encode()) + CUT)
    print_receipt(rig.printer, ESC_INIT + b"no code here\n" + CUT)
    receipts = call(panel, "GET", "/api/receipts")[1]["receipts"]
    assert isinstance(receipts, list)
    assert [receipt["qr"] for receipt in receipts[-3:]] == [
        ["https://si.example.gov.cn/verify?c=A7K29QX4"], [slip], []]
    assert call(panel, "POST", "/api/scanner/scan", {"code": receipts[-2]["qr"][0]})[0] == 200
    code = codes.get(timeout=3)
    assert (code.kind, code.reference) == (ScanKind.APPOINTMENT, "YY20261208001")


def test_a_qr_the_paper_ran_out_before_is_not_listed(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    printer = rig.printer
    assert printer is not None
    printer.paper_out_after(2)  # the line and the first QR come out, the second never does
    try:
        print_receipt(printer, ESC_INIT + b"two codes\n" + qr_commands(b"first")
                      + qr_commands(b"second") + CUT)
        receipts = call(panel, "GET", "/api/receipts")[1]["receipts"]
        assert isinstance(receipts, list) and receipts[-1]["qr"] == ["first"]
    finally:
        printer.status = PrinterStatus.OK


# --- real devices instead of the virtual ones --------------------------------------------------


def test_with_real_devices_the_panel_says_there_is_nothing_virtual_to_drive(
    tmp_path: Path,
) -> None:
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False,
                                  scanner_serial="/dev/ttyACM0", camera="http://10.0.0.9:8080"))
    rig.scanner_path, rig.camera_url = "/dev/ttyACM0", "http://10.0.0.9:8080"
    panel = ControlPanel(RigBackend(rig), port=0)
    panel.start()
    try:
        status, answer = call(panel, "POST", "/api/scanner/scan", {"code": "x"})
        assert status == 503 and "real one (--scanner-serial)" in str(answer["error"])
        assert call(panel, "POST", "/api/scanner/plug", {"plugged": False})[0] == 503
        status, answer = call(panel, "GET", "/api/camera/documents")
        assert status == 503 and "real one (--camera)" in str(answer["error"])
        assert call(panel, "POST", "/api/camera/fault", {"mode": "black"})[0] == 503
        shown = devices(panel)
        assert shown["scanner_state"] == "external" and shown["scanner_path"] == "/dev/ttyACM0"
        assert shown["camera_fault"] == "external"
        assert shown["camera_url"] == "http://10.0.0.9:8080"
        assert shown["camera_document"] is None
    finally:
        panel.stop()


# --- the page ----------------------------------------------------------------------------------


def test_the_page_has_the_scanner_and_camera_controls(panel: ControlPanel) -> None:
    with urllib.request.urlopen(panel.url, timeout=5) as answer:
        page = answer.read().decode("utf-8")
    for control in ("scan-code", "scan", "scanner-plug", "scanner-unplug", "scanner-state",
                    "camera-document", "camera-faults", "camera-state", "receipt-qr"):
        assert f'id="{control}"' in page, control
    for mode in CAMERA_FAULTS:
        assert f'data-fault="{mode}"' in page, mode
    # Each receipt's codes get a button; the devices line shows both devices.
    for shown in ("scan this receipt's QR", "receipt.qr", "scanner_state", "camera_fault",
                  "camera_documents", '"api/scanner/scan"', '"api/camera/document"'):
        assert shown in page, shown

"""Control panel: the ID card reader and e-ID code endpoints against the real virtual devices.

The panel runs on the rig's own backend (``RigBackend``) over a real ``VirtualSam`` (read back by
the production ID card driver on its link, as the terminal reads it), a real ``SimHub`` (its codes
resolved over its HTTP API, as the terminal's adapter asks) and a real ``VirtualScanner`` (an
issued code "shown" to the terminal). Nothing else of the rig is started: no pcscd, broker or
terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.base import CardHolder, DeviceTimeout, DeviceUnavailable, Sex
from devices.idcard.driver import IdCardReaderDriver
from devices.idcard.protocol import OtherDocument, SamFault
from devices.scanner.protocol import ScanKind, ScannedCode, Terminator
from devices.scanner.serial_driver import SerialScanner
from simulator.cli import RigBackend, _banner, build_parser
from simulator.hub import SimHub
from simulator.panel import ID_CARD_FAULTS, ID_CARD_TYPES, ControlPanel
from simulator.rig import IDCARD_LINK_NAME, RigOptions, SimulatorRig
from simulator.vsam import CARD_TYPE_FLAGS, FAULT_MODES, VirtualSam
from simulator.vscanner import VirtualScanner

ID_NUMBER = "11010519491231002X"  # 17th digit 2: a woman
NAME = "张三"
MAN = "34052419800101001X"  # 17th digit 1: a man
PERSON = {"id_number": ID_NUMBER, "name": NAME}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorRig]:
    workdir = tmp_path_factory.mktemp("sim")
    rig = SimulatorRig(RigOptions(workdir=workdir, start_terminal=False))
    rig.sam = VirtualSam(directory=workdir, name=IDCARD_LINK_NAME).start()
    rig.idcard_path = rig.sam.path
    rig.scanner = VirtualScanner(directory=workdir, name="scanner.tty").start()
    rig.scanner_path = rig.scanner.path
    rig.hub = SimHub(db_path=workdir / "hub.sqlite", port=0)
    rig.hub.start()
    rig.hub_url = rig.hub.url
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
    # Each test leaves the reader as it found it: plugged in, working, nothing on it.
    assert rig.sam is not None
    rig.sam.replug()
    rig.sam.fault("ok")
    rig.sam.remove()


@pytest.fixture
def reader(rig: SimulatorRig) -> IdCardReaderDriver:
    """The terminal's driver on the reader's link, reading on demand (not started)."""
    return IdCardReaderDriver(rig.idcard_path, poll_s=0.02, answer_timeout_s=0.3, reopen_s=0.05)


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


def resolve(hub_url: str, code: str) -> tuple[int, dict[str, object]]:
    """What the terminal's hub adapter asks when a resident shows a code."""
    request = urllib.request.Request(
        f"{hub_url}/v1/identity/codes/resolve", method="POST",
        data=json.dumps({"code": code, "terminal_id": "T-TEST-0001"}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_the_panels_names_are_the_virtual_readers() -> None:
    assert tuple(CARD_TYPE_FLAGS) == ID_CARD_TYPES
    assert ID_CARD_FAULTS == FAULT_MODES


# --- the ID card -----------------------------------------------------------------------------


def test_a_placed_card_is_read_by_the_terminals_driver_and_taken_away(
    panel: ControlPanel, reader: IdCardReaderDriver
) -> None:
    assert devices(panel)["idcard_state"] == "empty"
    body = {"id_number": ID_NUMBER, "name": NAME, "valid_until": "2036-12-31"}
    assert call(panel, "POST", "/api/idcard/place", body) == (200, {"ok": True})
    assert devices(panel)["idcard_state"] == "placed"
    holder = reader.read_once(2.0)
    assert isinstance(holder, CardHolder)
    assert (holder.id_number, holder.name, holder.expires) == (
        ID_NUMBER, NAME, dt.date(2036, 12, 31))
    assert holder.sex is Sex.FEMALE  # from the number, as on a real card

    assert call(panel, "POST", "/api/idcard/remove", {}) == (200, {"ok": True})
    assert devices(panel)["idcard_state"] == "empty"
    with pytest.raises(DeviceTimeout):
        reader.read_once(0.2)


def test_a_long_term_card_and_a_chosen_sex_reach_the_driver(
    panel: ControlPanel, reader: IdCardReaderDriver
) -> None:
    body = {"id_number": MAN, "name": "欧阳娜娜", "valid_until": "长期", "sex": "2"}
    assert call(panel, "POST", "/api/idcard/place", body)[0] == 200
    holder = reader.read_once(2.0)
    assert (holder.name, holder.expires, holder.sex) == ("欧阳娜娜", None, Sex.FEMALE)
    # Without a sex, the number's: 17th digit 1, a man.
    assert call(panel, "POST", "/api/idcard/place", {"id_number": MAN, "name": "李四"})[0] == 200
    assert reader.read_once(2.0).sex is Sex.MALE


def test_an_expired_card_is_placed_with_a_warning_and_reads_as_expired(
    panel: ControlPanel, reader: IdCardReaderDriver
) -> None:
    status, answer = call(panel, "POST", "/api/idcard/place",
                          {"id_number": ID_NUMBER, "name": NAME, "valid_until": "20200131"})
    assert status == 200 and "the terminal should decline it" in str(answer["warning"])
    assert reader.read_once(2.0).expires == dt.date(2020, 1, 31)


def test_another_document_type_is_declined_by_the_driver(
    panel: ControlPanel, reader: IdCardReaderDriver
) -> None:
    body = {"id_number": ID_NUMBER, "name": NAME, "card_type": "residence_permit"}
    assert call(panel, "POST", "/api/idcard/place", body)[0] == 200
    with pytest.raises(OtherDocument) as declined:
        reader.read_once(2.0)
    assert declined.value.reason == "residence_permit"


def test_a_number_without_a_birth_date_is_a_400_from_the_virtual_card(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    # The panel lets a bad number through (with a warning) for the terminal to refuse, but the
    # virtual card takes its birth date from the number: with none there, it says so.
    status, answer = call(panel, "POST", "/api/idcard/place",
                          {"id_number": "110105194913310021", "name": NAME})
    assert status == 400 and "calendar date" in str(answer["error"])
    assert rig.sam is not None and not rig.sam.card_present


def test_a_reader_fault_fails_the_read_as_a_real_module_does(
    panel: ControlPanel, reader: IdCardReaderDriver
) -> None:
    assert call(panel, "POST", "/api/idcard/place", PERSON)[0] == 200
    assert call(panel, "POST", "/api/idcard/fault", {"mode": "sam_self_test"}) == (
        200, {"ok": True})
    assert devices(panel)["idcard_fault"] == "sam_self_test"
    with pytest.raises(SamFault):
        reader.read_once(1.0)
    assert call(panel, "POST", "/api/idcard/fault", {"mode": "ok"})[0] == 200
    assert devices(panel)["idcard_fault"] == "ok"
    assert reader.read_once(2.0).id_number == ID_NUMBER


def test_an_unplugged_reader_is_gone_until_plugged_back(
    panel: ControlPanel, rig: SimulatorRig, reader: IdCardReaderDriver
) -> None:
    shown = devices(panel)
    assert shown["idcard_path"] == rig.idcard_path and shown["idcard_state"] == "empty"
    assert call(panel, "POST", "/api/idcard/plug", {"plugged": False}) == (
        200, {"ok": True, "plugged": False})
    assert devices(panel)["idcard_state"] == "unplugged"
    assert not Path(rig.idcard_path).exists()
    # A card may still be laid on it, as on a real one; the driver cannot reach it.
    assert call(panel, "POST", "/api/idcard/place", PERSON)[0] == 200
    with pytest.raises(DeviceUnavailable):
        reader.read_once(0.2)
    assert call(panel, "POST", "/api/idcard/plug", {"plugged": True})[0] == 200
    assert devices(panel)["idcard_state"] == "placed"
    assert reader.read_once(2.0).id_number == ID_NUMBER


# --- the e-ID code ---------------------------------------------------------------------------


def test_an_issued_code_resolves_once_at_the_hub_to_its_person(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    status, answer = call(panel, "POST", "/api/ecode/issue",
                          {"id_number": ID_NUMBER.lower(), "name": f" {NAME} "})
    assert status == 200 and set(answer) == {"code"}
    code = str(answer["code"])
    assert code.startswith("EID1:")
    status, person = resolve(rig.hub_url, code)
    assert status == 200
    assert (person["id_number"], person["name"]) == (ID_NUMBER, NAME)
    assert resolve(rig.hub_url, code)[0] == 409  # used


def test_a_codes_life_is_the_one_asked_for(panel: ControlPanel, rig: SimulatorRig) -> None:
    assert rig.hub is not None
    assert call(panel, "POST", "/api/ecode/issue",
                {"id_number": ID_NUMBER, "name": NAME, "ttl_s": 30})[0] == 200
    issued = rig.hub.codes()[-1]
    assert issued.expires_at - issued.issued_at == dt.timedelta(seconds=30)


def test_a_person_the_hub_refuses_is_a_400_with_its_message(panel: ControlPanel) -> None:
    status, answer = call(panel, "POST", "/api/ecode/issue",
                          {"id_number": "110105194912310021", "name": NAME})
    assert status == 400 and str(answer["error"]).startswith("not a valid ID number")
    status, answer = call(panel, "POST", "/api/ecode/issue",
                          {"id_number": ID_NUMBER, "name": "名" * 65})
    assert status == 400 and "name must be 1-64 characters" in str(answer["error"])


def test_scanning_an_issued_code_shows_it_to_the_terminals_scanner(
    panel: ControlPanel, rig: SimulatorRig
) -> None:
    code = str(call(panel, "POST", "/api/ecode/issue",
                    {"id_number": ID_NUMBER, "name": NAME})[1]["code"])
    read: queue.Queue[ScannedCode] = queue.Queue()
    driver = SerialScanner(rig.scanner_path, on_code=read.put, terminator=Terminator.CR,
                           read_timeout_s=0.05, reopen_s=0.05)
    driver.start()
    try:
        assert call(panel, "POST", "/api/scanner/scan", {"code": code})[0] == 200
        scanned = read.get(timeout=3)
    finally:
        driver.stop()
    assert (scanned.kind, scanned.text) == (ScanKind.E_ID, code)


def test_a_stopped_hub_is_a_503_not_a_crash(tmp_path: Path) -> None:
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False))
    rig.hub = SimHub(db_path=tmp_path / "hub.sqlite", port=0)  # made, never started
    panel = ControlPanel(RigBackend(rig), port=0)
    panel.start()
    try:
        status, answer = call(panel, "POST", "/api/ecode/issue",
                              {"id_number": ID_NUMBER, "name": NAME})
        assert status == 503 and "not running" in str(answer["error"])
    finally:
        panel.stop()


# --- real devices instead of the virtual ones ------------------------------------------------


def test_with_a_real_reader_and_hub_the_panel_says_there_is_nothing_virtual_to_drive(
    tmp_path: Path,
) -> None:
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False,
                                  idcard_serial="/dev/ttyUSB7", hub_url="https://hub.example"))
    rig.idcard_path, rig.hub_url = "/dev/ttyUSB7", "https://hub.example"
    panel = ControlPanel(RigBackend(rig), port=0)
    panel.start()
    try:
        for path, body in [
            ("/api/idcard/place", {"id_number": ID_NUMBER, "name": NAME}),
            ("/api/idcard/remove", {}),
            ("/api/idcard/fault", {"mode": "silent"}),
            ("/api/idcard/plug", {"plugged": False}),
        ]:
            status, answer = call(panel, "POST", path, body)
            assert status == 503 and "real one (--idcard-serial)" in str(answer["error"]), path
        status, answer = call(panel, "POST", "/api/ecode/issue",
                              {"id_number": ID_NUMBER, "name": NAME})
        assert status == 503 and "real one (--hub)" in str(answer["error"])
        shown = devices(panel)
        assert shown["idcard_state"] == shown["idcard_fault"] == "external"
        assert shown["idcard_path"] == "/dev/ttyUSB7"
    finally:
        panel.stop()


# --- kiosk-sim --idcard-serial ----------------------------------------------------------------


def test_a_real_reader_is_taken_as_given_and_the_virtual_one_otherwise() -> None:
    args = build_parser().parse_args(["--idcard-serial", "/dev/serial/by-id/usb-SAM-if00"])
    assert args.idcard_serial == "/dev/serial/by-id/usb-SAM-if00"
    assert build_parser().parse_args([]).idcard_serial is None
    help_text = " ".join(build_parser().format_help().split())
    assert "--idcard-serial PATH" in help_text and f"WORKDIR/{IDCARD_LINK_NAME}" in help_text


def test_a_reader_path_with_control_characters_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--idcard-serial", "/dev/tty\nUSB0"])
    assert "not a device path" in capsys.readouterr().err


def test_the_start_banner_prints_the_id_card_reader(tmp_path: Path) -> None:
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False))
    rig.idcard_path = "/dev/ttyUSB7"
    banner = _banner(rig, ControlPanel(RigBackend(rig), port=0), None)
    assert "  ID card reader:  /dev/ttyUSB7  (real)\n" in banner
    rig.sam = VirtualSam(directory=tmp_path, name=IDCARD_LINK_NAME)  # not started: its path only
    rig.idcard_path = rig.sam.path
    banner = _banner(rig, ControlPanel(RigBackend(rig), port=0), None)
    assert f"  ID card reader:  {tmp_path / IDCARD_LINK_NAME}  (virtual: " in banner

"""`kiosk-sim`: the terminal with virtual hardware, the hub, a broker and the control panel."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import Any, cast
from zoneinfo import ZoneInfo

from devices.printer.protocol import PAPER_80MM
from simulator.automation_client import AutomationError
from simulator.display import parse_size
from simulator.escpos_render import EscPosParser, Paper, QrRow
from simulator.fleet_load import main as fleet_main
from simulator.fleet_side import DASHBOARD_PORT, FleetSide
from simulator.hub_records import SPECIAL_PEOPLE
from simulator.panel import (
    BackendConflictError,
    BackendError,
    BackendUnavailableError,
    CameraDocuments,
    ControlPanel,
    DeviceSummary,
    PresetPerson,
    ReceiptEntry,
)
from simulator.pcsc import pcscd_answering
from simulator.rig import (
    CONTROLLER_LINK_NAME,
    DEFAULT_CAMERA_PORT,
    IDCARD_LINK_NAME,
    SCANNER_LINK_NAME,
    RigOptions,
    SimulatorRig,
)
from simulator.vcamera import VirtualCamera
from simulator.vcard import VirtualCard
from simulator.vcontroller import VirtualController
from simulator.vprinter import PrintedReceipt, PrinterStatus
from simulator.vsam import CardType, VirtualSam
from simulator.vscanner import SERIAL_CHUNK, SERIAL_GAP_S, ScannerUnplugged, VirtualScanner
from terminal.config import ConfigError, TerminalSettings, load_config

log = logging.getLogger("kiosk-sim")

# Sample residents for the panel's dropdown: valid ID numbers, made up, and the hub's specials.
SAMPLE_PEOPLE: tuple[PresetPerson, ...] = (
    {"label": "张三 (enrolled)", "id_number": "11010519491231002X", "name": "张三"},
    {"label": "欧阳娜娜 (enrolled)", "id_number": "34052419800101001X", "name": "欧阳娜娜"},
)
DEFAULT_PERSON = SAMPLE_PEOPLE[0]
_QR_LINE = "[QR] "  # how the printer's text rendering shows a printed QR code


def receipt_qr_codes(receipt: PrintedReceipt) -> list[str]:
    """The data of each QR code on a receipt, in print order, as text (a scanner sends text).

    A receipt keeps the bytes that printed it, not its rows, so they are replayed through the
    printer's own parser. Paper that ran out mid-receipt never printed its later codes: only as
    many are kept as the receipt's text shows.
    """
    parser, paper = EscPosParser(), Paper(PAPER_80MM.dots)  # the width decides wrapping only
    for parsed in parser.feed(receipt.raw):
        paper.apply(parsed.command)
    rows, _notes = paper.take()
    printed = sum(line.lstrip().startswith(_QR_LINE) for line in receipt.text.splitlines())
    codes: list[str] = []
    for row in [row for row in rows if isinstance(row, QrRow)][:printed]:
        try:
            codes.append(row.data.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # not text: nothing the panel could send back as the scanner would
    return codes


class RigBackend:
    """The control panel's operations, wired to the rig's virtual devices and the terminal."""

    def __init__(self, rig: SimulatorRig, fleet: FleetSide | None = None) -> None:
        self._rig = rig
        self._fleet = fleet
        # One scan at a time, as one scanner reads: two paced sends would interleave their bytes.
        self._scanning = threading.Lock()
        # Receipts never change once printed; their QR data is worked out once.
        self._receipt_codes: dict[tuple[int, str], list[str]] = {}
        self._frozen = False  # the panel froze the terminal (SIGSTOP) ...
        self._frozen_at = 0  # ... during this boot of it (rig.terminal_restarts)

    def terminal_zone(self) -> ZoneInfo:
        # The config the rig wrote for the terminal, so the panel shows the zone the terminal
        # prints in; without one (no terminal started) the terminal's own default.
        try:
            name = load_config(self._rig.workdir / "terminal.toml").terminal.timezone
        except ConfigError:
            name = TerminalSettings().timezone
        return ZoneInfo(name)

    def _slot(self) -> Any:
        if self._rig.card_slot is None:
            raise BackendError("no virtual card: the simulator uses a real reader (--real-reader)")
        return self._rig.card_slot

    def insert_card(self, kind: str, id_number: str | None, name: str | None) -> None:
        if kind == "other":
            card = VirtualCard.other()
        elif kind == "badge":
            card = VirtualCard.badge()
        else:
            card = VirtualCard.ssse(id_number=id_number or DEFAULT_PERSON["id_number"],
                                    name=name or DEFAULT_PERSON["name"])
        slot = self._slot()
        if slot.card is not None:
            slot.remove()
        slot.insert(card)

    def remove_card(self) -> None:
        self._slot().remove()

    def pull_card_mid_read(self) -> None:
        # Two APDUs into the next card's read: the SELECT has answered, the records have not.
        self._slot().pull_next_card_mid_read(2)

    def cancel_card_pull(self) -> None:
        self._slot().cancel_pull()

    def _printer(self) -> Any:
        if self._rig.printer is None:
            raise BackendError("no virtual printer: the simulator prints on a real one")
        return self._rig.printer

    def set_printer_status(self, status: str) -> None:
        self._printer().status = PrinterStatus(status)

    def paper_out_after(self, lines: int) -> None:
        self._printer().paper_out_after(lines)

    def set_hub_fault(self, mode: str, delay_s: float) -> None:
        if self._rig.hub is None:
            raise BackendError("no simulated hub: the simulator talks to a real one")
        self._rig.hub.set_fault(mode, delay_s)

    def set_broker_up(self, up: bool) -> None:
        if self._rig.broker is None:
            raise BackendError("no local broker: the simulator uses an external one")
        if up:
            self._rig.broker.start()
        else:
            self._rig.broker.stop()

    def restart_pcscd(self) -> None:
        if self._rig.pcscd is None:
            raise BackendError("pcscd was not started by the simulator; restart it yourself")
        self._rig.pcscd.restart()

    def _scanner(self) -> VirtualScanner:
        if self._rig.scanner is None:
            raise BackendUnavailableError(
                "no virtual scanner: the simulator reads a real one (--scanner-serial)")
        return self._rig.scanner

    def scan_code(self, code: str) -> None:
        scanner = self._scanner()
        with self._scanning:
            try:
                # Paced as a real scanner's UART delivers it, so the driver's framing is tried.
                scanner.scan(code, chunk_size=SERIAL_CHUNK, gap_s=SERIAL_GAP_S)
            except ScannerUnplugged:
                raise BackendConflictError(
                    'the virtual scanner is unplugged; plug it in first: POST /api/scanner/plug '
                    '{"plugged": true}') from None

    def set_scanner_plugged(self, plugged: bool) -> None:
        scanner = self._scanner()
        if plugged:
            scanner.replug()
        else:
            scanner.unplug()

    def _camera(self) -> VirtualCamera:
        if self._rig.camera is None:
            raise BackendUnavailableError(
                "no virtual camera: the simulator uses a real one (--camera)")
        return self._rig.camera

    def camera_documents(self) -> CameraDocuments:
        camera = self._camera()
        return {
            "documents": camera.documents(),
            "current": camera.document(),
            "titles": camera.document_titles(),
            "fault": camera.fault(),
        }

    def set_camera_document(self, name: str) -> None:
        self._camera().set_document(name)

    def set_camera_fault(self, mode: str) -> None:
        self._camera().set_fault(mode)

    def _sam(self) -> VirtualSam:
        if self._rig.sam is None:
            if self._rig.idcard_path:
                raise BackendUnavailableError(
                    "no virtual ID card reader: the simulator reads a real one (--idcard-serial); "
                    "lay a real card on it")
            raise BackendUnavailableError("the virtual ID card reader is not running")
        return self._rig.sam

    def place_id_card(self, id_number: str, name: str, *, valid_until: str | None,
                      card_type: str, sex: str | None) -> None:
        if sex is None:
            # A real card's sex agrees with the number's 17th digit (odd: male); a made-up
            # person gets the same agreement.
            digit = id_number[16:17]
            sex = ("1" if int(digit) % 2 else "2") if digit.isdigit() else "0"
        # The panel checked card_type against ID_CARD_TYPES, VirtualSam's own names.
        self._sam().place(id_number, name, sex=sex, valid_until=valid_until,
                          card_type=cast(CardType, card_type))

    def remove_id_card(self) -> None:
        self._sam().remove()

    def set_id_card_fault(self, mode: str) -> None:
        self._sam().fault(mode)

    def set_id_card_plugged(self, plugged: bool) -> None:
        sam = self._sam()
        if plugged:
            sam.replug()
        else:
            sam.unplug()

    def _controller(self) -> VirtualController:
        if self._rig.controller is None:
            if self._rig.controller_path:
                raise BackendUnavailableError(
                    "no virtual co-processor: the simulator talks to a real board "
                    "(--controller-serial); use its switches")
            raise BackendUnavailableError("the virtual co-processor is not running")
        return self._rig.controller

    def set_door(self, open: bool) -> None:
        self._controller().door(open)

    def set_tamper(self, triggered: bool) -> None:
        self._controller().tamper(triggered)

    def set_temperature(self, celsius: float) -> None:
        self._controller().temperature(celsius)

    def freeze_terminal(self, frozen: bool) -> None:
        try:
            self._rig.freeze_terminal(frozen)
        except RuntimeError as e:
            raise BackendUnavailableError(str(e)) from None
        self._frozen = frozen
        self._frozen_at = self._rig.terminal_restarts

    def issue_e_code(self, id_number: str, name: str, ttl_s: float | None) -> str:
        hub = self._rig.hub
        if hub is None:
            raise BackendUnavailableError(
                "no simulated hub: the simulator talks to a real one (--hub), which issues its "
                "codes to residents' phones itself")
        try:
            if ttl_s is None:
                return hub.issue_code(id_number, name)
            return hub.issue_code(id_number, name, ttl_s=ttl_s)
        except RuntimeError as e:  # stopped, or between a stop and a start
            raise BackendUnavailableError(str(e)) from None

    def list_receipts(self) -> list[ReceiptEntry]:
        if self._rig.printer is None:
            return []
        return [
            {"index": r.index, "printed_at": r.printed_at.isoformat(), "text": r.text,
             "qr": self._qr_codes(r)}
            for r in self._rig.printer.receipts()
        ]

    def _qr_codes(self, receipt: PrintedReceipt) -> list[str]:
        key = (receipt.index, receipt.printed_at.isoformat())
        codes = self._receipt_codes.get(key)
        if codes is None:
            codes = self._receipt_codes[key] = receipt_qr_codes(receipt)
        return codes

    def receipt_png(self, index: int) -> bytes:
        for receipt in self._rig.printer.receipts() if self._rig.printer else []:
            if receipt.index == index:
                return Path(receipt.png_path).read_bytes()
        raise LookupError(index)

    def device_summary(self) -> DeviceSummary:
        slot = self._rig.card_slot
        card = slot.card if slot is not None else None
        hub_mode, hub_delay_s = self._rig.hub.fault if self._rig.hub else ("external", 0.0)
        pulled_at = slot.pulled_mid_read_at if slot is not None else None
        summary: DeviceSummary = {
            "card_present": card is not None,
            "card_kind": card.kind if card is not None else None,
            "card_pull_armed": slot.pull_armed if slot is not None else False,
            "card_pulled_at": pulled_at.isoformat() if pulled_at is not None else None,
            "printer_status": str(self._rig.printer.status) if self._rig.printer else "external",
            "hub_mode": hub_mode,
            "hub_delay_s": hub_delay_s,
            "broker_up": self._rig.broker.running if self._rig.broker else True,
            "pcscd_up": pcscd_answering(),
        }
        if self._fleet is not None:
            summary["fleet_url"] = self._fleet.url
            summary["fleet_token"] = self._fleet.token
        self._summarise_scanner(summary)
        self._summarise_idcard(summary)
        self._summarise_controller(summary)
        self._summarise_camera(summary)
        return summary

    def _summarise_scanner(self, summary: DeviceSummary) -> None:
        scanner = self._rig.scanner
        summary["scanner_path"] = self._rig.scanner_path
        if scanner is not None:
            summary["scanner_state"] = "plugged" if scanner.plugged else "unplugged"
        else:
            summary["scanner_state"] = "external" if self._rig.scanner_path else "none"

    def _summarise_idcard(self, summary: DeviceSummary) -> None:
        sam = self._rig.sam
        summary["idcard_path"] = self._rig.idcard_path
        if sam is None:
            outside = "external" if self._rig.idcard_path else "none"
            summary["idcard_state"] = summary["idcard_fault"] = outside
            return
        if not sam.plugged:
            summary["idcard_state"] = "unplugged"
        else:
            summary["idcard_state"] = "placed" if sam.card_present else "empty"
        summary["idcard_fault"] = sam.mode

    def _summarise_controller(self, summary: DeviceSummary) -> None:
        controller = self._rig.controller
        if controller is None:
            summary["controller_state"] = "external" if self._rig.controller_path else "none"
            return
        summary["controller_state"] = "running" if controller.running else "stopped"
        summary["door_open"] = controller.door_open
        summary["tamper"] = controller.tamper_triggered
        summary["temperature_c"] = controller.celsius
        summary["fan_on"] = controller.fan_on
        summary["power_cycles"] = controller.power_cycles
        # A power cycle restarts the terminal, which thaws it.
        summary["terminal_frozen"] = self._frozen and self._rig.terminal_restarts == self._frozen_at

    def _summarise_camera(self, summary: DeviceSummary) -> None:
        camera = self._rig.camera
        summary["camera_url"] = self._rig.camera_url
        if camera is None:
            summary["camera_fault"] = "external" if self._rig.camera_url else "none"
            summary["camera_document"] = None
            return
        summary["camera_fault"] = camera.fault()
        summary["camera_document"] = camera.document()
        summary["camera_documents"] = camera.documents()
        summary["camera_titles"] = camera.document_titles()

    def presets(self) -> list[PresetPerson]:
        specials: list[PresetPerson] = [
            {"label": person.label, "id_number": person.id_number, "name": "李四"}
            for person in SPECIAL_PEOPLE.values()
        ]
        return [*SAMPLE_PEOPLE, *specials]

    def screen(self) -> dict[str, object]:
        return cast(dict[str, object], self._rig.screen())

    def screenshot(self) -> bytes:
        status, body = self._rig.api("GET", "/screenshot")
        if status != 200:
            raise BackendError(f"terminal screenshot failed ({status})")
        return body

    def touch(self, x: int, y: int) -> None:
        status, body = self._rig.api("POST", "/touch", {"x": x, "y": y})
        if status != 200:
            raise BackendError(f"touch failed ({status}): {body[:200].decode(errors='replace')}")

    def tap(self, target: str) -> None:
        self._rig.tap(target)


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    if "://" in value:
        parsed = urllib.parse.urlsplit(value)
        host, port = parsed.hostname or "", parsed.port or default_port
    else:
        host, _, port_text = value.rpartition(":") if ":" in value else (value, "", "")
        port = int(port_text) if port_text else default_port
    if not host:
        raise argparse.ArgumentTypeError(f"no host in {value!r}")
    return host, port


def _serial_port(value: str) -> str:
    """A real serial device's tty (the scanner, the ID card reader): any path a serial port can
    have; it need not exist yet (plugged in later, the terminal's driver picks it up)."""
    if not value or any(not char.isprintable() for char in value):
        raise argparse.ArgumentTypeError(f"not a device path: {value!r}")
    return value


def _camera_source(value: str) -> str:
    """A real camera: its MJPEG base URL http://HOST:PORT[/PREFIX], or a UVC /dev/videoN."""
    if value.startswith("/dev/") and value.isprintable():
        return value
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a URL ({e}): {value!r}") from None
    # Plain http: the terminal's MJPEG client speaks nothing else (devices.camera.mjpeg).
    if (parts.scheme != "http" or not parts.hostname or parts.username is not None
            or parts.port == 0 or parts.query or parts.fragment
            or any(c.isspace() for c in value)):
        raise argparse.ArgumentTypeError(
            f"the camera must be http://HOST:PORT[/PREFIX] (serving /stream.mjpg and "
            f"/snapshot.jpg) or /dev/videoN, not {value!r}")
    return value.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    # Every option says what it does and its default, in words where the default is "start the
    # virtual one" rather than a value argparse could print.
    parser = argparse.ArgumentParser(
        prog="kiosk-sim",
        description="Run the terminal with virtual hardware: a social security card on pcscd's "
        "vpcd reader, an ESC/POS printer on TCP, a QR/barcode scanner on a pty, a document "
        "camera over MJPEG/HTTP, the simulated hub, mosquitto, and a control panel. Any virtual "
        "device can be replaced by a real endpoint.",
        epilog="Only one pcscd can run on a machine: stop kiosk-sim before running the card or "
        "end-to-end tests. `kiosk-sim fleet --help`: a virtual fleet of lightweight terminals "
        "for the fleet side, instead.",
    )
    parser.add_argument("--workdir", type=Path, default=Path("var/sim"), metavar="DIR",
                        help="where receipts, the hub database, the terminal's config, state "
                        "and log go (default: %(default)s)")
    parser.add_argument("--size", type=parse_size, default=(1920, 1080), metavar="WIDTHxHEIGHT",
                        help="terminal window size, e.g. 1920x1080, 1080x1920, 800x480 "
                        "(default: 1920x1080)")
    parser.add_argument("--language", choices=("zh_CN", "en"), default="zh_CN",
                        help="the language every resident starts in (default: %(default)s)")
    parser.add_argument("--printer", metavar="HOST:PORT",
                        help="print on a real network printer (ESC/POS over TCP; PORT defaults "
                        "to 9100) instead of the virtual one (default: the virtual printer on "
                        "127.0.0.1:9100, or a free port when 9100 is taken)")
    parser.add_argument("--broker", metavar="URL",
                        help="use an external MQTT broker, mqtt://HOST:PORT or HOST:PORT (PORT "
                        "defaults to 1883) (default: a mosquitto started on a free port; its "
                        "URL is printed at start as 'Broker: mqtt://HOST:PORT')")
    parser.add_argument("--hub", metavar="URL",
                        help="use a real service hub at this base URL, e.g. "
                        "https://hub.example:8443 (default: the simulated hub on "
                        "http://127.0.0.1:8702, or a free port when 8702 is taken)")
    parser.add_argument("--scanner-serial", type=_serial_port, metavar="PATH",
                        help="read codes from a real QR/barcode scanner on this serial port, best "
                        "a /dev/serial/by-id/... link; any suffix (CR, LF or CR LF) is taken "
                        "(default: a virtual scanner on a pty, its port linked at "
                        f"WORKDIR/{SCANNER_LINK_NAME}, codes scanned from the control panel)")
    parser.add_argument("--idcard-serial", type=_serial_port, metavar="PATH",
                        help="read resident ID cards with a real SAM_A reader module on this "
                        "serial port, best a /dev/serial/by-id/... link (default: a virtual "
                        f"module on a pty, its port linked at WORKDIR/{IDCARD_LINK_NAME}, cards "
                        "laid on it from the control panel)")
    parser.add_argument("--controller-serial", type=_serial_port, metavar="PATH",
                        help="talk to a real co-processor board (door, temperature, fan, "
                        "watchdog) on this serial port (default: the project's own firmware "
                        "running in a virtual board on a pty, its port linked at "
                        f"WORKDIR/{CONTROLLER_LINK_NAME}, driven from the control panel)")
    parser.add_argument("--camera", type=_camera_source, metavar="URL",
                        help="use a real document camera: an MJPEG stream's base URL "
                        "http://HOST:PORT (serving /stream.mjpg and /snapshot.jpg), or a UVC "
                        "camera's /dev/videoN (default: the virtual camera on "
                        f"http://127.0.0.1:{DEFAULT_CAMERA_PORT}, or a free port when "
                        f"{DEFAULT_CAMERA_PORT} is taken, showing sample documents chosen "
                        "from the control panel)")
    parser.add_argument("--real-reader", action="store_true",
                        help="no virtual card: whatever PC/SC reader is present holds the card "
                        "(default: a virtual card slot on pcscd's vpcd reader 'Virtual PCD 00 "
                        "00', driven from the control panel)")
    parser.add_argument("--xvfb", action="store_true",
                        help="run the terminal under Xvfb even when a display is present "
                        "(default: on the display in $DISPLAY, under Xvfb only when there is "
                        "none)")
    parser.add_argument("--panel-port", type=int, default=8700, metavar="PORT",
                        help="port of the control panel, http://127.0.0.1:PORT/; kiosk-sim "
                        "stops with an error if it is taken (default: %(default)s)")
    parser.add_argument("--automation-port", type=int, default=8701, metavar="PORT",
                        help="port of the terminal's automation API on 127.0.0.1 (GET /screen, "
                        "POST /tap, for tools and tests), or a free port when it is taken "
                        "(default: %(default)s)")
    parser.add_argument("--terminal-id", default="T-SIM-0001", metavar="ID",
                        help="the terminal's id: 1-64 of A-Z a-z 0-9 . _ : -; it names the "
                        "terminal's MQTT topics and is printed on receipts "
                        "(default: %(default)s)")
    parser.add_argument("--heartbeat", type=int, default=30, metavar="SECONDS",
                        help="seconds between the terminal's MQTT heartbeats, 1 to 3600 "
                        "(default: %(default)s)")
    parser.add_argument("--fleet-port", type=int, default=DASHBOARD_PORT, metavar="PORT",
                        help="port of the fleet dashboard, http://127.0.0.1:PORT/ (default: "
                        "%(default)s)")
    parser.add_argument("--virtual-terminals", type=int, default=5, metavar="N",
                        help="virtual terminals beside the real one, so the fleet dashboard is "
                        "not empty (default: %(default)s)")
    parser.add_argument("--no-fleet", action="store_true",
                        help="start no fleet monitor, dashboard or virtual terminals (default: "
                        "they start, the store and the dev token under WORKDIR/fleet/)")
    parser.add_argument("--card", metavar="ID_NUMBER[:NAME]",
                        help="insert a social security card with this holder at start; NAME "
                        "defaults to 张三 (default: the slot starts empty)")
    return parser


def _banner(rig: SimulatorRig, panel: ControlPanel, fleet: FleetSide | None) -> str:
    """Where everything is, printed once the simulator is up."""
    scanner = "virtual: scan from the control panel" if rig.scanner is not None else "real"
    camera = "virtual: /stream.mjpg, /snapshot.jpg" if rig.camera is not None else "real"
    idcard = "virtual: lay a card from the control panel" if rig.sam is not None else "real"
    board = ("virtual: the real firmware, door and heat from the control panel"
             if rig.controller is not None else "real")
    lines = [
        f"Control panel:   {panel.url}",
        f"Automation API:  {rig.automation_url}  (GET /screen, POST /tap)",
        f"Printer:         {rig.printer_address[0]}:{rig.printer_address[1]}",
        f"Hub:             {rig.hub_url}",
        f"Broker:          mqtt://{rig.broker_address[0]}:{rig.broker_address[1]}",
        f"Scanner:         {rig.scanner_path}  ({scanner})",
        f"ID card reader:  {rig.idcard_path}  ({idcard})",
        f"Co-processor:    {rig.controller_path}  ({board})",
        f"Camera:          {rig.camera_url}  ({camera})",
        f"Receipts:        {rig.workdir / 'receipts'}",
        f"Terminal log:    {rig.workdir / 'terminal.log'}",
    ]
    if fleet is not None:
        lines.append(f"Fleet dashboard: {fleet.url}  (user dev, password: the token in "
                     f"{fleet.token_path})")
    return "".join(f"\n  {line}" for line in lines) + "\n\n  Ctrl-C stops everything.\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fleet"]:
        # `kiosk-sim fleet ...`: a virtual fleet for the fleet side, no terminal or hardware.
        return fleet_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = RigOptions(
        workdir=args.workdir,
        terminal_id=args.terminal_id,
        size=args.size,
        language=args.language,
        printer=_host_port(args.printer, 9100) if args.printer else None,
        broker=_host_port(args.broker, 1883) if args.broker else None,
        hub_url=args.hub,
        real_reader=args.real_reader,
        scanner_serial=args.scanner_serial,
        idcard_serial=args.idcard_serial,
        controller_serial=args.controller_serial,
        camera=args.camera,
        automation_port=args.automation_port,
        heartbeat_interval_s=args.heartbeat,
        force_xvfb=args.xvfb,
    )
    if args.scanner_serial and not os.path.exists(args.scanner_serial):
        print(f"kiosk-sim: {args.scanner_serial} does not exist (yet); the terminal reports "
              "the scanner absent until it appears", file=sys.stderr)
    if args.idcard_serial and not os.path.exists(args.idcard_serial):
        print(f"kiosk-sim: {args.idcard_serial} does not exist (yet); the terminal reports "
              "the ID card reader absent until it appears", file=sys.stderr)
    if args.controller_serial and not os.path.exists(args.controller_serial):
        print(f"kiosk-sim: {args.controller_serial} does not exist (yet); the terminal reports "
              "the co-processor absent until it appears", file=sys.stderr)
    rig = SimulatorRig(options)
    stop = threading.Event()
    started = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        # While the rig is starting, interrupt the start itself (the finally below tidies up
        # whatever was started, pcscd included); once it is up, let the main loop end calmly.
        if not started.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    panel: ControlPanel | None = None
    fleet: FleetSide | None = None
    log.info("starting the simulator in %s", rig.workdir)
    try:
        try:
            rig.start()
            if not args.no_fleet:
                fleet = FleetSide(rig.workdir, rig.broker_address, port=args.fleet_port,
                                  virtual_terminals=args.virtual_terminals)
                fleet.start()
            panel = ControlPanel(RigBackend(rig, fleet), port=args.panel_port)
            panel.start()
        except (AutomationError, OSError, RuntimeError) as e:
            print(f"kiosk-sim: {e}", file=sys.stderr)
            return 1
        started.set()
        if args.card and rig.card_slot is not None:
            id_number, _, name = args.card.partition(":")
            rig.card_slot.insert(VirtualCard.ssse(id_number=id_number, name=name or "张三"))
        print(_banner(rig, panel, fleet), flush=True)
        while not stop.wait(1.0):
            if rig.terminal is not None and rig.terminal.poll() is not None:
                print(f"kiosk-sim: the terminal exited with {rig.terminal.returncode}; "
                      f"see {rig.workdir / 'terminal.log'}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print("kiosk-sim: interrupted while starting; stopping what was started", file=sys.stderr)
        return 130
    finally:
        if panel is not None:
            panel.stop()
        if fleet is not None:
            fleet.stop()
        rig.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

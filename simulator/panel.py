"""Simulator control panel: a local web page with the live terminal screen and device controls."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import ipaddress
import json
import logging
import math
import re
import threading
import unicodedata
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict, TypeVar, cast
from zoneinfo import ZoneInfo

import qrcode
import qrcode.exceptions

from flows.identity import is_valid_id_number, normalise_id_number
from flows.receipt import PRINTED_TIME_FORMAT
from simulator.json_body import BodyRefused, parse_json_object, read_body

_log = logging.getLogger(__name__)

PAGE_PATH = Path(__file__).with_name("panel") / "index.html"

CARD_KINDS = ("ssse", "other", "badge")
# The values of simulator.vprinter.PrinterStatus and simulator.hub.FAULT_MODES; kept here as
# plain strings so the page's contract does not move when a device module is refactored.
PRINTER_STATUSES = (
    "ok",
    "near_end",
    "paper_out",
    "cover_open",
    "silent",
    "cutter_error",
    "garbage",
)
HUB_MODES = ("ok", "slow", "down", "error")
# simulator.vcamera.CameraFault's values, plain strings for the same reason.
CAMERA_FAULTS = ("ok", "absent", "black", "stall")
# simulator.vsam's card types (CARD_TYPE_FLAGS) and fault modes (FAULT_MODES), likewise.
ID_CARD_TYPES = (
    "citizen",
    "residence_permit",
    "foreign_permanent_resident",
    "foreign_permanent_resident_2023",
    "unknown",
)
ID_CARD_FAULTS = (
    "ok",
    "no_card",
    "sam_self_test",
    "checksum",
    "unknown_card_type",
    "mid_frame",
    "silent",
    "garbage",
)
# GB/T 2261.1, as the ID card's sex field holds it: 1 male, 2 female, 0 unknown, 9 unstated.
ID_CARD_SEXES = ("1", "2", "0", "9")
ID_CARD_LONG_TERM = "长期"  # devices.idcard.protocol.LONG_TERM: a card without expiry

# Limits on what the page may ask for. They are generous; they exist so a typo (an extra zero)
# is refused with a message instead of wedging a virtual device for an afternoon.
MAX_PAPER_LINES = 100_000
MAX_HUB_DELAY_S = 300.0
MAX_TOUCH_COORDINATE = 20_000
MAX_TARGET_ID_CHARS = 200
# Above the scanner driver's own limit (devices.scanner.protocol.DEFAULT_MAX_LENGTH, 4096 bytes),
# so a code too long for it can still be sent to see the terminal drop it; below what the scanner
# sends, paced as a real one at 9600 baud (about 1 ms a byte), within the backend's timeout.
MAX_SCAN_BYTES = 6144
MAX_DOCUMENT_NAME_CHARS = 100
MAX_BODY_BYTES = 64 * 1024
MAX_CALLS_IN_FLIGHT = 16
# The SSSE card's name field (EF06 tag 09) is 30 bytes of GBK: reference/devices.md.
MAX_NAME_GBK_BYTES = 30
# The ID card's name field is 15 UCS-2 characters (reference/devices.md 2.3).
MAX_ID_CARD_NAME_CHARS = 15
# simulator.hub_ecodes.MAX_CODE_TTL_S: the hub refuses longer, and a test never needs more.
MAX_E_CODE_TTL_S = 24 * 3600.0
# An e-ID code is under 70 characters; the QR route draws anything up to this for the page.
MAX_QR_BYTES = 1024
_ID_NUMBER_SHAPE = re.compile(r"[0-9]{17}[0-9X]")  # ASCII digits only, and used with fullmatch
# YYYY-MM-DD or YYYYMMDD, ASCII digits only, used with fullmatch.
_DATE_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})|([0-9]{4})([0-9]{2})([0-9]{2})")
_RECEIPT_PNG_PATH = re.compile(r"^/api/receipts/([^/]+)\.png$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_SHOWN_VALUE_CHARS = 60

_T = TypeVar("_T")


class ReceiptEntry(TypedDict):
    """One printed receipt as the page lists it."""

    index: int
    # ISO 8601 with its UTC offset. The panel answers it in the terminal's zone, and adds
    # printed_at_local ("2025-03-01 09:30:00 CST"), the time as the receipt itself prints it.
    printed_at: str
    printed_at_local: NotRequired[str]
    text: str
    # The page can only fetch from the panel, so the panel always replaces this with its own
    # route (/api/receipts/<index>.png); a backend may leave it out.
    png_url: NotRequired[str]
    # The data of each QR code on the receipt, in print order, for "scan this receipt's QR".
    qr: NotRequired[list[str]]


class CameraDocuments(TypedDict):
    """What the virtual camera can show (GET /api/camera/documents)."""

    documents: list[str]  # the sample documents' names, ``empty`` (the bare platen) among them
    current: str  # the one on the platen now
    titles: dict[str, str]  # each name as people read it (申请表, 户口簿, ...)
    fault: str  # one of CAMERA_FAULTS


class PresetPerson(TypedDict):
    """A sample person for the card dropdown (the hub's special people among them)."""

    label: str
    id_number: str
    name: str


class DeviceSummary(TypedDict):
    """The status line: one glance at every virtual device."""

    card_present: bool
    card_kind: NotRequired[str | None]  # "ssse" / "other" / "badge" while a card is in the slot
    printer_status: str  # one of PRINTER_STATUSES
    hub_mode: str  # one of HUB_MODES
    hub_delay_s: NotRequired[float]
    broker_up: bool
    pcscd_up: bool
    # The "pull card during the next read" fault: waiting for the next card (or in its read),
    # and when it last pulled a card (ISO 8601; the panel adds card_pulled_at_local).
    card_pull_armed: NotRequired[bool]
    card_pulled_at: NotRequired[str | None]
    card_pulled_at_local: NotRequired[str | None]
    # The fleet dashboard beside the terminal, and the development operator's token (DESIGN 13).
    fleet_url: NotRequired[str]
    fleet_token: NotRequired[str]
    # The scanner: "plugged" / "unplugged" (the virtual one), "external" (a real one), and the
    # tty the terminal reads.
    scanner_state: NotRequired[str]
    scanner_path: NotRequired[str]
    # The document camera: its URL, and for the virtual one what it shows and its fault; a real
    # one's fault is "external" and its document None.
    camera_url: NotRequired[str]
    camera_document: NotRequired[str | None]
    camera_fault: NotRequired[str]
    camera_documents: NotRequired[list[str]]
    camera_titles: NotRequired[dict[str, str]]
    # The ID card's SAM reader: "placed" / "empty" (a card on the virtual one or not),
    # "unplugged", "external" (a real one), "none"; its fault (one of ID_CARD_FAULTS, or
    # "external" / "none") and the tty the terminal reads.
    idcard_state: NotRequired[str]
    idcard_fault: NotRequired[str]
    idcard_path: NotRequired[str]
    # The co-processor: "running" / "external" / "none", what its sensors read, how often its
    # watchdog cut the terminal's power, and whether the terminal is frozen (to watch it fire).
    controller_state: NotRequired[str]
    door_open: NotRequired[bool]
    tamper: NotRequired[bool]
    temperature_c: NotRequired[float]
    fan_on: NotRequired[bool]
    power_cycles: NotRequired[int]
    terminal_frozen: NotRequired[bool]


class BackendError(Exception):
    """A virtual device refused or failed an operation; the panel answers 502 with the message."""


class BackendConflictError(BackendError):
    """The device's present state forbids the operation (a scan while the scanner is unplugged);
    the panel answers 409 with the message, which should say how to get out of that state."""


class BackendUnavailableError(BackendError):
    """A device, the broker or the terminal is not running or not reachable; the panel answers 503.

    OSError (connection refused, socket timeout) raised by a backend method is treated the same way.
    """


class PanelBackend(Protocol):
    """What the control panel needs from the simulator; simulator/cli.py wires it to the devices.

    Inputs arrive validated (see the module constants). A method signals failure by raising
    BackendUnavailableError or OSError (-> HTTP 503), BackendConflictError (-> HTTP 409),
    BackendError or anything else (-> HTTP 502); receipt_png raises LookupError for an unknown
    index (-> 404). A method that does not return within the panel's backend timeout gets a 504,
    so proxy calls should use their own ~3 s timeout.
    """

    def insert_card(self, kind: str, id_number: str | None, name: str | None) -> None:
        """Put a card in the slot: kind "ssse", "other" or "badge" (the simulator's listed staff
        badge); None means the backend's default."""

    def remove_card(self) -> None:
        """Take the card out of the slot."""

    def pull_card_mid_read(self) -> None:
        """Arm the fault: the next card inserted is pulled in the middle of the terminal's read."""

    def cancel_card_pull(self) -> None:
        """Disarm that fault if it has not fired yet."""

    def terminal_zone(self) -> ZoneInfo:
        """The terminal's time zone (config [terminal] timezone): the panel shows times in it."""

    def set_printer_status(self, status: str) -> None:
        """Set the printer's DLE EOT answer: one of PRINTER_STATUSES."""

    def paper_out_after(self, lines: int) -> None:
        """Make the paper run out after this many more printed lines."""

    def set_hub_fault(self, mode: str, delay_s: float) -> None:
        """Hub answers normally, slowly (after delay_s), not at all, or with errors (HUB_MODES)."""

    def set_broker_up(self, up: bool) -> None:
        """Start or stop the simulator's mosquitto."""

    def restart_pcscd(self) -> None:
        """Restart pcscd, as a field update or a crash would."""

    def scan_code(self, code: str) -> None:
        """The virtual scanner reads ``code``: its text and terminator on the serial line."""

    def set_scanner_plugged(self, plugged: bool) -> None:
        """Plug the virtual scanner in or pull its cable."""

    def camera_documents(self) -> CameraDocuments:
        """The virtual camera's sample documents, the one it shows and its fault."""

    def set_camera_document(self, name: str) -> None:
        """Lay that sample document on the platen: one of camera_documents()'s names."""

    def set_camera_fault(self, mode: str) -> None:
        """Make the camera fail as a real one does, or work again: one of CAMERA_FAULTS."""

    def place_id_card(
        self,
        id_number: str,
        name: str,
        *,
        valid_until: str | None,
        card_type: str,
        sex: str | None,
    ) -> None:
        """Lay a resident ID card on the SAM reader, replacing any there. ``valid_until`` is
        YYYYMMDD or ID_CARD_LONG_TERM, None for the backend's default (years ahead); ``sex`` one
        of ID_CARD_SEXES, None for the one the ID number says. ValueError (-> 400) for what the
        virtual card cannot hold."""

    def remove_id_card(self) -> None:
        """Take the ID card off the reader."""

    def set_id_card_fault(self, mode: str) -> None:
        """Make the SAM reader fail as a real one does, or work again: one of ID_CARD_FAULTS."""

    def set_id_card_plugged(self, plugged: bool) -> None:
        """Plug the virtual SAM reader in or pull its cable."""

    def set_door(self, open: bool) -> None:
        """The co-processor's door switch."""

    def set_tamper(self, triggered: bool) -> None:
        """The co-processor's tamper switch."""

    def set_temperature(self, celsius: float) -> None:
        """What the co-processor's temperature sensor reads (-40..125 °C, the RP2040's range)."""

    def freeze_terminal(self, frozen: bool) -> None:
        """Freeze (SIGSTOP) or thaw the terminal's process, to watch the co-processor's watchdog
        power-cycle a terminal that stopped kicking it."""

    def issue_e_code(self, id_number: str, name: str, ttl_s: float | None) -> str:
        """The hub issues an e-ID code for this person, as their phone would show it; ``ttl_s``
        None for the hub's default life. ValueError (-> 400, its message) for a person or a
        life the hub refuses."""

    def list_receipts(self) -> list[ReceiptEntry]:
        """Every receipt printed so far, oldest first, with the data of their QR codes."""

    def receipt_png(self, index: int) -> bytes:
        """The rendered receipt as PNG bytes; LookupError for an unknown index."""

    def device_summary(self) -> DeviceSummary:
        """The state of every virtual device, for the status line."""

    def presets(self) -> list[PresetPerson]:
        """Sample people for the card dropdown, including the hub's special people."""

    def screen(self) -> dict[str, object]:
        """The terminal's GET /screen description (automation API), passed through unchanged."""

    def screenshot(self) -> bytes:
        """The terminal's GET /screenshot PNG (automation API)."""

    def touch(self, x: int, y: int) -> None:
        """A tap at window pixel (x, y), origin top-left (automation API POST /touch)."""

    def tap(self, target: str) -> None:
        """A tap on a named target (automation API POST /tap)."""


@dataclass(frozen=True)
class _Reply:
    status: HTTPStatus
    body: bytes
    content_type: str = "application/json; charset=utf-8"


class _HttpError(Exception):
    """Ends a request early with a JSON {"error": message}."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_reply(status: HTTPStatus, payload: object) -> _Reply:
    # default=str: a backend's datetime (printed_at) must not turn a listing into a 500.
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    return _Reply(status, body)


def _ok(**extra: object) -> _Reply:
    return _json_reply(HTTPStatus.OK, {"ok": True, **extra})


def _bad(message: str) -> _HttpError:
    return _HttpError(HTTPStatus.BAD_REQUEST, message)


def _describe(exc: BaseException) -> str:
    # urllib wraps the useful part ("[Errno 111] Connection refused") in .reason.
    reason = getattr(exc, "reason", None)
    text = str(reason) if reason else str(exc)
    return text or type(exc).__name__


def _refusal(exc: urllib.error.HTTPError) -> str:
    """The terminal's own {"error": ...} message when the body has one, else the reason phrase."""
    try:
        message = json.loads(exc.read(4096)).get("error")
    except Exception:  # no body, not JSON, not an object: the reason phrase will do
        message = None
    return message if isinstance(message, str) and message else _describe(exc)


def _parse_object(raw: bytes) -> dict[str, object]:
    """The request body as a JSON object; an empty body counts as {}."""
    if not raw.strip():
        return {}
    try:
        return parse_json_object(raw, max_bytes=MAX_BODY_BYTES)
    except BodyRefused as refusal:
        raise _HttpError(refusal.status, refusal.message) from None


def _check_fields(
    body: dict[str, object], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> None:
    # An unknown field is almost always a typo ("delay" for "delay_s"); refusing it says so.
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise _bad(f"unknown field(s): {', '.join(unknown)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise _bad(f"missing field(s): {', '.join(missing)}")


def _choice(body: dict[str, object], field: str, allowed: tuple[str, ...]) -> str:
    value = body.get(field)
    if not isinstance(value, str) or value not in allowed:
        got = json.dumps(value, ensure_ascii=False)
        # A 60 KB value quoted back in full would bury the message it is part of.
        if len(got) > _SHOWN_VALUE_CHARS:
            got = got[:_SHOWN_VALUE_CHARS] + "…"
        raise _bad(f"{field} must be one of {', '.join(allowed)}; got {got}")
    return value


def _int_in_range(body: dict[str, object], field: str, low: int, high: int) -> int:
    value = body.get(field)
    # bool is an int in Python, and JSON true must not become 1 line of paper.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{field} must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad(f"{field} must be a whole number; got {value}")
        value = int(value)
    if value < low:
        raise _bad(
            f"{field} must not be negative" if low == 0 else f"{field} must be at least {low}"
        )
    if value > high:
        raise _bad(f"{field} must be at most {high}")
    return value


def _float_in_range(body: dict[str, object], field: str, low: float, high: float) -> float:
    value = body.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{field} must be a number")
    number = float(value)
    # 1e999 parses to inf even with NaN/Infinity refused.
    if not math.isfinite(number):
        raise _bad(f"{field} must be a finite number")
    if number < low:
        raise _bad(
            f"{field} must not be negative" if low == 0 else f"{field} must be at least {low}"
        )
    if number > high:
        raise _bad(f"{field} must be at most {high:g}")
    return number


def _optional_text(body: dict[str, object], field: str) -> str | None:
    """A text field where missing, null and blank all mean "let the backend choose"."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{field} must be a string or null")
    value = value.strip()
    return value or None


def _validate_id_number(raw: str) -> tuple[str, str | None]:
    """The normalised number and a warning when it would fail the terminal's own check.

    A number with a wrong check digit or birth date is allowed on purpose: a card carrying one is
    exactly what a tester needs to see the terminal refuse it. The shape is not negotiable, because
    the card's 20-byte field cannot carry anything else in a way the terminal would read.
    """
    number = normalise_id_number(raw)
    if not _ID_NUMBER_SHAPE.fullmatch(number):
        raise _bad("id_number must be 18 characters: 17 digits and a digit or X")
    if not is_valid_id_number(number):
        return (
            number,
            "id_number fails the check digit or birth date rule; the terminal should refuse it",
        )
    return number, None


def _validate_name(name: str) -> str:
    try:
        encoded = name.encode("gbk")
    except UnicodeEncodeError:
        raise _bad("name must be writable in GBK, as the card stores it") from None
    if len(encoded) > MAX_NAME_GBK_BYTES:
        raise _bad(
            f"name is too long for the card: at most {MAX_NAME_GBK_BYTES} GBK bytes "
            "(15 Chinese characters)"
        )
    return name


def _validate_id_card_name(raw: object) -> str:
    """The name as the ID card's 15 UCS-2 characters can hold it."""
    if not isinstance(raw, str) or not raw.strip():
        raise _bad("name must be a non-empty string")
    name = raw.strip()
    # UCS-2 has no surrogate pairs: a character beyond U+FFFF (a rare 𠮷, an emoji) cannot be
    # written on the card at all, so the terminal could never be shown one.
    if any(ord(char) > 0xFFFF or 0xD800 <= ord(char) <= 0xDFFF for char in name):
        raise _bad("name must be writable in UCS-2, as the ID card stores it (no character "
                   "beyond U+FFFF)")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise _bad("name must not hold control characters")
    if len(name) > MAX_ID_CARD_NAME_CHARS:
        raise _bad(f"name is too long for the ID card: at most {MAX_ID_CARD_NAME_CHARS} "
                   "characters")
    return name


def _validate_valid_until(raw: object, today: dt.date) -> tuple[str | None, str | None]:
    """The card's valid-until as YYYYMMDD or 长期 (None: the backend's default), and a warning
    when it has passed."""
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        raise _bad(f"valid_until must be YYYY-MM-DD, YYYYMMDD or {ID_CARD_LONG_TERM}, or null")
    text = raw.strip()
    if not text:
        return None, None
    if text == ID_CARD_LONG_TERM:
        return text, None
    # Matched by hand: date.fromisoformat takes week dates and more that no card prints.
    shape = _DATE_SHAPE.fullmatch(text)
    if shape is None:
        raise _bad(f"valid_until must be YYYY-MM-DD, YYYYMMDD or {ID_CARD_LONG_TERM}")
    try:
        day = dt.date(*(int(part) for part in shape.groups() if part is not None))
    except ValueError:
        raise _bad("valid_until is not a calendar date") from None
    if day < today:
        # Allowed on purpose, as a wrong check digit is: a tester needs an expired card to see
        # the terminal decline it.
        return f"{day:%Y%m%d}", (
            f"the card expired on {day.isoformat()}; the terminal should decline it"
        )
    return f"{day:%Y%m%d}", None


def qr_png(data: str) -> bytes:
    """``data`` as a QR code PNG, drawn as a phone's screen would show it for a scanner."""
    image = qrcode.make(data, box_size=6, border=4)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def zone_label(local: dt.datetime) -> str:
    """The zone as people read it ("CST", "CET"); one without letters as its offset ("+08:00")."""
    name = local.tzname() or ""
    if name.isascii() and name.isalpha():
        return name
    offset = local.strftime("%z")  # "+0800"
    return f"{offset[:3]}:{offset[3:5]}"


def local_time(when: dt.datetime, zone: ZoneInfo) -> str:
    """``2026-12-06 12:03:05 CST``: the format the receipt prints, with the zone said."""
    local = when.astimezone(zone)
    return f"{local.strftime(PRINTED_TIME_FORMAT)} {zone_label(local)}"


def _stamp_in_zone(stamp: object, zone: ZoneInfo) -> tuple[str, str] | None:
    """An ISO 8601 stamp as (ISO in ``zone``, local_time); None for anything else.

    A stamp without an offset is left alone: whether it meant UTC or local time is unknown, and
    showing it with a zone would be a guess presented as fact.
    """
    if not isinstance(stamp, str):
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(zone).isoformat(), local_time(when, zone)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, without decoding the picture."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _is_loopback_name(name: str) -> bool:
    """Whether a Host header's name is this machine: not merely a name that starts with "127."."""
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _loopback_address(host: str) -> str:
    """The IPv4 address to bind, refusing anything a neighbour on the network could reach."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"control panel host must be a loopback address, not {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"control panel host must be an IPv4 loopback address, not {host!r}")
    return host


class ControlPanel:
    """Serves the control page and its JSON API on a loopback address, backed by a PanelBackend."""

    def __init__(
        self,
        backend: PanelBackend,
        *,
        host: str = "127.0.0.1",
        port: int = 8700,
        backend_timeout_s: float = 10.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, not {port}")
        if not backend_timeout_s > 0:
            raise ValueError("backend_timeout_s must be positive")
        # A missing page is a packaging mistake; say so at start-up, not on the first visit.
        if not PAGE_PATH.is_file():
            raise FileNotFoundError(f"control panel page is missing: {PAGE_PATH}")
        self._backend = backend
        # Asked once: the terminal's config does not change while the simulator runs.
        self._zone = backend.terminal_zone()
        self._host = _loopback_address(host)
        self._port = port
        self._backend_timeout_s = backend_timeout_s
        self._server: _PanelServer | None = None
        self._thread: threading.Thread | None = None
        # Calls left running by a timeout are bounded, so a device that hangs forever fills
        # this and gets 503s instead of piling up a thread per poll of the page.
        self._in_flight = threading.BoundedSemaphore(MAX_CALLS_IN_FLIGHT)
        self._lock = threading.Lock()
        # The size of the last screenshot served, so a touch outside the picture is refused here
        # rather than landing somewhere odd on a screen of another size.
        self._screen_size: tuple[int, int] | None = None

    @property
    def url(self) -> str:
        """Where the page is served; with port 0 the real port is known once started."""
        return f"http://{self._host}:{self._port}/"

    def start(self) -> None:
        """Bind and serve in a background thread; returns once the socket is listening."""
        with self._lock:
            if self._server is not None:
                return
            server = _PanelServer((self._host, self._port), self)
            self._port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name="control-panel",
                daemon=True,
            )
            self._server = server
            self._thread.start()
        _log.info("control panel at %s", self.url)

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    # -- request handling (called on the server's request threads) --------------------------------

    def handle(self, method: str, path: str, body: bytes) -> _Reply:
        """Answer one request; never raises, so no traceback ever reaches the page."""
        try:
            return self._route(method, path, body)
        except _HttpError as exc:
            return _json_reply(exc.status, {"error": exc.message})
        except Exception:
            _log.exception("control panel: unexpected error on %s %s", method, path)
            return _json_reply(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error in the control panel"}
            )

    def _route(self, method: str, path: str, raw_body: bytes) -> _Reply:
        path, _, query = path.partition("?")
        get_routes: dict[str, Callable[[], _Reply]] = {
            "/": self._page,
            "/index.html": self._page,
            "/api/state": self._state,
            "/api/presets": self._presets,
            "/api/receipts": self._receipts,
            "/api/screen.png": self._screen_png,
            "/api/camera/documents": self._camera_documents,
            "/api/qr.png": lambda: self._qr_png(query),
        }
        post_routes: dict[str, Callable[[dict[str, object]], _Reply]] = {
            "/api/card/insert": self._card_insert,
            "/api/card/remove": self._card_remove,
            "/api/card/pull-mid-read": self._card_pull_mid_read,
            "/api/printer/status": self._printer_status,
            "/api/printer/paper-out-after": self._printer_paper_out_after,
            "/api/hub/fault": self._hub_fault,
            "/api/broker": self._broker,
            "/api/pcscd/restart": self._pcscd_restart,
            "/api/scanner/scan": self._scanner_scan,
            "/api/scanner/plug": self._scanner_plug,
            "/api/camera/document": self._camera_document,
            "/api/camera/fault": self._camera_fault,
            "/api/idcard/place": self._idcard_place,
            "/api/idcard/remove": self._idcard_remove,
            "/api/idcard/fault": self._idcard_fault,
            "/api/idcard/plug": self._idcard_plug,
            "/api/controller/door": self._controller_door,
            "/api/controller/tamper": self._controller_tamper,
            "/api/controller/temperature": self._controller_temperature,
            "/api/terminal/freeze": self._terminal_freeze,
            "/api/ecode/issue": self._ecode_issue,
            "/api/touch": self._touch,
            "/api/tap": self._tap,
        }
        receipt = _RECEIPT_PNG_PATH.match(path)
        if method == "GET":
            if path in get_routes:
                return get_routes[path]()
            if receipt:
                return self._receipt_png(receipt.group(1))
        elif method == "POST" and path in post_routes:
            return post_routes[path](_parse_object(raw_body))
        if path in get_routes or receipt:
            raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} only answers GET")
        if path in post_routes:
            raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} only answers POST")
        raise _HttpError(HTTPStatus.NOT_FOUND, f"no such page or API: {path}")

    def _call_refusable(self, device: str, operation: Callable[[], _T]) -> _T:
        """``_call``, with the device's ValueError (what it cannot do with these values) a 400
        carrying its message rather than a 502."""

        def attempt() -> _T | ValueError:
            try:
                return operation()
            except ValueError as refusal:
                return refusal

        result = self._call(device, attempt)
        if isinstance(result, ValueError):
            raise _bad(str(result) or f"{device} refused the values")
        return result

    def _call(self, device: str, operation: Callable[[], _T]) -> _T:
        """Run one backend operation with a deadline; turn its failure into a clear HTTP error."""
        # The call runs on a daemon thread of its own, not the request thread, so a hung device
        # costs the page a 504 after backend_timeout_s, and cannot hold the simulator's exit
        # (a ThreadPoolExecutor's workers are joined at interpreter exit).
        if not self._in_flight.acquire(blocking=False):
            raise _HttpError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"{device} not reachable: {MAX_CALLS_IN_FLIGHT} earlier calls are still hanging",
            )
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(operation())
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                self._in_flight.release()

        try:
            threading.Thread(target=run, name=f"panel-call-{device}", daemon=True).start()
        except RuntimeError as exc:  # the process is out of threads
            self._in_flight.release()
            raise _HttpError(HTTPStatus.SERVICE_UNAVAILABLE, f"control panel: {exc}") from None
        done, _ = concurrent.futures.wait([future], timeout=self._backend_timeout_s)
        if not done:
            raise _HttpError(
                HTTPStatus.GATEWAY_TIMEOUT,
                f"{device} did not answer within {self._backend_timeout_s:g} s "
                "(it may still finish)",
            )
        try:
            return future.result()
        except urllib.error.HTTPError as exc:
            # It answered, so it is reachable: it refused the request. Checked before OSError
            # because HTTPError is one.
            raise _HttpError(
                HTTPStatus.BAD_GATEWAY, f"{device} refused: HTTP {exc.code} {_refusal(exc)}"
            ) from None
        except (BackendUnavailableError, OSError) as exc:
            raise _HttpError(
                HTTPStatus.SERVICE_UNAVAILABLE, f"{device} not reachable: {_describe(exc)}"
            ) from None
        except BackendConflictError as exc:
            raise _HttpError(HTTPStatus.CONFLICT, f"{device}: {_describe(exc)}") from None
        except BackendError as exc:
            raise _HttpError(HTTPStatus.BAD_GATEWAY, f"{device} failed: {_describe(exc)}") from None
        except Exception as exc:
            # A bug in the adapter or a device: the page gets one line, the log gets the traceback.
            _log.warning("control panel: %s raised", device, exc_info=True)
            raise _HttpError(
                HTTPStatus.BAD_GATEWAY, f"{device} failed: {type(exc).__name__}: {_describe(exc)}"
            ) from None

    # -- GET ------------------------------------------------------------------------------------

    def _page(self) -> _Reply:
        # Read on every visit so an edited page shows on reload without restarting the simulator.
        try:
            html = PAGE_PATH.read_bytes()
        except OSError as exc:
            raise _HttpError(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"control panel page unreadable: {exc}"
            ) from None
        return _Reply(HTTPStatus.OK, html, "text/html; charset=utf-8")

    def _state(self) -> _Reply:
        # The two halves fail independently: with the terminal down the devices still show, and
        # the page says "terminal not reachable" in the screen area.
        devices: object = None
        devices_error: str | None = None
        screen: object = None
        screen_error: str | None = None
        try:
            devices = self._call("devices", self._backend.device_summary)
        except _HttpError as exc:
            devices_error = exc.message
        if isinstance(devices, dict) and "card_pulled_at" in devices:
            devices = dict(devices)
            stamps = _stamp_in_zone(devices["card_pulled_at"], self._zone)
            if stamps is not None:
                devices["card_pulled_at"], devices["card_pulled_at_local"] = stamps
        try:
            screen = self._call("terminal", self._backend.screen)
            if not isinstance(screen, dict):
                screen, screen_error = (
                    None,
                    "terminal answered /screen with something that is not an object",
                )
        except _HttpError as exc:
            screen_error = exc.message
        return _json_reply(
            HTTPStatus.OK,
            {
                "devices": devices,
                "devices_error": devices_error,
                "screen": screen,
                "screen_error": screen_error,
                # For the page's own time stamps: the terminal's zone, not the browser's.
                "zone": {
                    "name": self._zone.key,
                    "label": zone_label(dt.datetime.now(self._zone)),
                },
            },
        )

    def _presets(self) -> _Reply:
        return _json_reply(HTTPStatus.OK, {"presets": self._call("presets", self._backend.presets)})

    def _receipts(self) -> _Reply:
        entries = self._call("printer", self._backend.list_receipts)
        listed: list[dict[str, object]] = []
        for entry in entries:
            item = dict(entry)
            item["png_url"] = f"api/receipts/{entry['index']}.png"
            # Receipts print local time; the list says the same time, and which zone it is in.
            stamps = _stamp_in_zone(entry.get("printed_at"), self._zone)
            if stamps is not None:
                item["printed_at"], item["printed_at_local"] = stamps
            listed.append(item)
        return _json_reply(HTTPStatus.OK, {"receipts": listed})

    def _receipt_png(self, raw_index: str) -> _Reply:
        if not raw_index.isascii() or not raw_index.isdigit() or len(raw_index) > 9:
            raise _bad("receipt index must be a non-negative integer")
        index = int(raw_index)

        def fetch() -> bytes | None:
            try:
                return self._backend.receipt_png(index)
            except LookupError:
                return None

        png = self._call("printer", fetch)
        if png is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no receipt {index}")
        return _Reply(HTTPStatus.OK, png, "image/png")

    def _qr_png(self, query: str) -> _Reply:
        try:
            fields = urllib.parse.parse_qs(query, strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError):
            fields = {}
        data = fields.get("data", [])
        if len(data) != 1 or not data[0]:
            raise _bad("give the text to draw once, URL-encoded: /api/qr.png?data=TEXT")
        if len(data[0].encode("utf-8")) > MAX_QR_BYTES:
            raise _bad(f"data is longer than {MAX_QR_BYTES} bytes in UTF-8")
        try:
            png = qr_png(data[0])
        except qrcode.exceptions.DataOverflowError:
            raise _bad("data does not fit in a QR code") from None
        return _Reply(HTTPStatus.OK, png, "image/png")

    def _screen_png(self) -> _Reply:
        png = self._call("terminal", self._backend.screenshot)
        size = _png_size(png) if isinstance(png, bytes) else None
        if size is None:
            raise _HttpError(HTTPStatus.BAD_GATEWAY, "terminal's screenshot is not a PNG")
        self._screen_size = size
        return _Reply(HTTPStatus.OK, png, "image/png")

    # -- POST -----------------------------------------------------------------------------------

    def _card_insert(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("kind",), ("id_number", "name"))
        kind = _choice(body, "kind", CARD_KINDS)
        id_number = _optional_text(body, "id_number")
        name = _optional_text(body, "name")
        warning: str | None = None
        if kind in ("other", "badge"):
            # A non-SSSE card has no identity files; data for one means the caller meant "ssse".
            if id_number is not None or name is not None:
                raise _bad("a non-social-security card carries no id_number or name")
        else:
            if id_number is not None:
                id_number, warning = _validate_id_number(id_number)
            if name is not None:
                name = _validate_name(name)
        self._call("card slot", lambda: self._backend.insert_card(kind, id_number, name))
        return _ok(warning=warning) if warning else _ok()

    def _card_remove(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ())
        self._call("card slot", self._backend.remove_card)
        return _ok()

    def _card_pull_mid_read(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, (), ("armed",))
        armed = body.get("armed", True)
        if not isinstance(armed, bool):
            raise _bad("armed must be true (arm the fault) or false (disarm it)")
        if armed:
            self._call("card slot", self._backend.pull_card_mid_read)
        else:
            self._call("card slot", self._backend.cancel_card_pull)
        return _ok(armed=armed)

    def _printer_status(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("status",))
        status = _choice(body, "status", PRINTER_STATUSES)
        self._call("printer", lambda: self._backend.set_printer_status(status))
        return _ok()

    def _printer_paper_out_after(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("lines",))
        lines = _int_in_range(body, "lines", 0, MAX_PAPER_LINES)
        self._call("printer", lambda: self._backend.paper_out_after(lines))
        return _ok()

    def _hub_fault(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("mode",), ("delay_s",))
        mode = _choice(body, "mode", HUB_MODES)
        if mode == "slow":
            if "delay_s" not in body:
                raise _bad("mode slow needs delay_s (seconds)")
            delay_s = _float_in_range(body, "delay_s", 0.0, MAX_HUB_DELAY_S)
            if delay_s == 0:
                raise _bad("mode slow needs delay_s above 0; use mode ok for no delay")
        else:
            if "delay_s" in body:
                # Checked so a bad value is still refused, then dropped: only "slow" has a delay,
                # and a stale one must not leak into the hub's next mode.
                _float_in_range(body, "delay_s", 0.0, MAX_HUB_DELAY_S)
            delay_s = 0.0
        self._call("hub", lambda: self._backend.set_hub_fault(mode, delay_s))
        return _ok()

    def _broker(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("up",))
        up = body["up"]
        if not isinstance(up, bool):
            raise _bad("up must be true or false")
        self._call("broker", lambda: self._backend.set_broker_up(up))
        return _ok()

    def _pcscd_restart(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ())
        self._call("pcscd", self._backend.restart_pcscd)
        return _ok()

    def _scanner_scan(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("code",))
        code = body["code"]
        if not isinstance(code, str) or not code:
            raise _bad("code must be a non-empty string: the text the scanner reads")
        if len(code.encode("utf-8")) > MAX_SCAN_BYTES:
            raise _bad(f"code is longer than {MAX_SCAN_BYTES} bytes in UTF-8")
        self._call("scanner", lambda: self._backend.scan_code(code))
        if "\r" in code or "\n" in code:
            # Sent as asked (a real QR code can hold one), but a serial driver ends a code there.
            return _ok(warning="the code holds a line break: the terminal reads it as two codes")
        return _ok()

    def _scanner_plug(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("plugged",))
        plugged = body["plugged"]
        if not isinstance(plugged, bool):
            raise _bad("plugged must be true (plug the scanner in) or false (pull its cable)")
        self._call("scanner", lambda: self._backend.set_scanner_plugged(plugged))
        return _ok(plugged=plugged)

    def _camera_documents(self) -> _Reply:
        return _json_reply(HTTPStatus.OK, self._call("camera", self._backend.camera_documents))

    def _camera_document(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("name",))
        name = body["name"]
        if not isinstance(name, str) or not name or len(name) > MAX_DOCUMENT_NAME_CHARS:
            raise _bad("name must be a sample document's name (GET /api/camera/documents)")
        # The camera knows its documents; asking it first gives the usual "one of" message.
        documents = self._call("camera", self._backend.camera_documents)["documents"]
        name = _choice(body, "name", tuple(documents))
        self._call("camera", lambda: self._backend.set_camera_document(name))
        return _ok()

    def _camera_fault(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("mode",))
        mode = _choice(body, "mode", CAMERA_FAULTS)
        self._call("camera", lambda: self._backend.set_camera_fault(mode))
        return _ok()

    def _idcard_place(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("id_number", "name"), ("valid_until", "card_type", "sex"))
        raw_number = body["id_number"]
        if not isinstance(raw_number, str):
            raise _bad("id_number must be a string")
        id_number, number_warning = _validate_id_number(raw_number)
        name = _validate_id_card_name(body["name"])
        # "Today" where the terminal stands: that is the day it checks the card against.
        valid_until, expiry_warning = _validate_valid_until(
            body.get("valid_until"), dt.datetime.now(self._zone).date()
        )
        card_type = (
            _choice(body, "card_type", ID_CARD_TYPES) if body.get("card_type") is not None
            else "citizen"
        )
        sex = _choice(body, "sex", ID_CARD_SEXES) if body.get("sex") is not None else None
        self._call_refusable(
            "ID card reader",
            lambda: self._backend.place_id_card(
                id_number, name, valid_until=valid_until, card_type=card_type, sex=sex
            ),
        )
        warnings = [w for w in (number_warning, expiry_warning) if w]
        return _ok(warning="; ".join(warnings)) if warnings else _ok()

    def _idcard_remove(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ())
        self._call("ID card reader", self._backend.remove_id_card)
        return _ok()

    def _idcard_fault(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("mode",))
        mode = _choice(body, "mode", ID_CARD_FAULTS)
        self._call("ID card reader", lambda: self._backend.set_id_card_fault(mode))
        return _ok()

    def _idcard_plug(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("plugged",))
        plugged = body["plugged"]
        if not isinstance(plugged, bool):
            raise _bad("plugged must be true (plug the reader in) or false (pull its cable)")
        self._call("ID card reader", lambda: self._backend.set_id_card_plugged(plugged))
        return _ok(plugged=plugged)

    def _controller_door(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("open",))
        opened = body["open"]
        if not isinstance(opened, bool):
            raise _bad("open must be true (open the cabinet door) or false (close it)")
        self._call("co-processor", lambda: self._backend.set_door(opened))
        return _ok(open=opened)

    def _controller_tamper(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("triggered",))
        triggered = body["triggered"]
        if not isinstance(triggered, bool):
            raise _bad("triggered must be true (the tamper switch trips) or false")
        self._call("co-processor", lambda: self._backend.set_tamper(triggered))
        return _ok(triggered=triggered)

    def _controller_temperature(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("celsius",))
        celsius = body["celsius"]
        if (not isinstance(celsius, int | float) or isinstance(celsius, bool)
                or not -40 <= celsius <= 125):
            raise _bad("celsius must be a number from -40 to 125 (the sensor's range)")
        value = float(celsius)
        self._call("co-processor", lambda: self._backend.set_temperature(value))
        return _ok(celsius=value)

    def _terminal_freeze(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("frozen",))
        frozen = body["frozen"]
        if not isinstance(frozen, bool):
            raise _bad("frozen must be true (freeze the terminal) or false (let it run)")
        self._call("terminal", lambda: self._backend.freeze_terminal(frozen))
        return _ok(frozen=frozen)

    def _ecode_issue(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("id_number", "name"), ("ttl_s",))
        raw_number, raw_name = body["id_number"], body["name"]
        if not isinstance(raw_number, str) or not raw_number.strip():
            raise _bad("id_number must be a non-empty string")
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise _bad("name must be a non-empty string")
        # The hub checks the person itself (GB 11643 in full: a code is never issued for a
        # number the terminal would refuse); only the keyboard's padding and x are fixed here.
        id_number, name = normalise_id_number(raw_number), raw_name.strip()
        ttl_s: float | None = None
        if body.get("ttl_s") is not None:
            ttl_s = _float_in_range(body, "ttl_s", 0.0, MAX_E_CODE_TTL_S)
            if ttl_s == 0:
                raise _bad("ttl_s must be above 0")
        code = self._call_refusable(
            "hub", lambda: self._backend.issue_e_code(id_number, name, ttl_s)
        )
        # DESIGN 8 fixes this answer: the code alone.
        return _json_reply(HTTPStatus.OK, {"code": code})

    def _touch(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("x", "y"))
        x = _int_in_range(body, "x", 0, MAX_TOUCH_COORDINATE)
        y = _int_in_range(body, "y", 0, MAX_TOUCH_COORDINATE)
        size = self._screen_size
        if size is not None and (x >= size[0] or y >= size[1]):
            raise _bad(f"({x}, {y}) is outside the terminal's screen of {size[0]}x{size[1]} pixels")
        self._call("terminal", lambda: self._backend.touch(x, y))
        return _ok()

    def _tap(self, body: dict[str, object]) -> _Reply:
        _check_fields(body, ("target",))
        target = body["target"]
        if not isinstance(target, str) or not target.strip():
            raise _bad("target must be a non-empty string (a target id from the screen)")
        if len(target) > MAX_TARGET_ID_CHARS:
            raise _bad(f"target is longer than {MAX_TARGET_ID_CHARS} characters")
        self._call("terminal", lambda: self._backend.tap(target))
        return _ok()


class _PanelServer(ThreadingHTTPServer):
    """The HTTP server, holding the panel its requests are handed to."""

    daemon_threads = True  # a page left open must not keep the simulator from exiting

    def __init__(self, address: tuple[str, int], panel: ControlPanel) -> None:
        self.panel = panel
        super().__init__(address, _PanelRequestHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        # The default prints a traceback to stderr, typically for a tab closed mid-response.
        _log.debug("control panel: connection from %s ended badly", client_address, exc_info=True)


class _PanelRequestHandler(BaseHTTPRequestHandler):
    """HTTP plumbing only: checks origin and body, then hands over to ControlPanel.handle."""

    server_version = "KioskSimPanel/1"
    timeout = 10.0  # a client that stalls mid-request must not hold a thread forever

    def log_message(self, format: str, *args: object) -> None:
        # Screenshots are polled several times a second; request lines would drown the log.
        pass

    def do_GET(self) -> None:
        self._serve("GET", b"")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is not None:
            self._serve("POST", body)

    def _serve(self, method: str, body: bytes) -> None:
        rejection = self._check_host()
        if rejection is not None:
            self._send(rejection)
            return
        if method == "POST" and not self._is_json():
            # A cross-site page can send a "simple" POST without asking; requiring JSON forces a
            # CORS preflight, which this server never approves.
            self._send(
                _json_reply(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    {"error": "send Content-Type: application/json"},
                )
            )
            return
        panel = cast(_PanelServer, self.server).panel
        self._send(panel.handle(method, self.path, body))

    def _check_host(self) -> _Reply | None:
        # DNS rebinding would let a web page reach 127.0.0.1 under its own name; ours only pass.
        host = self.headers.get("Host")
        if host is None:
            return None
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not _is_loopback_name(name):
            return _json_reply(
                HTTPStatus.FORBIDDEN, {"error": f"host {host!r} is not this machine's loopback"}
            )
        return None

    def _is_json(self) -> bool:
        content_type = self.headers.get("Content-Type", "")
        return content_type.split(";", 1)[0].strip().lower() == "application/json"

    def _read_body(self) -> bytes | None:
        """The POST body, or None after an error reply has been sent."""
        try:
            # A POST without a body (no Content-Length) is the empty object.
            return read_body(self.headers, self.rfile, max_bytes=MAX_BODY_BYTES, required=False)
        except BodyRefused as refusal:
            self.close_connection = True  # the unread body must not be taken for the next request
            self._send(_json_reply(refusal.status, {"error": refusal.message}))
            return None

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            # The screen, the state and the page all change under the same URL.
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(reply.body)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            # The tab went away or refreshed mid-answer; nothing to tell anyone.
            self.close_connection = True

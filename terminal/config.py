"""Typed terminal configuration, read from TOML and checked where it is read.

Every option has its range next to it, and an option nobody reads is reported as a typo, so a
misspelt key in the field fails loudly at start instead of silently falling back to a default.
Whatever a file holds, loading it either gives a Config the terminal can run on or raises
ConfigError: a file that is not UTF-8, nests too deeply, is huge or is not a file at all, and a
value the MQTT contract, a socket or the file system would refuse only later, at run time.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import reprlib
import stat
import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# The contract's own checks: an id or site it would refuse must stop the terminal at start, not
# fail every birth, heartbeat and Will for the life of the process.
from contracts.identifiers import TopicError, check_site, check_terminal_id

T = TypeVar("T", int, float, str, bool)

# A real config is a few kB; anything near this is not one (and must not be read into memory).
MAX_CONFIG_BYTES = 1024 * 1024
# Linux limits (PATH_MAX, NAME_MAX); beyond them every file call fails with ENAMETOOLONG.
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255
# MQTT strings (user name, password) carry a two-byte length.
MAX_MQTT_STRING_BYTES = 65535
MAX_URL_CHARS = 2048
# One DNS label: letters, digits, '-' (and '_', which real internal names use); RFC 1035 lengths.
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown(value: object) -> str:
    """A value as an error message shows it: repr (control characters visible), clipped, so a
    megabyte string or a list nested a thousand deep cannot flood or crash the message."""
    clipped = reprlib.Repr()
    clipped.maxstring = clipped.maxother = 60
    clipped.maxlevel, clipped.maxlist, clipped.maxdict = 2, 4, 4
    return clipped.repr(value)


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the section and option."""


class _Section:
    """Reads one TOML table, remembering which options were read so leftovers can be reported."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self.name = name
        self._values = dict(values)
        self._read: set[str] = set()

    def get(self, option: str, default: T, *, above: float | None = None,
            below: float | None = None, choices: tuple[str, ...] | None = None) -> T:
        self._read.add(option)
        value = self._values.get(option, default)
        where = f"[{self.name}] {option}"
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer of 400 digits is no timeout
                raise ConfigError(f"{where} is out of range: {_shown(value)}") from None
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where} must be {expected.__name__}, not {_shown(value)}")
        # NaN is neither above nor below anything, so it fails both checks, as it should.
        if above is not None and isinstance(value, int | float) and not value > above:
            raise ConfigError(f"{where} must be above {above}, not {_shown(value)}")
        if below is not None and isinstance(value, int | float) and not value < below:
            raise ConfigError(f"{where} must be below {below}, not {_shown(value)}")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, not {_shown(value)}")
        return value

    def get_strings(self, option: str, *, max_items: int) -> tuple[str, ...]:
        """A list of strings (default empty)."""
        self._read.add(option)
        value = self._values.get(option, [])
        where = f"[{self.name}] {option}"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        if len(value) > max_items:
            raise ConfigError(f"{where} has {len(value)} entries; at most {max_items}")
        return tuple(value)

    def unread(self) -> list[str]:
        return sorted(set(self._values) - self._read)


@dataclass(frozen=True)
class TerminalSettings:
    terminal_id: str = "T-DEV-0001"
    site: str = "dev"
    timezone: str = "Asia/Shanghai"
    state_dir: Path = Path("var/state")
    idle_timeout_s: int = 60
    content_dir: Path | None = None  # None = the catalogue shipped with the package


MM_PER_INCH = 25.4
# Without [display] diagonal_in, sizes in millimetres are computed as if each pixel were 0.175 mm
# (145 pixels per inch), a little denser than the densest reference screen (the 15.6-inch
# 1080x1920 panel, 0.180 mm). Type and targets then come out at least as large as asked on every
# reference screen (a 7-inch 800x480 panel is 0.191 mm, a 21.5-inch 1920x1080 one 0.248 mm),
# never smaller; only a denser panel than these needs its size in the config.
ASSUMED_MM_PER_PX = 0.175
DIAGONAL_RANGE_IN = (5.0, 100.0)
# A pixel density no touch panel has means a wrong size or resolution, not a strange screen.
PPI_RANGE = (20.0, 600.0)


@dataclass(frozen=True)
class DisplaySettings:
    fullscreen: bool = True
    # The panel's native resolution (the window's size when not full screen).
    width: int = 1920
    height: int = 1080
    language: str = "zh_CN"
    diagonal_in: float | None = None  # the panel's visible diagonal; None: see ASSUMED_MM_PER_PX

    @property
    def mm_per_px(self) -> float:
        """Millimetres per pixel of the panel: what the UI turns its mm minimums into."""
        if self.diagonal_in is None:
            return ASSUMED_MM_PER_PX
        return self.diagonal_in * MM_PER_INCH / math.hypot(self.width, self.height)


@dataclass(frozen=True)
class CardSettings:
    reader_filter: str = ""  # a substring of the reader name; empty = any reader may hold the card
    read_timeout_s: float = 5.0


@dataclass(frozen=True)
class PrinterSettings:
    kind: str = "network"  # network | usb | serial
    host: str = "127.0.0.1"
    port: int = 9100
    usb_vendor: int = 0
    usb_product: int = 0
    serial_device: str = "/dev/ttyUSB0"
    baudrate: int = 19200
    paper_mm: int = 80
    roll_capacity: int = 0  # receipts a full roll holds, for the paper-low estimate; 0: not counted
    paper_low_at: float = 0.9  # share of roll_capacity printed that counts as paper low
    status_timeout_s: float = 1.0
    job_timeout_s: float = 15.0


@dataclass(frozen=True)
class HubSettings:
    url: str = "http://127.0.0.1:8702"
    timeout_s: float = 8.0
    # Where printed QR codes point a phone (the platform's public pages); "" = the url above.
    public_url: str = ""
    ca_file: Path | None = None


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls: bool = False  # also on with ca_file or cert_file; alone: the system's trusted CAs
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    heartbeat_interval_s: int = 30


@dataclass(frozen=True)
class SpeechSettings:
    """Voice guidance. ``wav_dir``: write each utterance there instead of playing it (the
    simulator's sound card); else espeak-ng plays on the ALSA ``audio_device``."""

    enabled: bool = True
    audio_device: str = "default"
    wav_dir: Path | None = None


@dataclass(frozen=True)
class AutomationSettings:
    enabled: bool = False  # the simulator turns it on; production config must not
    port: int = 8701


@dataclass(frozen=True)
class ScannerSettings:
    """The QR/barcode scanner: none, a serial one (a tty), or a keyboard-wedge HID one."""

    kind: str = "none"  # none | serial | wedge
    port: str = "/dev/ttyACM0"  # serial: the tty, best a /dev/serial/by-id/ link
    baudrate: int = 9600
    terminator: str = "any"  # any | cr | lf | crlf
    device: str = ""  # wedge: /dev/input/eventN or /dev/input/by-id/..., or the device's name


@dataclass(frozen=True)
class CameraSettings:
    """The document camera (高拍仪): none, a networked one (MJPEG over HTTP) or a UVC one."""

    source: str = ""  # "" (none) | http://HOST:PORT | /dev/videoN
    source_dpi: float = 0.0  # full-resolution pixels per inch at the platen; 0: unknown
    target_dpi: float = 200.0  # what a page is scaled to
    max_page_bytes: int = 500_000  # each page's JPEG at most
    frame_timeout_s: float = 2.0  # no preview frame for this long: the stream has stalled
    capture_timeout_s: float = 10.0


@dataclass(frozen=True)
class HelpSettings:
    """Calls for help (帮办): how long to wait for staff, and what to offer when none answer."""

    answer_within_s: int = 180  # then the hotline and the opening hours instead
    hotline: str = "12345"  # the government service hotline
    opening_hours: str = ""  # the window hours as shown, e.g. "工作日 9:00-12:00, 13:30-17:00"


@dataclass(frozen=True)
class StaffSettings:
    """[staff]: the badges (card UIDs, hex) that open the maintenance menu. The set_staff_badges
    command replaces the list at run time (kept in the state directory)."""

    badges: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdCardSettings:
    """[idcard]: the resident ID card's SAM reader module (GA/T 467) on a serial line."""

    kind: str = "none"  # none | serial
    port: str = "/dev/ttyUSB1"  # best a /dev/serial/by-id/ link
    baudrate: int = 115200


@dataclass(frozen=True)
class ControllerSettings:
    """[controller]: the cabinet's co-processor (door, tamper, temperature, fan, watchdog)."""

    kind: str = "none"  # none | serial
    port: str = "/dev/ttyACM1"
    baudrate: int = 115200
    watchdog_timeout_s: int = 60  # no kick from the UI's main loop this long: power-cycle
    grace_s: int = 180  # never during the board's first boot this long (the Pi boots meanwhile)
    # Sent to the board at every handshake: the fan runs from fan_on_c until below fan_off_c
    # (hysteresis); temperature_high (an event, the heartbeat's cabinet row) from
    # temperature_high_c until 5 degrees below it.
    fan_on_c: float = 45.0
    fan_off_c: float = 40.0
    temperature_high_c: float = 60.0


@dataclass(frozen=True)
class Config:
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    card: CardSettings = field(default_factory=CardSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    automation: AutomationSettings = field(default_factory=AutomationSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    help: HelpSettings = field(default_factory=HelpSettings)
    scanner: ScannerSettings = field(default_factory=ScannerSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    idcard: IdCardSettings = field(default_factory=IdCardSettings)
    controller: ControllerSettings = field(default_factory=ControllerSettings)


def _name(key: object) -> str:
    """A section or option name from the file, as a message shows it."""
    if isinstance(key, str) and key.isprintable() and len(key) <= 60:
        return key
    return _shown(key)


def _checked_path(where: str, value: str) -> Path:
    """A path every file call can take: a NUL byte, a lone surrogate or a name over the kernel's
    limits would otherwise fail (ValueError, UnicodeEncodeError, ENAMETOOLONG) at first use."""
    if not value:
        raise ConfigError(f"{where} must not be empty")
    if _CONTROL.search(value):
        raise ConfigError(f"{where} must not hold control characters: {_shown(value)}")
    try:
        raw = os.fsencode(value)
    except UnicodeEncodeError:
        raise ConfigError(f"{where} is not a valid file name: {_shown(value)}") from None
    if len(raw) > MAX_PATH_BYTES or any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        raise ConfigError(f"{where} is too long for a file name: {_shown(value)}")
    return Path(value)


def _existing_file(where: str, path: Path | None) -> Path | None:
    """A certificate or key named in the config must be there now, not at the first TLS call."""
    if path is None:
        return None
    try:
        is_file = path.is_file()
    except OSError as e:  # EACCES on a parent directory, say: is_file() only hides ENOENT & co.
        raise ConfigError(f"{where}: cannot look at {path}: {e.strerror}") from None
    if not is_file:
        raise ConfigError(f"{where}: no such file: {path}")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where}: {path} is not readable by this user")
    return path


def _check_state_dir(path: Path) -> None:
    """The state directory is made at start; a file in its place would only fail there."""
    try:
        taken = path.exists() and not path.is_dir()
    except OSError as e:
        raise ConfigError(f"[terminal] state_dir: cannot look at {path}: {e.strerror}") from None
    if taken:
        raise ConfigError(f"[terminal] state_dir: {path} exists and is not a directory")


def _check_host(where: str, value: str) -> None:
    """A name a resolver can take or an IP address. Spaces, control characters, empty or long
    labels would fail inside paho's or the printer's thread (getaddrinfo, the idna codec), over
    and over, instead of once here; an international name must be given in its xn-- form."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    name = value.removesuffix(".")  # a fully qualified name may end with the root's dot
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise ConfigError(
            f"{where} must be an IP address or a host name of letters, digits, '-' and '.' "
            f"(an international name in its xn-- form), not {_shown(value)}"
        )


def _checked_url(where: str, value: str) -> str:
    """An http(s) URL naming a valid host and port, with no credentials in it."""
    # urlsplit silently drops tabs and newlines, and raises ValueError on '[::1' or a port
    # of 99999 only when .port is read: check all of it here.
    if len(value) > MAX_URL_CHARS or _CONTROL.search(value) or any(c.isspace() for c in value):
        raise ConfigError(f"{where} must be a URL with no spaces or control characters, "
                          f"not {_shown(value)}")
    try:
        url = urllib.parse.urlsplit(value)
        port = url.port
        host = url.hostname
    except ValueError as e:
        raise ConfigError(f"{where} is not a valid URL ({e}): {_shown(value)}") from None
    if url.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{where} must be http:// or https:// and name a host")
    if port == 0:
        raise ConfigError(f"{where}: port 0 is not a port to connect to")
    if url.username is not None or url.password is not None:
        # The URL is logged; a password in it would be too. The hub is trusted by its CA instead.
        raise ConfigError(f"{where} must not carry a user name or password")
    _check_host(where, host)
    return value


def _mqtt_string(where: str, value: str, *, control_ok: bool) -> str:
    """A user name or password MQTT can carry: UTF-8 of at most 65,535 bytes; a user name
    is an MQTT UTF-8 string, which may hold no control characters (U+0000 at all)."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError(f"{where} is not valid text") from None
    if size > MAX_MQTT_STRING_BYTES:
        raise ConfigError(f"{where} is longer than MQTT allows ({size} bytes)")
    if not control_ok and _CONTROL.search(value):
        raise ConfigError(f"{where} must not hold control characters")
    return value


def _contract_checked(where: str, value: str, check: Callable[[str], str]) -> str:
    """Run one of the MQTT contract's checks; its message names the rule, ours the option."""
    try:
        check(value)
    except (TopicError, ValueError) as e:
        raise ConfigError(f"{where}: {e}; not {_shown(value)}") from None
    return value


def _checked_diagonal(value: float) -> float:
    """The screen's diagonal in inches, within what a kiosk panel can be (NaN is outside)."""
    low, high = DIAGONAL_RANGE_IN
    if not low <= value <= high:
        raise ConfigError(f"[display] diagonal_in is the screen's diagonal in inches, "
                          f"{low:g} to {high:g}, not {_shown(value)}")
    return value


def _check_pixel_density(display: DisplaySettings) -> None:
    """A diagonal and a resolution that make no panel (a 100-inch 800x480, a 5-inch 4K): the
    UI would size type and targets from a pixel pitch that is not the screen's."""
    if display.diagonal_in is None:
        return
    ppi = MM_PER_INCH / display.mm_per_px
    low, high = PPI_RANGE
    if not low <= ppi <= high:
        raise ConfigError(
            f"[display] a {display.diagonal_in:g}-inch screen of {display.width}x"
            f"{display.height} pixels has {ppi:.0f} pixels per inch, outside {low:g} to "
            f"{high:g}; check diagonal_in, width and height (the panel's native resolution)"
        )


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a Config from a TOML document's tables; raise ConfigError naming what is wrong."""
    known = {"terminal", "display", "card", "printer", "hub", "mqtt", "automation", "speech",
             "help", "scanner", "camera", "staff", "idcard", "controller"}
    unknown_sections = sorted(set(data) - known)
    if unknown_sections:
        raise ConfigError(f"unknown section(s): {', '.join(map(_name, unknown_sections))}")
    for name, table in data.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{name}] must be a table")
    sections = {name: _Section(name, data.get(name, {})) for name in known}

    s = sections["terminal"]
    d = TerminalSettings()
    content_dir = s.get("content_dir", "")
    terminal = TerminalSettings(
        terminal_id=_contract_checked("[terminal] id", s.get("id", d.terminal_id),
                                      check_terminal_id),
        site=_contract_checked("[terminal] site", s.get("site", d.site), check_site),
        timezone=s.get("timezone", d.timezone),
        state_dir=_checked_path("[terminal] state_dir", s.get("state_dir", str(d.state_dir))),
        idle_timeout_s=s.get("idle_timeout_s", d.idle_timeout_s, above=9, below=3601),
        content_dir=_checked_path("[terminal] content_dir", content_dir) if content_dir else None,
    )
    try:
        zoneinfo.ZoneInfo(terminal.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"[terminal] timezone: unknown zone {_shown(terminal.timezone)}") from None
    _check_state_dir(terminal.state_dir)
    if terminal.content_dir is not None and not terminal.content_dir.is_dir():
        # A missing or broken file in it is not fatal (the last good content is used and
        # reported), but a directory that is not there at all is a typo in this file.
        raise ConfigError(
            f"[terminal] content_dir: {_shown(str(terminal.content_dir))} is not a directory")

    s = sections["display"]
    dd = DisplaySettings()
    display = DisplaySettings(
        fullscreen=s.get("fullscreen", dd.fullscreen),
        width=s.get("width", dd.width, above=319, below=8000),
        height=s.get("height", dd.height, above=239, below=8000),
        language=s.get("language", dd.language, choices=("zh_CN", "en")),
        diagonal_in=(
            _checked_diagonal(s.get("diagonal_in", 0.0))
            if "diagonal_in" in data.get("display", {})
            else None
        ),
    )
    _check_pixel_density(display)

    s = sections["card"]
    dc = CardSettings()
    card = CardSettings(
        reader_filter=s.get("reader_filter", dc.reader_filter),
        read_timeout_s=s.get("read_timeout_s", dc.read_timeout_s, above=0.5, below=60),
    )

    s = sections["printer"]
    dp = PrinterSettings()
    printer = PrinterSettings(
        kind=s.get("kind", dp.kind, choices=("network", "usb", "serial")),
        host=s.get("host", dp.host),
        port=s.get("port", dp.port, above=0, below=65536),
        usb_vendor=s.get("usb_vendor", dp.usb_vendor, above=-1, below=0x10000),
        usb_product=s.get("usb_product", dp.usb_product, above=-1, below=0x10000),
        serial_device=s.get("serial_device", dp.serial_device),
        baudrate=s.get("baudrate", dp.baudrate, above=1199, below=1_000_001),
        paper_mm=s.get("paper_mm", dp.paper_mm, above=57, below=81),
        status_timeout_s=s.get("status_timeout_s", dp.status_timeout_s, above=0.05, below=10),
        job_timeout_s=s.get("job_timeout_s", dp.job_timeout_s, above=1, below=120),
        roll_capacity=s.get("roll_capacity", dp.roll_capacity, above=-1, below=100_000),
        paper_low_at=s.get("paper_low_at", dp.paper_low_at, above=0.0, below=2.0),
    )
    if printer.paper_mm not in (58, 80):
        raise ConfigError("[printer] paper_mm must be 58 or 80")
    if not 0 < printer.paper_low_at <= 1:
        raise ConfigError(f"[printer] paper_low_at must be a share of the roll, above 0 and at "
                          f"most 1, not {_shown(printer.paper_low_at)}")
    if printer.kind == "network" and not printer.host:
        raise ConfigError("[printer] host must be set for a network printer")
    if printer.host:
        _check_host("[printer] host", printer.host)
    if printer.kind == "usb" and not (printer.usb_vendor and printer.usb_product):
        raise ConfigError("[printer] usb_vendor and usb_product must be set for a USB printer")
    if printer.kind == "serial" and not printer.serial_device:
        raise ConfigError("[printer] serial_device must be set for a serial printer")
    if printer.serial_device:
        _checked_path("[printer] serial_device", printer.serial_device)

    s = sections["hub"]
    dh = HubSettings()
    ca_file = s.get("ca_file", "")
    hub = HubSettings(
        url=_checked_url("[hub] url", s.get("url", dh.url)),
        timeout_s=s.get("timeout_s", dh.timeout_s, above=0.1, below=120),
        public_url=(_checked_url("[hub] public_url", s.get("public_url", ""))
                    if s.get("public_url", "") else ""),
        ca_file=_existing_file("[hub] ca_file",
                               _checked_path("[hub] ca_file", ca_file) if ca_file else None),
    )
    if hub.ca_file is not None and not hub.url.lower().startswith("https:"):
        raise ConfigError("[hub] ca_file is used only with an https:// url")

    s = sections["mqtt"]
    dm = MqttSettings()

    def tls_file(option: str) -> Path | None:
        value = s.get(option, "")
        where = f"[mqtt] {option}"
        return _existing_file(where, _checked_path(where, value) if value else None)

    mqtt = MqttSettings(
        enabled=s.get("enabled", dm.enabled),
        host=s.get("host", dm.host),
        port=s.get("port", dm.port, above=0, below=65536),
        username=_mqtt_string("[mqtt] username", s.get("username", dm.username),
                              control_ok=False),
        password=_mqtt_string("[mqtt] password", s.get("password", dm.password), control_ok=True),
        tls=s.get("tls", dm.tls),
        ca_file=tls_file("ca_file"),
        cert_file=tls_file("cert_file"),
        key_file=tls_file("key_file"),
        heartbeat_interval_s=s.get("heartbeat_interval_s", dm.heartbeat_interval_s,
                                   above=0, below=3601),
    )
    if mqtt.host:
        _check_host("[mqtt] host", mqtt.host)
    elif mqtt.enabled:
        raise ConfigError("[mqtt] host must be set while MQTT is enabled")
    # Each of these would be dropped without a word by paho: say so instead.
    if mqtt.password and not mqtt.username:
        raise ConfigError("[mqtt] password is sent only with a username; set username")
    if mqtt.key_file is not None and mqtt.cert_file is None:
        raise ConfigError("[mqtt] key_file is used only with cert_file; set cert_file")

    s = sections["automation"]
    da = AutomationSettings()
    automation = AutomationSettings(
        enabled=s.get("enabled", da.enabled),
        port=s.get("port", da.port, above=0, below=65536),
    )

    s = sections["speech"]
    dv = SpeechSettings()
    wav_dir = s.get("wav_dir", "")
    audio_device = s.get("audio_device", dv.audio_device)
    if not audio_device or _CONTROL.search(audio_device) or not audio_device.isascii():
        raise ConfigError(f"[speech] audio_device must be an ALSA device name, not "
                          f"{_shown(audio_device)}")
    speech = SpeechSettings(
        enabled=s.get("enabled", dv.enabled),
        audio_device=audio_device,
        wav_dir=_checked_path("[speech] wav_dir", wav_dir) if wav_dir else None,
    )

    s = sections["help"]
    dhelp = HelpSettings()
    hotline = s.get("hotline", dhelp.hotline)
    if not re.fullmatch(r"[0-9][0-9-]{2,19}", hotline):
        raise ConfigError(f"[help] hotline must be a phone number (digits and -), not "
                          f"{_shown(hotline)}")
    opening_hours = s.get("opening_hours", dhelp.opening_hours)
    if len(opening_hours) > 60 or _CONTROL.search(opening_hours):
        raise ConfigError("[help] opening_hours must be one line of at most 60 characters")
    help_settings = HelpSettings(
        answer_within_s=s.get("answer_within_s", dhelp.answer_within_s, above=29, below=3601),
        hotline=hotline,
        opening_hours=opening_hours,
    )

    s = sections["scanner"]
    dsc = ScannerSettings()
    scanner = ScannerSettings(
        kind=s.get("kind", dsc.kind, choices=("none", "serial", "wedge")),
        port=s.get("port", dsc.port),
        baudrate=s.get("baudrate", dsc.baudrate, above=1199, below=1_000_001),
        terminator=s.get("terminator", dsc.terminator, choices=("any", "cr", "lf", "crlf")),
        device=s.get("device", dsc.device),
    )
    if scanner.kind == "serial":
        _checked_path("[scanner] port", scanner.port)
    if scanner.kind == "wedge" and not scanner.device:
        raise ConfigError("[scanner] device must name the wedge scanner's input device "
                          "(/dev/input/by-id/... or its name)")

    s = sections["camera"]
    dcam = CameraSettings()
    camera = CameraSettings(
        source=s.get("source", dcam.source),
        source_dpi=float(s.get("source_dpi", dcam.source_dpi, above=-1, below=2001)),
        target_dpi=float(s.get("target_dpi", dcam.target_dpi, above=99, below=601)),
        max_page_bytes=s.get("max_page_bytes", dcam.max_page_bytes, above=49_999,
                             below=5_000_001),
        frame_timeout_s=float(s.get("frame_timeout_s", dcam.frame_timeout_s, above=0.1,
                                    below=30)),
        capture_timeout_s=float(s.get("capture_timeout_s", dcam.capture_timeout_s, above=0.5,
                                      below=120)),
    )
    if camera.source and not camera.source.startswith(("http://", "/dev/")):
        raise ConfigError(f"[camera] source must be http://HOST:PORT or /dev/videoN, not "
                          f"{_shown(camera.source)}")
    if camera.source.startswith("http://"):
        _checked_url("[camera] source", camera.source)

    s = sections["staff"]
    # Imported here: the badge rules (UID lengths) live with the badge list.
    from terminal.staff_badges import BadgeListError, normalise  # noqa: PLC0415

    badges = s.get_strings("badges", max_items=500)
    try:
        staff = StaffSettings(tuple(sorted(normalise(badges))))
    except BadgeListError as e:
        raise ConfigError(f"[staff] badges: {e}") from None

    s = sections["idcard"]
    did = IdCardSettings()
    idcard = IdCardSettings(
        kind=s.get("kind", did.kind, choices=("none", "serial")),
        port=s.get("port", did.port),
        baudrate=s.get("baudrate", did.baudrate, above=1199, below=1_000_001),
    )
    if idcard.kind == "serial":
        _checked_path("[idcard] port", idcard.port)

    s = sections["controller"]
    dco = ControllerSettings()
    controller = ControllerSettings(
        kind=s.get("kind", dco.kind, choices=("none", "serial")),
        port=s.get("port", dco.port),
        baudrate=s.get("baudrate", dco.baudrate, above=1199, below=1_000_001),
        watchdog_timeout_s=s.get("watchdog_timeout_s", dco.watchdog_timeout_s, above=4,
                                 below=3601),
        grace_s=s.get("grace_s", dco.grace_s, above=-1, below=3601),
        fan_on_c=s.get("fan_on_c", dco.fan_on_c, above=20, below=100),
        fan_off_c=s.get("fan_off_c", dco.fan_off_c, above=10, below=100),
        temperature_high_c=s.get("temperature_high_c", dco.temperature_high_c, above=20,
                                 below=100),
    )
    if not controller.fan_off_c < controller.fan_on_c < controller.temperature_high_c:
        raise ConfigError("[controller] needs fan_off_c < fan_on_c < temperature_high_c "
                          "(the fan's hysteresis, then the alarm above it)")
    if controller.kind == "serial":
        _checked_path("[controller] port", controller.port)

    typos = [f"[{name}] {_name(option)}" for name, sec in sorted(sections.items())
             for option in sec.unread()]
    if typos:
        raise ConfigError(f"unknown option(s), check the spelling: {', '.join(typos)}")
    return Config(terminal, display, card, printer, hub, mqtt, automation, speech, help_settings,
                  scanner, camera, staff, idcard, controller)


def parse_config_bytes(raw: bytes, source: str = "config") -> Config:
    """Build a Config from a TOML file's bytes; ``source`` names the file in messages."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{source}: line {line}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                          "save the file as UTF-8") from None
    # Some editors write a byte order mark first; TOML does not allow it, but it means nothing.
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except RecursionError:  # tomllib recurses per nesting level: 500 '[' exhaust the stack
        raise ConfigError(f"{source}: values nested too deeply for a config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: {e}") from None
    except ValueError as e:  # an integer of thousands of digits (int_max_str_digits)
        raise ConfigError(f"{source}: a value cannot be read: {str(e).split(';')[0]}") from None
    return parse_config(data)


def _read_config_file(path: Path) -> bytes:
    """The file's bytes, if it is a regular file of sane size that this user may read."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except PermissionError:
        raise ConfigError(
            f"{path}: permission denied; the terminal's user cannot read it") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise ConfigError(f"{path}: cannot open the config file: {reason}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{path} is a directory, not a config file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)  # +1: a file that grew since fstat still shows
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    finally:
        os.close(fd)
    if info.st_size > MAX_CONFIG_BYTES or len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is {max(info.st_size, len(raw))} bytes; a config file is "
                          f"at most {MAX_CONFIG_BYTES} bytes")
    return raw


def load_config(path: Path | None) -> Config:
    """Read the TOML file at ``path`` (None = all defaults); any problem is a ConfigError."""
    if path is None:
        return Config()
    return parse_config_bytes(_read_config_file(path), str(path))

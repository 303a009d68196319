"""Typed terminal configuration, read from TOML and checked where it is read.

Every option has its range next to it, and an option nobody reads is reported as a typo, so a
misspelt key in the field fails loudly at start instead of silently falling back to a default.
"""

from __future__ import annotations

import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", int, float, str, bool)


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
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where} must be {expected.__name__}, not {value!r}")
        if above is not None and isinstance(value, int | float) and not value > above:
            raise ConfigError(f"{where} must be above {above}, not {value!r}")
        if below is not None and isinstance(value, int | float) and not value < below:
            raise ConfigError(f"{where} must be below {below}, not {value!r}")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, not {value!r}")
        return value

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


@dataclass(frozen=True)
class DisplaySettings:
    fullscreen: bool = True
    width: int = 1920
    height: int = 1080
    language: str = "zh_CN"


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
    status_timeout_s: float = 1.0
    job_timeout_s: float = 15.0


@dataclass(frozen=True)
class HubSettings:
    url: str = "http://127.0.0.1:8702"
    timeout_s: float = 8.0
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
class AutomationSettings:
    enabled: bool = False  # the simulator turns it on; production config must not
    port: int = 8701


@dataclass(frozen=True)
class Config:
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    card: CardSettings = field(default_factory=CardSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    automation: AutomationSettings = field(default_factory=AutomationSettings)


def _optional_path(value: str) -> Path | None:
    return Path(value) if value else None


def _existing_file(where: str, path: Path | None) -> Path | None:
    """A certificate or key named in the config must be there now, not at the first TLS call."""
    if path is not None and not path.is_file():
        raise ConfigError(f"{where}: no such file: {path}")
    return path


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a Config from a TOML document's tables; raise ConfigError naming what is wrong."""
    known = {"terminal", "display", "card", "printer", "hub", "mqtt", "automation"}
    unknown_sections = sorted(set(data) - known)
    if unknown_sections:
        raise ConfigError(f"unknown section(s): {', '.join(unknown_sections)}")
    for name, table in data.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{name}] must be a table")
    sections = {name: _Section(name, data.get(name, {})) for name in known}

    s = sections["terminal"]
    d = TerminalSettings()
    terminal = TerminalSettings(
        terminal_id=s.get("id", d.terminal_id),
        site=s.get("site", d.site),
        timezone=s.get("timezone", d.timezone),
        state_dir=Path(s.get("state_dir", str(d.state_dir))),
        idle_timeout_s=s.get("idle_timeout_s", d.idle_timeout_s, above=9, below=3601),
        content_dir=_optional_path(s.get("content_dir", "")),
    )
    if not terminal.terminal_id.replace("-", "").replace("_", "").isalnum():
        # The id is a topic level and a client id: no '/', '+', '#' or spaces.
        raise ConfigError("[terminal] id may hold only letters, digits, '-' and '_'")
    try:
        zoneinfo.ZoneInfo(terminal.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[terminal] timezone: unknown zone {terminal.timezone!r}") from None

    s = sections["display"]
    dd = DisplaySettings()
    display = DisplaySettings(
        fullscreen=s.get("fullscreen", dd.fullscreen),
        width=s.get("width", dd.width, above=319, below=8000),
        height=s.get("height", dd.height, above=239, below=8000),
        language=s.get("language", dd.language, choices=("zh_CN", "en")),
    )

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
    )
    if printer.paper_mm not in (58, 80):
        raise ConfigError("[printer] paper_mm must be 58 or 80")
    if printer.kind == "network" and not printer.host:
        raise ConfigError("[printer] host must be set for a network printer")
    if printer.kind == "usb" and not (printer.usb_vendor and printer.usb_product):
        raise ConfigError("[printer] usb_vendor and usb_product must be set for a USB printer")
    if printer.kind == "serial" and not printer.serial_device:
        raise ConfigError("[printer] serial_device must be set for a serial printer")

    s = sections["hub"]
    dh = HubSettings()
    hub = HubSettings(
        url=s.get("url", dh.url),
        timeout_s=s.get("timeout_s", dh.timeout_s, above=0.1, below=120),
        ca_file=_existing_file("[hub] ca_file", _optional_path(s.get("ca_file", ""))),
    )
    url = urllib.parse.urlsplit(hub.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError("[hub] url must be http:// or https:// and name a host")

    s = sections["mqtt"]
    dm = MqttSettings()
    mqtt = MqttSettings(
        enabled=s.get("enabled", dm.enabled),
        host=s.get("host", dm.host),
        port=s.get("port", dm.port, above=0, below=65536),
        username=s.get("username", dm.username),
        password=s.get("password", dm.password),
        tls=s.get("tls", dm.tls),
        ca_file=_existing_file("[mqtt] ca_file", _optional_path(s.get("ca_file", ""))),
        cert_file=_existing_file("[mqtt] cert_file", _optional_path(s.get("cert_file", ""))),
        key_file=_existing_file("[mqtt] key_file", _optional_path(s.get("key_file", ""))),
        heartbeat_interval_s=s.get("heartbeat_interval_s", dm.heartbeat_interval_s,
                                   above=0, below=3601),
    )

    s = sections["automation"]
    da = AutomationSettings()
    automation = AutomationSettings(
        enabled=s.get("enabled", da.enabled),
        port=s.get("port", da.port, above=0, below=65536),
    )

    typos = [f"[{name}] {option}" for name, sec in sorted(sections.items())
             for option in sec.unread()]
    if typos:
        raise ConfigError(f"unknown option(s), check the spelling: {', '.join(typos)}")
    return Config(terminal, display, card, printer, hub, mqtt, automation)


def load_config(path: Path | None) -> Config:
    """Read the TOML file at ``path`` (None = all defaults)."""
    if path is None:
        return Config()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    return parse_config(data)

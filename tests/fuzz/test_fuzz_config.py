"""Fuzz the terminal config: whatever a file or a table holds, only ConfigError comes out.

Three properties, from raw bytes up to typed tables. Each allows exactly one outcome besides
ConfigError: a Config the terminal can run on, i.e. one whose id and site the MQTT contract
takes and whose paths, URL and zone the file system, urllib and zoneinfo take. Anything else
raised (UnicodeDecodeError, RecursionError, OverflowError, ValueError from urlsplit) fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts.identifiers import check_site, check_terminal_id
from terminal.config import Config, ConfigError, parse_config, parse_config_bytes

# Documents of thousands of digits or 500 brackets are the point, not a generation accident.
LARGE_INPUTS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- strategies ----------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(300, 400).map(lambda digits: 10**digits),  # beyond any float
    st.floats(),
    st.text(max_size=40),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)),
)
# Anything a TOML value (or a caller's dict) can be, nested a little.
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)

TEXTS = st.text(max_size=80)
PATHS = st.sampled_from(["var/state", "/tmp", "", "/nonexistent/x", "a\x00b", "/" + "x" * 300,
                         "\ud800", "/etc/passwd", "/proc"]) | TEXTS
HOSTS = st.sampled_from(["127.0.0.1", "::1", "fe80::1%eth0", "broker.local.", "a..b", "",
                         "a b", "终端.example", "x" * 64 + ".example", "-x-", "1.2.3.4.5"]) | (
    st.from_regex(r"[a-z0-9._\-]{1,70}", fullmatch=True)) | TEXTS
URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
    st.sampled_from(["127.0.0.1", "[::1]", "[::1", "hub.example", "u:p@hub", "hub\n.x", ""])
    | TEXTS,
    st.sampled_from(["", ":8702", ":0", ":99999", ":x", ":"]),
    st.sampled_from(["", "/", "/api?x=1#f"]) | TEXTS,
) | TEXTS
IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,70}", fullmatch=True) | st.sampled_from(
    ["终端1", "T/1", "T-1\n", "", "T-SIM-0001"]) | TEXTS
INTS = st.integers(min_value=-2, max_value=70_000) | st.integers()
FLOATS = st.floats() | st.integers(min_value=-5, max_value=200)


def _either(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the option's type and range, sometimes anything at all."""
    return st.one_of(good, good, ANY_VALUE)


OPTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "terminal": {
        "id": IDS, "site": TEXTS | st.just(""),
        "timezone": st.sampled_from(["Asia/Shanghai", "UTC", "Asia", "../etc", ""]) | TEXTS,
        "state_dir": PATHS, "idle_timeout_s": INTS, "content_dir": PATHS,
    },
    "display": {
        "fullscreen": st.booleans(), "width": INTS, "height": INTS,
        "language": st.sampled_from(["zh_CN", "en", "fr"]),
    },
    "card": {"reader_filter": TEXTS, "read_timeout_s": FLOATS},
    "printer": {
        "kind": st.sampled_from(["network", "usb", "serial", "bluetooth"]), "host": HOSTS,
        "port": INTS, "usb_vendor": INTS, "usb_product": INTS, "serial_device": PATHS,
        "baudrate": INTS, "paper_mm": st.sampled_from([58, 80, 70]),
        "status_timeout_s": FLOATS, "job_timeout_s": FLOATS,
    },
    "hub": {"url": URLS, "timeout_s": FLOATS, "ca_file": PATHS},
    "mqtt": {
        "enabled": st.booleans(), "host": HOSTS, "port": INTS, "username": TEXTS,
        "password": TEXTS, "tls": st.booleans(), "ca_file": PATHS, "cert_file": PATHS,
        "key_file": PATHS, "heartbeat_interval_s": INTS,
    },
    "automation": {"enabled": st.booleans(), "port": INTS},
}


def _table(options: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    known = st.fixed_dictionaries({}, optional={k: _either(v) for k, v in options.items()})
    typo = st.dictionaries(st.text(max_size=12), ANY_VALUE, max_size=1)
    return st.builds(lambda a, b: {**a, **b}, known, st.one_of(st.just({}), st.just({}), typo))


CONFIG_TABLES = st.builds(
    lambda known, extra: {**known, **extra},
    st.fixed_dictionaries({}, optional={
        name: st.one_of(_table(options), _table(options), ANY_VALUE)
        for name, options in OPTIONS.items()
    }),
    st.one_of(st.just({}), st.just({}), st.dictionaries(st.text(max_size=8), ANY_VALUE,
                                                         max_size=1)),
)

# Lines that broke the loader once, or that TOML parsers are known to trip over.
JUNK_LINES = [
    "a = " + "[" * 500,
    "a = " + "9" * 5000,
    "x = 1e999",
    "[terminal",
    "[[terminal]]",
    "\ufeff",
    'b = """',
    "c = 0x",
    "t = 1979-05-27T25:32:00Z",
    "d = 9999-12-31T23:59:59-00:01",
    "[terminal]\nid = 'T-1'\nid = 'T-2'",
    "e = {a = 1, a = 2}",
]


def _key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _toml(value: Any) -> str:
    """A TOML rendering of ``value``, valid when the value is (JSON escapes are TOML escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**4000 else "1" + "0" * 4400
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise AssertionError(f"no TOML for {value!r}")


@st.composite
def toml_documents(draw: st.DrawFn) -> bytes:
    """A config document rendered from CONFIG_TABLES, with junk lines and a flipped byte or so."""
    lines: list[str] = []
    for name, table in draw(CONFIG_TABLES).items():
        if isinstance(table, Mapping):
            lines.append(f"[{_key(name)}]")
            lines += [f"{_key(k)} = {_toml(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{_key(name)} = {_toml(table)}")  # a value where a table belongs
    for junk in draw(st.lists(st.sampled_from(JUNK_LINES) | st.text(max_size=20), max_size=2)):
        lines.insert(draw(st.integers(0, len(lines))), junk)
    raw = bytearray("\n".join(lines).encode("utf-8", "surrogatepass"))
    for _ in range(draw(st.integers(0, 2))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


# --- what may come out ---------------------------------------------------------------------------


def _assert_usable(config: Config) -> None:
    """A Config came out: the contract, the file system, urllib and zoneinfo all take it."""
    check_terminal_id(config.terminal.terminal_id)
    check_site(config.terminal.site)
    zoneinfo.ZoneInfo(config.terminal.timezone)
    url = urllib.parse.urlsplit(config.hub.url)
    assert url.scheme in ("http", "https") and url.hostname
    assert url.port != 0
    paths: list[Path | None] = [config.terminal.state_dir, config.terminal.content_dir,
                                config.hub.ca_file, config.mqtt.ca_file, config.mqtt.cert_file,
                                config.mqtt.key_file, Path(config.printer.serial_device or ".")]
    for path in paths:
        if path is not None:
            assert "\x00" not in str(path)
            os.fsencode(path)
    for host in (config.printer.host, config.mqtt.host):
        assert host == host.strip() and host.isprintable()


def _load(load: Any, *args: Any) -> None:
    try:
        config = load(*args)
    except ConfigError as e:
        # Which check stopped it, for --hypothesis-show-statistics: "[hub] url", "line 3", ...
        event("ConfigError: " + str(e).split(":")[0].split(" must")[0][:40])
        return
    event("a usable Config")
    _assert_usable(config)


@LARGE_INPUTS
@given(st.binary(max_size=4096))
def test_any_bytes_give_a_usable_config_or_a_config_error(raw: bytes) -> None:
    _load(parse_config_bytes, raw)


@LARGE_INPUTS
@given(toml_documents())
def test_any_toml_like_document_gives_a_usable_config_or_a_config_error(raw: bytes) -> None:
    _load(parse_config_bytes, raw)


@LARGE_INPUTS
@given(CONFIG_TABLES)
def test_any_tables_give_a_usable_config_or_a_config_error(data: dict[str, Any]) -> None:
    _load(parse_config, data)

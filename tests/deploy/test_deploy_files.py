"""Checks on deploy/: systemd units, sysusers, udev rules, and the broker's config and ACL.

The static checks always run. The ones that need a tool (systemd-analyze, systemd-sysusers,
openssl, mosquitto, mosquitto_passwd) skip with the reason when it is missing. The live broker test
starts the real mosquitto with a copy of deploy/mosquitto/kiosk.conf pointed at a throwaway CA and
password file, on a free local port, and stops it at the end.
"""

from __future__ import annotations

import configparser
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from contracts.mqtt import (
    ack_topic,
    command_filter,
    command_topic,
    event_topic,
    heartbeat_topic,
    ota_topic,
    status_topic,
)
from simulator.processes import free_port, stop_process
from terminal.app import WATCHDOG_INTERVAL_S

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
TERMINAL_UNIT = SYSTEMD / "kiosk-terminal.service"
OTA_SERVICE = SYSTEMD / "kiosk-ota.service"
OTA_TIMER = SYSTEMD / "kiosk-ota.timer"
UNIT_FILES = (TERMINAL_UNIT, OTA_SERVICE, OTA_TIMER)
SYSUSERS = DEPLOY / "sysusers.d" / "kiosk.conf"
UDEV_RULES = DEPLOY / "udev" / "99-kiosk.rules"
BROKER_CONF = DEPLOY / "mosquitto" / "kiosk.conf"
BROKER_ACL = DEPLOY / "mosquitto" / "kiosk.acl"
TERMINAL_TOML = DEPLOY / "terminal.toml"


# --- systemd units ---------------------------------------------------------------------------


class _MultiDict(dict[str, Any]):
    """configparser storage that keeps repeated keys (After=, Environment=) instead of the last.

    While reading, configparser stores each option as a list of lines; a repeated key arrives as a
    new list, which is appended here. It later joins each list with newlines, so a repeated key
    reads back as one line per assignment.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self:
            super().__getitem__(key).extend(value)
        else:
            super().__setitem__(key, value)


@dataclass(frozen=True)
class Unit:
    path: Path
    sections: dict[str, dict[str, list[str]]]

    def values(self, section: str, key: str) -> list[str]:
        """Every assignment of ``key``, in order (systemd merges most repeated keys)."""
        return self.sections.get(section, {}).get(key, [])

    def value(self, section: str, key: str) -> str | None:
        """The effective value: the last assignment, as systemd applies for single-value keys."""
        found = self.values(section, key)
        return found[-1] if found else None

    def words(self, section: str, key: str) -> set[str]:
        """Space-separated list keys (After=, Wants=, SupplementaryGroups=) across assignments."""
        return {word for value in self.values(section, key) for word in value.split()}


def load_unit(path: Path) -> Unit:
    parser = configparser.ConfigParser(
        dict_type=_MultiDict,
        strict=False,  # repeated keys are normal in units
        interpolation=None,  # '%' starts a systemd specifier, not configparser interpolation
        comment_prefixes=("#", ";"),
        inline_comment_prefixes=None,  # systemd has none: "x=1 # c" means the value "1 # c"
        empty_lines_in_values=False,
        delimiters=("=",),
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    sections = {
        name: {key: value.split("\n") for key, value in parser.items(name, raw=True)}
        for name in parser.sections()
    }
    return Unit(path, sections)


def seconds(value: str) -> float:
    """A systemd time span such as "30", "30s", "10min" or "2h", in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.mark.parametrize("path", UNIT_FILES, ids=lambda p: p.name)
def test_unit_files_parse_as_ini(path: Path) -> None:
    unit = load_unit(path)
    assert "Unit" in unit.sections
    kind = "Timer" if path.suffix == ".timer" else "Service"
    assert kind in unit.sections, f"{path.name} has no [{kind}] section"
    for section in unit.sections.values():
        for key, values in section.items():
            for value in values:
                assert " #" not in value, (
                    f"{path.name}: {key}={value!r}: systemd has no inline comments, the '#' and "
                    "everything after it would become part of the value"
                )


def test_terminal_unit_runs_the_terminal_under_systemd_supervision() -> None:
    unit = load_unit(TERMINAL_UNIT)
    assert unit.value("Service", "Type") == "notify"
    assert unit.value("Service", "NotifyAccess") == "main"
    assert unit.value("Service", "ExecStart") == (
        "/opt/kiosk/current/venv/bin/kiosk-terminal --config /etc/kiosk/terminal.toml"
    )
    watchdog = unit.value("Service", "WatchdogSec")
    assert watchdog is not None, "WatchdogSec is missing"
    # The UI thread kicks every WATCHDOG_INTERVAL_S: allow at least two missed kicks.
    assert seconds(watchdog) >= 2 * WATCHDOG_INTERVAL_S
    assert unit.value("Service", "Restart") == "always"
    assert unit.value("Unit", "StartLimitBurst") is not None, "Restart=always needs a start limit"
    assert unit.value("Unit", "StartLimitIntervalSec") is not None
    assert {"pcscd.socket", "network-online.target"} <= unit.words("Unit", "After")
    assert {"pcscd.socket", "network-online.target"} <= unit.words("Unit", "Wants")


def test_terminal_unit_never_marks_the_terminal_a_development_rig() -> None:
    # The automation API runs only with this marker in the terminal's environment; the
    # production unit must neither set it nor read an environment file that could.
    unit = load_unit(TERMINAL_UNIT)
    assert not [v for v in unit.values("Service", "Environment") if "KIOSK_DEVELOPMENT" in v]
    assert not unit.values("Service", "EnvironmentFile")
    assert "KIOSK_DEVELOPMENT" in unit.words("Service", "UnsetEnvironment")


def test_terminal_unit_is_unprivileged_and_hardened_without_losing_devices() -> None:
    unit = load_unit(TERMINAL_UNIT)
    assert unit.value("Service", "User") == "kiosk"
    assert {"video", "input", "render", "lp", "dialout"} <= unit.words(
        "Service", "SupplementaryGroups"
    )
    assert unit.value("Service", "NoNewPrivileges") == "yes"
    assert unit.value("Service", "ProtectSystem") == "strict"
    assert unit.value("Service", "PrivateTmp") == "yes"
    assert unit.value("Service", "ProtectHome") == "yes"
    # Under ProtectSystem=strict the state directory must be writable, either way of saying so.
    writable = unit.words("Service", "ReadWritePaths") | {
        f"/var/lib/{name}" for name in unit.words("Service", "StateDirectory")
    }
    state_dir = tomllib.loads(TERMINAL_TOML.read_text(encoding="utf-8"))["terminal"]["state_dir"]
    assert state_dir in writable, f"state_dir {state_dir} is read-only for the terminal"
    # Each of these cuts the terminal off its display, input, USB or serial devices.
    for key, breaking in [
        ("PrivateDevices", "yes"),
        ("ProtectClock", "yes"),  # implies DeviceAllow=char-rtc on systemd 252
        ("PrivateUsers", "yes"),  # supplementary groups stop applying to device nodes
        ("ProcSubset", "pid"),  # hides /proc/stat and /proc/meminfo from the heartbeat
        ("DevicePolicy", "closed"),
        ("DevicePolicy", "strict"),
    ]:
        assert unit.value("Service", key) != breaking, f"{key}={breaking} breaks device access"
    assert not unit.values("Service", "DeviceAllow"), "DeviceAllow= closes the device list"


def test_ota_units_are_a_placeholder_nothing_enables_by_accident() -> None:
    service, timer = load_unit(OTA_SERVICE), load_unit(OTA_TIMER)
    for unit in (service, timer):
        assert "Install" not in unit.sections, f"{unit.path.name} must not be enableable yet"
    command = service.value("Service", "ExecStart")
    assert command is not None
    binary = command.split()[0]
    assert binary.endswith("/kiosk-ota")
    # Outside the A/B slots, so a broken app release cannot break its own rollback.
    assert not binary.startswith("/opt/kiosk/current/")
    # Skipped, not failed, while the client is not installed.
    assert service.value("Unit", "ConditionFileIsExecutable") == binary
    assert service.value("Service", "NoNewPrivileges") == "yes"
    assert timer.value("Timer", "Unit") in (None, OTA_SERVICE.name)


def test_service_users_are_declared_in_sysusers() -> None:
    declared = {
        line.split()[1]
        for line in SYSUSERS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#") and line.split()[0] == "u"
    }
    for path in (TERMINAL_UNIT, OTA_SERVICE):
        user = load_unit(path).value("Service", "User")
        assert user in declared, f"{path.name} runs as {user}, which sysusers.d does not create"


def test_sysusers_file_is_valid() -> None:
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers is not installed")
    result = subprocess.run(
        [tool, "--dry-run", str(SYSUSERS)], capture_output=True, text=True, timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Dry run: says what it would create, touches nothing.
    assert "'kiosk'" in result.stdout + result.stderr


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    # verify refuses an ExecStart whose program does not exist, and neither the release slots
    # nor the OTA client exist here: point /opt/kiosk/ at a fake tree with stub executables.
    fake_opt = tmp_path / "opt" / "kiosk"
    copies = []
    for path in UNIT_FILES:
        text = path.read_text(encoding="utf-8").replace("/opt/kiosk/", f"{fake_opt}/")
        copy = tmp_path / path.name
        copy.write_text(text, encoding="utf-8")
        copies.append(copy)
        for program in re.findall(rf"^ExecStart=({re.escape(str(fake_opt))}/\S+)", text, re.M):
            stub = Path(program)
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n", encoding="utf-8")
            stub.chmod(0o755)
    result = subprocess.run(
        [tool, "verify", "--man=no", *map(str, copies)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings ("file:line: ..."), still not acceptable here.
    problems = [line for line in output.splitlines() if any(str(c) in line for c in copies)]
    assert not problems, "\n".join(problems)


# --- udev rules ------------------------------------------------------------------------------

_UDEV_KEYS = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS",
    "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST",
    "PROGRAM", "RESULT", "OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT",
    "OPTIONS",
}
_UDEV_TOKEN = re.compile(
    r'\s*(?P<key>[A-Z]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)


@dataclass
class UdevRule:
    line: int
    tokens: list[tuple[str, str | None, str, str]] = field(default_factory=list)

    def get(self, key: str, attr: str | None = None) -> list[str]:
        return [v for k, a, _op, v in self.tokens if k == key and (attr is None or a == attr)]


def load_udev_rules(path: Path) -> list[UdevRule]:
    rules = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        rule = UdevRule(number)
        for part in re.split(r",(?=\s*[A-Z]+(?:\{[^}]*\})?\s*(?:==|!=|\+=|-=|:=|=)\s*\")", line):
            match = _UDEV_TOKEN.fullmatch(part)
            assert match, f"{path.name}:{number}: cannot parse {part!r}"
            key, op = match["key"], match["op"]
            assert key in _UDEV_KEYS, f"{path.name}:{number}: unknown key {key}"
            rule.tokens.append((key, match["attr"], op, match["value"]))
        rules.append(rule)
    return rules


def test_udev_rules_parse_and_every_goto_has_its_label() -> None:
    rules = load_udev_rules(UDEV_RULES)
    labels = {value for rule in rules for value in rule.get("LABEL")}
    for rule in rules:
        for target in rule.get("GOTO"):
            assert target in labels, f"line {rule.line}: GOTO {target} has no LABEL"
        for key, _attr, op, _value in rule.tokens:
            if key in {"ACTION", "KERNEL", "KERNELS", "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTRS"}:
                assert op in ("==", "!="), f"line {rule.line}: {key} can only be matched"


def test_udev_rules_name_the_kiosk_devices() -> None:
    rules = load_udev_rules(UDEV_RULES)

    def rules_linking(name: str) -> list[UdevRule]:
        return [r for r in rules if any(name in v.split() for v in r.get("SYMLINK"))]

    printer = rules_linking("kiosk-printer")
    assert printer and all(r.get("GROUP") == ["lp"] for r in printer)
    ids = {
        (r.get("ATTR", "idVendor")[0], r.get("ATTR", "idProduct")[0])
        for r in rules if r.get("ATTR", "idVendor") and r.get("ATTR", "idProduct")
    }
    assert {("0416", "5011"), ("0483", "5720"), ("28e9", "0289")} <= ids
    assert any("*:0701??:*" in r.get("ENV", "ID_USB_INTERFACES") for r in rules)
    controller = rules_linking("kiosk-controller")
    assert controller and all(r.get("ATTRS", "serial") for r in controller)
    assert all(r.get("GROUP") == ["dialout"] for r in controller)
    assert rules_linking("kiosk-scanner")
    usblp = [r for r in rules if r.get("DRIVER") == ["usblp"]]
    assert usblp and any("usblp/unbind" in v for r in usblp for v in r.get("RUN"))


# --- broker ACL and config -------------------------------------------------------------------


@dataclass(frozen=True)
class AclGrant:
    user: str | None  # None: a `pattern` line, which applies to every user with %u substituted
    access: str  # read | write | readwrite
    topic: str


def load_acl(path: Path) -> list[AclGrant]:
    grants, user = [], None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "user":
            user = rest.strip()
            continue
        parts = rest.split()
        assert keyword in ("topic", "pattern") and len(parts) in (1, 2), f"bad ACL line {line!r}"
        access, topic = ("readwrite", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        assert access in ("read", "write", "readwrite", "deny"), f"bad access in {line!r}"
        if keyword == "topic":
            assert user is not None, f"{line!r} applies to anonymous clients"
            grants.append(AclGrant(user, access, topic))
        else:
            grants.append(AclGrant(None, access, topic))
    return grants


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard matching, also for a filter against a subscription that has '+' in it."""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def allowed(grants: list[AclGrant], username: str, access: str, topic: str) -> bool:
    for grant in grants:
        if grant.user not in (None, username) or grant.access not in (access, "readwrite"):
            continue
        if topic_matches(grant.topic.replace("%u", username), topic):
            return True
    return False


def test_acl_keeps_every_terminal_in_its_own_subtree() -> None:
    grants = load_acl(BROKER_ACL)
    patterns = [g for g in grants if g.user is None]
    assert patterns, "no pattern lines for terminals"
    for grant in patterns:
        assert grant.topic.startswith("kiosk/v1/%u/"), f"pattern {grant.topic} escapes the subtree"
        assert "#" not in grant.topic, f"pattern {grant.topic}: terminals get exact topics only"
    assert {(g.access, g.topic) for g in patterns} == {
        ("write", "kiosk/v1/%u/status"),
        ("write", "kiosk/v1/%u/heartbeat"),
        ("write", "kiosk/v1/%u/event"),
        ("write", "kiosk/v1/%u/ota"),
        ("write", "kiosk/v1/%u/cmd/+/ack"),
        ("read", "kiosk/v1/%u/cmd/+"),
    }


def test_acl_grants_what_the_contract_needs_and_nothing_across_terminals() -> None:
    grants = load_acl(BROKER_ACL)
    me, other = "T-330300-0001", "T-330300-0002"
    for topic in (status_topic(me), heartbeat_topic(me), event_topic(me), ota_topic(me),
                  ack_topic(me, "r-1")):
        assert allowed(grants, me, "write", topic), topic
        assert not allowed(grants, other, "write", topic), f"{other} may write {topic}"
        assert not allowed(grants, "fleet", "write", topic), f"fleet may impersonate on {topic}"
    assert allowed(grants, me, "read", command_filter(me))
    assert not allowed(grants, other, "read", command_filter(me))
    assert not allowed(grants, me, "write", command_topic(me, "r-1")), "a terminal sends commands"
    assert not allowed(grants, me, "read", "kiosk/v1/#")
    assert allowed(grants, "fleet", "read", "kiosk/v1/#")
    assert allowed(grants, "fleet", "write", command_topic(me, "r-1"))


def load_broker_conf(path: Path) -> list[tuple[str, str]]:
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            entries.append((key, value.strip()))
    return entries


def test_broker_config_is_tls_only_and_authenticated() -> None:
    entries = load_broker_conf(BROKER_CONF)
    settings = dict(entries)  # global options appear once each
    assert ("allow_anonymous", "true") not in entries
    assert settings.get("allow_anonymous") == "false"
    assert settings.get("per_listener_settings", "false") == "false"
    assert "acl_file" in settings
    assert "password_file" in settings or settings.get("use_identity_as_username") == "true"
    # Every listener carries its own TLS settings (they belong to the listener above them).
    listeners: list[dict[str, str]] = []
    for key, value in entries:
        if key == "listener":
            listeners.append({"listener": value})
        elif listeners:
            listeners[-1][key] = value
    assert listeners, "no listener: mosquitto 2 would listen on localhost:1883 only, without TLS"
    for listener in listeners:
        assert {"cafile", "certfile", "keyfile"} <= listener.keys(), f"no TLS on {listener}"
        assert listener.get("tls_version") in ("tlsv1.2", "tlsv1.3")
    assert [listener["listener"].split()[0] for listener in listeners] == ["8883"]


# --- the real broker with this config --------------------------------------------------------

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TERMINAL_A, TERMINAL_B = "T-TEST-0001", "T-TEST-0002"


def _run(*command: str | Path) -> None:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=20, check=False)
    assert result.returncode == 0, f"{command[0]} failed: {result.stderr}"


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a broker certificate for 127.0.0.1, with the openssl CLI."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "broker.pem", directory / "broker.key", directory / "broker.csr"
    ext = directory / "broker.ext"
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")  # fast to make
    _run("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=kiosk-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _run("openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n", encoding="utf-8")
    _run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "1",
         "-days", "2", "-out", cert, "-extfile", ext)
    return ca, cert, key


def broker_config_for(directory: Path, port: int, files: dict[str, Path]) -> Path:
    """The production layout in ``directory``: Debian's main mosquitto.conf including conf.d/,
    where deploy's kiosk.conf sits with only its port and file paths swapped for the test's."""
    replaced: set[str] = set()
    lines = []
    for line in BROKER_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            # Only this machine can reach the test broker.
            lines.append(f"listener {port} 127.0.0.1")
            replaced.add(key)
        elif key in files:
            lines.append(f"{key} {files[key]}")
            replaced.add(key)
        else:
            lines.append(line)
    assert replaced == {"listener", *files}, f"not found in kiosk.conf: {set(files) - replaced}"
    conf_d = directory / "conf.d"
    conf_d.mkdir()
    (conf_d / "kiosk.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Debian's /etc/mosquitto/mosquitto.conf, with its paths moved into the test directory: a
    # kiosk.conf that repeated one of these string options would make mosquitto refuse to start.
    main = [
        f"pid_file {directory / 'mosquitto.pid'}",
        "persistence true",
        f"persistence_location {directory}/",
        f"log_dest file {directory / 'mosquitto.log'}",
        f"include_dir {conf_d}",
    ]
    if os.geteuid() == 0:
        # As root, mosquitto switches to the 'mosquitto' user, who cannot read the test dir.
        main.append("user root")
    config = directory / "mosquitto.conf"
    config.write_text("\n".join(main) + "\n", encoding="utf-8")
    return config


@dataclass(frozen=True)
class Broker:
    port: int
    ca: Path
    passwords: dict[str, str]  # empty when mosquitto_passwd is not installed


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip("mosquitto is not installed (Debian package 'mosquitto')")
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    ca, cert, key = make_pki(tmp_path)
    password_file = tmp_path / "kiosk.passwd"
    password_file.write_text("", encoding="utf-8")
    passwords: dict[str, str] = {}
    tool = shutil.which("mosquitto_passwd")
    if tool is not None:
        for user in (TERMINAL_A, TERMINAL_B, "fleet"):
            passwords[user] = secrets.token_urlsafe(12)  # made up for this run only
            _run(tool, "-b", password_file, user, passwords[user])
    acl = tmp_path / "kiosk.acl"
    shutil.copyfile(BROKER_ACL, acl)
    port = free_port()
    config = broker_config_for(tmp_path, port, {
        "cafile": ca, "certfile": cert, "keyfile": key,
        "password_file": password_file, "acl_file": acl,
    })
    process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:
            if process.poll() is not None:
                log = tmp_path / "mosquitto.log"
                details = log.read_text(encoding="utf-8") if log.exists() else ""
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"mosquitto exited with {process.returncode}: {stderr}{details}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not listen within 5 s"
                time.sleep(0.02)
        yield Broker(port, ca, passwords)
    finally:
        stop_process(process)
        if process.stderr:
            process.stderr.close()


class Client:
    """One paho client driven from the test thread (no network thread to clean up)."""

    def __init__(self, broker: Broker, client_id: str, username: str | None = None,
                 password: str | None = None, tls_max: ssl.TLSVersion | None = None) -> None:
        self.connack: ReasonCode | None = None
        self.subacks: list[ReasonCode] = []
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311)
        context = ssl.create_default_context(cafile=str(broker.ca))
        if tls_max is not None:
            context.maximum_version = tls_max
        self.client.tls_set_context(context)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=10)

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode,
                    _p: object) -> None:
        self.connack = reason

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode],
                      _p: object) -> None:
        self.subacks.extend(reasons)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop(timeout=0.05)


def pump(clients: list[Client], until: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    """Run every client's network loop until ``until()`` holds; False if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for client in clients:
            client.client.loop(timeout=0.01)
        if until():
            return True
    return False


def refused(client: Client) -> bool:
    return client.connack is not None and client.connack.is_failure


@pytest.mark.mosquitto
def test_broker_starts_with_this_config_and_refuses_anonymous_clients(broker: Broker) -> None:
    anonymous = Client(broker, "anonymous")
    assert pump([anonymous], lambda: anonymous.connack is not None), "no CONNACK"
    assert refused(anonymous), f"anonymous client accepted: {anonymous.connack}"

    # Plain MQTT on the TLS port: a CONNECT in clear text must never get a CONNACK (0x20).
    with socket.create_connection(("127.0.0.1", broker.port), timeout=2) as plain:
        plain.sendall(bytes([0x10, 0x10, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 4]) + b"anon")
        try:
            reply = plain.recv(16)
        except (TimeoutError, ConnectionResetError):
            reply = b""
    assert not reply.startswith(b"\x20"), "the TLS listener answered plain MQTT"


@pytest.mark.mosquitto
def test_broker_applies_passwords_tls_versions_and_the_acl(broker: Broker) -> None:
    if not broker.passwords:
        pytest.skip("mosquitto_passwd is not installed, so no client can authenticate")
    pw = broker.passwords
    wrong = Client(broker, "wrong-password", TERMINAL_A, "not-the-password")
    # TLS 1.2 is the floor, not the only version: a TLS 1.3 client (OpenSSL's default) connects.
    fleet = Client(broker, "fleet-monitor", "fleet", pw["fleet"])
    a = Client(broker, TERMINAL_A, TERMINAL_A, pw[TERMINAL_A], tls_max=ssl.TLSVersion.TLSv1_2)
    b = Client(broker, TERMINAL_B, TERMINAL_B, pw[TERMINAL_B])
    clients = [wrong, fleet, a, b]
    try:
        assert pump(clients, lambda: all(c.connack is not None for c in clients)), "no CONNACK"
        assert refused(wrong), "a wrong password was accepted"
        for name, client in (("fleet", fleet), (TERMINAL_A, a), (TERMINAL_B, b)):
            assert not refused(client), f"{name} refused: {client.connack}"
        assert a.client.socket().version() == "TLSv1.2"  # type: ignore[union-attr]
        assert fleet.client.socket().version() == "TLSv1.3"  # type: ignore[union-attr]

        fleet.client.subscribe("kiosk/v1/#", qos=1)
        a.client.subscribe(command_filter(TERMINAL_A), qos=1)
        b.client.subscribe(command_filter(TERMINAL_A), qos=1)  # another terminal's commands
        assert pump(clients, lambda: len(fleet.subacks + a.subacks + b.subacks) == 3)
        assert not fleet.subacks[0].is_failure
        assert not a.subacks[0].is_failure
        # B's subscription may well be granted: mosquitto checks read access on every message it
        # would deliver, not on the SUBSCRIBE. What counts is that B never receives A's commands.

        # Denied publishes vanish silently, so each client ends with an allowed one: once that
        # arrives, the broker has handled everything the client sent before it.
        b.client.publish(heartbeat_topic(TERMINAL_A), b"forged by B", qos=1)
        b.client.publish(heartbeat_topic(TERMINAL_B), b"B end", qos=1)
        a.client.publish(command_topic(TERMINAL_A, "self"), b"A commanding itself", qos=1)
        a.client.publish(heartbeat_topic(TERMINAL_A), b"A end", qos=1)
        fleet.client.publish(status_topic(TERMINAL_A), b"forged by fleet", qos=1)
        fleet.client.publish(command_topic(TERMINAL_A, "r-1"), b"fleet command", qos=1)
        assert pump(clients, lambda: {b"B end", b"A end", b"fleet command"}
                    <= {p for _t, p in fleet.messages})
        assert pump(clients, lambda: b"fleet command" in {p for _t, p in a.messages})
        a.client.publish(ack_topic(TERMINAL_A, "r-1"), b"A ack", qos=1)
        assert pump(clients, lambda: b"A ack" in {p for _t, p in fleet.messages})

        seen = {p for _t, p in fleet.messages}
        assert b"forged by B" not in seen, "terminal B wrote to A's subtree"
        assert b"A commanding itself" not in seen, "a terminal wrote a command"
        assert b"forged by fleet" not in seen, "the fleet account impersonated a terminal"
        assert [p for _t, p in a.messages] == [b"fleet command"]
        assert b.messages == []
    finally:
        for client in clients:
            client.close()

"""The maintenance desk: the staff menu's self-test, status, paper refilled and restart.

The maintenance flow asks for ``Maintain(task)`` effects; the effect runner calls ``perform`` on
its maintenance lane, off the UI thread. Everything here is about the terminal itself: devices,
counters, versions and its own addresses, never a resident. No shell-outs: addresses and routes
come from the kernel through the stdlib (ioctl, /proc), and each device is asked through the
project's own drivers by the probes plugged in at the composition root.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from devices.base import DeviceError, DeviceState, Health
from devices.printer.protocol import PrinterReason, RealtimeStatus, device_state
from flows.maintenance_report import (
    SELF_TEST_DEVICES,
    CheckResult,
    DeviceCheck,
    MaintenanceTask,
    PrinterDetail,
    SelfTestReport,
    TerminalStatus,
)
from terminal.operations import version
from terminal.paper_roll import PaperRoll

log = logging.getLogger(__name__)

Probe = Callable[[], DeviceCheck]
# What a printer status query gives: the decoded DLE EOT bytes (every flag known), or only the
# DeviceState the driver's ``status()`` maps them to (ReceiptPrinter keeps the bytes to itself).
PrinterReading = RealtimeStatus | DeviceState

PROBE_TIMEOUT_S = 5.0
RESTART_DELAY_S = 2.0  # long enough for the "restarting" screen to be read, short enough to wait
NO_ANSWER = "no_answer"  # a probe that did not return within its bound
PROBE_ERROR = "error"  # a probe that raised; the detail names the exception's type, nothing more

T = TypeVar("T")

_NO_COUNTERS: Mapping[str, object] = {}
_NO_DEVICES: Mapping[str, DeviceState] = {}


# --- running a call within a bound --------------------------------------------------------------


@dataclass
class _Pending(Generic[T]):
    """One call on its own daemon thread; ``done`` is set once it returned or raised."""

    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None


def _start(call: Callable[[], T], name: str) -> _Pending[T]:
    pending: _Pending[T] = _Pending()

    def run() -> None:
        try:
            pending.value = call()
        except BaseException as e:  # handed to the waiting side, which reduces it to a type name
            pending.error = e
        finally:
            pending.done.set()

    # A daemon thread, not an executor's: a call that never returns must not hold up the
    # interpreter's exit (concurrent.futures joins its workers at exit).
    threading.Thread(target=run, name=name, daemon=True).start()
    return pending


def _elapsed_ms(start: float) -> str:
    return f"{round((time.monotonic() - start) * 1000)} ms"


# --- probe builders -------------------------------------------------------------------------------


def check_from_state(device: str, state: DeviceState, detail: str = "") -> DeviceCheck:
    """A device's state as a verdict: ok passes, degraded warns, fault fails; the reason kept."""
    if state.health is Health.OK:
        return DeviceCheck(device, CheckResult.PASSED, "", detail)
    result = CheckResult.WARNING if state.health is Health.DEGRADED else CheckResult.FAILED
    return DeviceCheck(device, result, state.reason, detail)


def state_probe(name: str, state_fn: Callable[[], DeviceState]) -> Probe:
    """A probe from a device's own state call (card reader, scanner, camera, ID reader); the
    driver bounds its call, the desk bounds the probe again."""

    def probe() -> DeviceCheck:
        return check_from_state(name, state_fn())

    return probe


def printer_state(reading: PrinterReading) -> DeviceState:
    return device_state(reading) if isinstance(reading, RealtimeStatus) else reading


def printer_probe(status_fn: Callable[[], PrinterReading], roll: PaperRoll | None = None) -> Probe:
    """A live status query of the printer (DLE EOT), with the paper roll's estimate folded in
    when one is given; the detail is the roll's count, ``312/1500``, when it is counted."""

    def probe() -> DeviceCheck:
        state = printer_state(status_fn())
        detail = ""
        if roll is not None:
            state = roll.with_estimate(state)
            if roll.capacity:
                detail = f"{roll.count}/{roll.capacity}"
        return check_from_state("printer", state, detail)

    return probe


def network_probe(
    addresses: Callable[[], tuple[str, ...]] | None = None,
    has_default_route: Callable[[], bool] | None = None,
) -> Probe:
    """The network is up when there is a default route and at least one address that is not
    loopback; the detail is how many addresses there are."""
    find_addresses = addresses or interface_addresses
    find_route = has_default_route or default_route

    def probe() -> DeviceCheck:
        count = len(find_addresses())
        if count == 0:
            return DeviceCheck("network", CheckResult.FAILED, "no_address", "0")
        if not find_route():
            return DeviceCheck("network", CheckResult.FAILED, "no_default_route", str(count))
        return DeviceCheck("network", CheckResult.PASSED, "", str(count))

    return probe


def _socket_failure(device: str, error: OSError, start: float) -> DeviceCheck:
    """A connection attempt's failure as a stable reason; the error's text never leaves here."""
    if isinstance(error, socket.gaierror):
        reason = "no_address"  # the name did not resolve
    elif isinstance(error, ConnectionRefusedError):
        reason = "refused"
    elif isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        reason = "timeout"
    else:
        reason = "unreachable"
    return DeviceCheck(device, CheckResult.FAILED, reason, _elapsed_ms(start))


def tcp_probe(host: str, port: int, timeout: float = 3.0, *, device: str = "broker") -> Probe:
    """A TCP connect to ``host:port`` (the MQTT broker) within ``timeout``; the detail is the
    connect time. Only the connection is opened: no MQTT session disturbs the telemetry's."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535")

    def probe() -> DeviceCheck:
        start = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as e:
            return _socket_failure(device, e, start)
        return DeviceCheck(device, CheckResult.PASSED, "", _elapsed_ms(start))

    return probe


def http_probe(
    url: str, timeout: float = 3.0, *, ca_file: Path | None = None, device: str = "hub"
) -> Probe:
    """A GET of ``url`` (the hub's base URL): any HTTP answer within ``timeout`` passes, whatever
    its status, since the hub has no health call and its base path may well answer 404. The
    detail is the time to the answer's status line. https is checked against ``ca_file`` (else
    the system's CAs), as the hub adapter checks it."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("url must be http(s)://host[:port][/path]")
    host = parts.hostname
    port = parts.port
    path = parts.path or "/"

    def probe() -> DeviceCheck:
        # Imported here: http.client (with email's parsers) and ssl are needed only when staff
        # test, never on the way to the first screen.
        import http.client  # noqa: PLC0415
        import ssl  # noqa: PLC0415

        start = time.monotonic()
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            # No body, no proxies (http.client reads no environment), nothing about a resident.
            connection.request("GET", path, headers={"Accept-Encoding": "identity",
                                                     "Connection": "close"})
            connection.getresponse().close()
        except http.client.HTTPException:
            return DeviceCheck(device, CheckResult.FAILED, "bad_answer", _elapsed_ms(start))
        except ssl.SSLError:  # a certificate the hub's CA did not sign, or no TLS at all
            return DeviceCheck(device, CheckResult.FAILED, "tls_error", _elapsed_ms(start))
        except OSError as e:
            return _socket_failure(device, e, start)
        finally:
            connection.close()
        return DeviceCheck(device, CheckResult.PASSED, "", _elapsed_ms(start))

    return probe


def call_probe(name: str, call: Callable[[], object]) -> Probe:
    """A round trip that must simply succeed (the co-processor's ``request("ping")``); the
    detail is its time. A device error fails with its own reason code."""

    def probe() -> DeviceCheck:
        start = time.monotonic()
        try:
            call()
        except DeviceError as e:
            # Device errors carry a stable code by contract; their message is not shown.
            return DeviceCheck(name, CheckResult.FAILED, e.reason, _elapsed_ms(start))
        return DeviceCheck(name, CheckResult.PASSED, "", _elapsed_ms(start))

    return probe


# --- the terminal's own network facts -------------------------------------------------------------


SIOCGIFADDR = 0x8915  # linux/sockios.h: an interface's (first) IPv4 address
_IFREQ_SIZE = 40  # struct ifreq on 64-bit Linux; the address sits at bytes 20..23
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200  # the kernel's own "unreachable" IPv6 default on lo is not a route out


def _ipv4_of(sock: socket.socket, name: str) -> str | None:
    request = struct.pack(f"{_IFREQ_SIZE}s", name.encode()[:15])
    try:
        reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
    except OSError:
        return None  # EADDRNOTAVAIL: the interface has no IPv4 address
    return socket.inet_ntoa(reply[20:24])


def _ipv6_by_interface(path: Path) -> dict[str, list[str]]:
    """Global and unique-local IPv6 addresses per interface from /proc/net/if_inet6.

    Link-local addresses are left out: they only mean something on the wire they sit on, and are
    no use to anyone reading the status page to reach or locate the terminal.
    """
    found: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except OSError:
        return found  # no IPv6 in this kernel
    for line in lines:
        fields = line.split()
        if len(fields) != 6:
            continue
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        except ValueError:
            continue
        if address.is_loopback or address.is_link_local:
            continue
        found.setdefault(fields[5], []).append(str(address))
    return found


def interface_addresses(proc_net: Path = Path("/proc/net")) -> tuple[str, ...]:
    """This terminal's addresses, ``"eth0 192.168.1.20"`` style, loopback left out: the first
    IPv4 address of each interface (SIOCGIFADDR), then its IPv6 addresses."""
    ipv6 = _ipv6_by_interface(proc_net / "if_inet6")
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            ipv4 = _ipv4_of(sock, name)
            if ipv4 is not None and not ipaddress.IPv4Address(ipv4).is_loopback:
                found.append(f"{name} {ipv4}")
            found.extend(f"{name} {address}" for address in ipv6.get(name, ()))
    return tuple(found)


def default_route(proc_net: Path = Path("/proc/net")) -> bool:
    """Whether the kernel has a default route (IPv4 or IPv6) out through a real interface."""
    with contextlib.suppress(OSError):
        for line in (proc_net / "route").read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            # Iface Destination Gateway Flags ...; the default has destination 0 and mask 0.
            if (len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000"
                    and int(fields[3], 16) & _RTF_UP):
                return True
    with contextlib.suppress(OSError):
        for line in (proc_net / "ipv6_route").read_text(encoding="ascii").splitlines():
            fields = line.split()
            # dest, dest prefix, source, source prefix, next hop, metric, refs, use, flags, iface
            if (len(fields) == 10 and int(fields[0], 16) == 0 and fields[1] == "00"
                    and fields[9] != "lo" and not int(fields[8], 16) & _RTF_REJECT):
                return True
    return False


def content_version(catalogue_version: str, catalogue_file: Path | None = None) -> str:
    """The content's version: the catalogue's own ``version`` when it has one; else the first
    12 hex digits of the catalogue file's SHA-256, ``sha256:1a2b3c4d5e6f`` (content is replaced
    as a whole file, so its hash names it exactly; an mtime changes with a mere copy); else
    ``unknown``."""
    if catalogue_version:
        return catalogue_version
    if catalogue_file is not None:
        with contextlib.suppress(OSError):
            return "sha256:" + hashlib.sha256(catalogue_file.read_bytes()).hexdigest()[:12]
    return "unknown"


# --- the desk -------------------------------------------------------------------------------------


class MaintenanceDesk:
    """Answers each MaintenanceTask; see the module docstring.

    ``probes``: a probe per device in SELF_TEST_DEVICES this terminal has (the rest read
    NOT_FITTED); ``printer_status`` a live status query (None: no printer). ``counters``,
    ``devices``: today's counters and the device monitor's states, as the heartbeat has them.
    ``on_refilled`` runs after the roll's count is reset, ``request_restart`` ``restart_delay_s``
    after a restart is asked for. Every probe and the printer query are bounded by
    ``probe_timeout_s``; all of them run at once, so a self-test takes at most about that long.
    """

    def __init__(
        self,
        *,
        terminal_id: str,
        site: str,
        probes: Mapping[str, Probe],
        roll: PaperRoll,
        printer_status: Callable[[], PrinterReading] | None,
        counters: Callable[[], Mapping[str, object]],
        devices: Callable[[], Mapping[str, DeviceState]],
        on_refilled: Callable[[], None],
        request_restart: Callable[[], None],
        content_version: Callable[[], str],
        software_version: Callable[[], str] = version,
        addresses: Callable[[], tuple[str, ...]] = interface_addresses,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
        restart_delay_s: float = RESTART_DELAY_S,
    ) -> None:
        unknown = set(probes) - set(SELF_TEST_DEVICES)
        if unknown:
            # A misspelt name would otherwise read NOT_FITTED forever without anyone noticing.
            raise ValueError(f"no such self-test device: {', '.join(sorted(unknown))}")
        if not probe_timeout_s > 0:
            raise ValueError("probe_timeout_s must be above 0")
        if restart_delay_s < 0:
            raise ValueError("restart_delay_s must not be negative")
        self._terminal_id = terminal_id
        self._site = site
        self._probes = dict(probes)
        self._roll = roll
        self._printer_status = printer_status
        self._counters = counters
        self._devices = devices
        self._on_refilled = on_refilled
        self._request_restart = request_restart
        self._content_version = content_version
        self._software_version = software_version
        self._addresses = addresses
        self._timeout_s = probe_timeout_s
        self._restart_delay_s = restart_delay_s
        self._lock = threading.Lock()
        # Calls still running after their bound: not started again while they hang, so pressing
        # "self-test" on a dead device again and again cannot pile up stuck threads.
        self._hung: dict[str, threading.Event] = {}
        self._restart_timer: threading.Timer | None = None

    def perform(self, task: MaintenanceTask) -> object:
        """Do ``task``: a SelfTestReport, a TerminalStatus, or None for the other two."""
        match task:
            case MaintenanceTask.SELF_TEST:
                return self.self_test()
            case MaintenanceTask.STATUS:
                return self.status()
            case MaintenanceTask.PAPER_REFILLED:
                self.paper_refilled()
                return None
            case MaintenanceTask.RESTART:
                self.restart()
                return None
        raise ValueError(f"unknown maintenance task {task!r}")  # pragma: no cover - exhaustive

    # --- self-test -----------------------------------------------------------------------------

    def self_test(self) -> SelfTestReport:
        """One check per device, in SELF_TEST_DEVICES order, all probed at once."""
        deadline = time.monotonic() + self._timeout_s
        started: dict[str, _Pending[DeviceCheck] | None] = {
            name: self._begin(name, probe) for name, probe in self._probes.items()
        }
        checks = []
        for device in SELF_TEST_DEVICES:
            if device not in started:
                checks.append(DeviceCheck(device, CheckResult.NOT_FITTED))
                continue
            pending = started[device]
            if pending is not None:
                pending.done.wait(max(0.0, deadline - time.monotonic()))
            checks.append(self._verdict(device, pending))
        report = SelfTestReport(tuple(checks))
        log.info("maintenance self-test: %s", ", ".join(
            f"{c.device} {c.result.value}{' ' + c.reason if c.reason else ''}" for c in checks))
        return report

    def _begin(self, name: str, call: Callable[[], T]) -> _Pending[T] | None:
        """Start ``call`` unless the last one under ``name`` is still hanging (then None)."""
        with self._lock:
            hung = self._hung.get(name)
            if hung is not None:
                if not hung.is_set():
                    return None
                del self._hung[name]
        return _start(call, f"maintenance-{name}")

    def _left_hanging(self, name: str, pending: _Pending[T]) -> None:
        with self._lock:
            self._hung[name] = pending.done

    def _verdict(self, device: str, pending: _Pending[DeviceCheck] | None) -> DeviceCheck:
        timeout = f"{self._timeout_s:g} s"
        if pending is None:
            return DeviceCheck(device, CheckResult.FAILED, NO_ANSWER, timeout)
        if not pending.done.is_set():
            self._left_hanging(device, pending)
            log.warning("self-test: %s gave no answer within %s", device, timeout)
            return DeviceCheck(device, CheckResult.FAILED, NO_ANSWER, timeout)
        if pending.error is not None:
            kind = type(pending.error).__name__
            # The type only: an exception's message may quote anything, a card's data included.
            log.warning("self-test: %s probe raised %s", device, kind)
            return DeviceCheck(device, CheckResult.FAILED, PROBE_ERROR, kind)
        check = pending.value
        if not isinstance(check, DeviceCheck):
            log.warning("self-test: %s probe returned %s", device, type(check).__name__)
            return DeviceCheck(device, CheckResult.FAILED, PROBE_ERROR, type(check).__name__)
        # The desk's name for it is the one staff read, whatever name the probe was built with.
        return check if check.device == device else replace(check, device=device)

    # --- status --------------------------------------------------------------------------------

    def status(self) -> TerminalStatus:
        """What the status pages show; any one part failing leaves the others intact."""
        return TerminalStatus(
            terminal_id=self._terminal_id,
            site=self._site,
            software_version=self._guarded("software version", self._software_version, "unknown"),
            content_version=self._guarded("content version", self._content_version, "unknown"),
            addresses=self._guarded("addresses", self._addresses, ()),
            printer=self.printer_detail(),
            counters=dict(self._guarded("counters", self._counters, _NO_COUNTERS)),
            devices=dict(self._guarded("device states", self._devices, _NO_DEVICES)),
        )

    def printer_detail(self) -> PrinterDetail:
        """The printer's answer to a live status query, and the paper roll's count."""
        reading = self._read_printer()
        if isinstance(reading, RealtimeStatus):
            near_end: bool | None = reading.paper_near_end
            paper_out: bool | None = reading.paper_end or reading.paper_end_stop
            cover_open: bool | None = reading.cover_open
            state = device_state(reading)
        else:
            state = reading
            near_end, paper_out, cover_open = _flags_from_state(state)
        return PrinterDetail(
            state=self._roll.with_estimate(state),
            paper_near_end=near_end,
            paper_out=paper_out,
            cover_open=cover_open,
            receipts_since_refill=self._roll.count,
            roll_capacity=self._roll.capacity,
        )

    def _read_printer(self) -> PrinterReading:
        status_fn = self._printer_status
        if status_fn is None:
            return DeviceState.fault("absent")
        pending = self._begin("printer-status", status_fn)
        if pending is None or not pending.done.wait(self._timeout_s):
            if pending is not None:
                self._left_hanging("printer-status", pending)
            log.warning("printer status: no answer within %g s", self._timeout_s)
            return DeviceState.fault(PrinterReason.NO_RESPONSE)
        if pending.error is not None or pending.value is None:
            kind = type(pending.error).__name__
            log.warning("printer status query raised %s", kind)
            reason = (pending.error.reason if isinstance(pending.error, DeviceError)
                      else PrinterReason.OFFLINE)
            return DeviceState.fault(reason)
        return pending.value

    def _guarded(self, what: str, call: Callable[[], T], fallback: T) -> T:
        try:
            return call()
        except Exception as e:  # one broken part must not blank the whole status page
            log.warning("maintenance status: %s failed: %s", what, type(e).__name__)
            return fallback

    # --- paper and restart ---------------------------------------------------------------------

    def paper_refilled(self) -> None:
        """Staff put in a new roll: the count starts again, and the printer's state is reported
        again at once (the heartbeat's paper warning, and the fleet's alert, clear now)."""
        self._roll.refilled()
        try:
            self._on_refilled()
        except Exception as e:  # the count is reset either way; the next poll reports it
            log.warning("after the paper refill: reporting the printer failed: %s",
                        type(e).__name__)

    def restart(self) -> None:
        """Restart the application ``restart_delay_s`` from now, so the "restarting" screen is
        seen first; asking again while one is pending changes nothing."""
        with self._lock:
            if self._restart_timer is not None:
                return
            timer = threading.Timer(self._restart_delay_s, self._restart_now)
            timer.name = "maintenance-restart"
            timer.daemon = True
            self._restart_timer = timer
        log.info("maintenance: application restart in %g s", self._restart_delay_s)
        timer.start()

    def _restart_now(self) -> None:
        try:
            self._request_restart()
        finally:
            # Should the restart not happen after all, staff can ask again.
            with self._lock:
                self._restart_timer = None


def _flags_from_state(state: DeviceState) -> tuple[bool | None, bool | None, bool | None]:
    """(near end, paper out, cover open) as far as a DeviceState tells them.

    The driver maps the status bytes to one reason, the first fault winning, so only what the
    reason implies is known: with the cover open the paper sensors are not read (None); without
    an answer nothing is.
    """
    reason = state.reason
    if reason in (PrinterReason.OFFLINE, PrinterReason.NO_RESPONSE, "absent"):
        return None, None, None
    if reason == PrinterReason.COVER_OPEN:
        return None, None, True
    if reason == PrinterReason.PAPER_OUT:
        return None, True, False
    if state.health is Health.FAULT:
        # Cutter or other errors: device_state checked the cover and the paper before them.
        return None, False, False
    return reason == PrinterReason.PAPER_NEAR_END, False, False

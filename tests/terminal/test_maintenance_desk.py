"""The maintenance desk: self-test (order, bounds, errors), status, the probes, refill, restart."""

from __future__ import annotations

import http.server
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from devices.base import DeviceError, DeviceState, DeviceTimeout
from devices.printer.protocol import RealtimeStatus
from flows.maintenance_report import (
    SELF_TEST_DEVICES,
    CheckResult,
    DeviceCheck,
    MaintenanceTask,
    SelfTestReport,
    TerminalStatus,
)
from terminal.maintenance import (
    NO_ANSWER,
    PROBE_ERROR,
    MaintenanceDesk,
    PrinterReading,
    Probe,
    call_probe,
    content_version,
    default_route,
    http_probe,
    interface_addresses,
    network_probe,
    printer_probe,
    state_probe,
    tcp_probe,
)
from terminal.paper_roll import PAPER_LOW_ESTIMATED, PaperRoll

# What a careless exception might carry: none of it may reach a report or a log line.
PERSONAL = "110101199001011234 张三"
MS = re.compile(r"^\d+ ms$")


def realtime(**flags: bool) -> RealtimeStatus:
    fields = dict.fromkeys(
        ("offline", "cover_open", "feed_button", "paper_end_stop", "error", "cutter_error",
         "unrecoverable_error", "auto_recoverable_error", "paper_near_end", "paper_end"), False)
    fields.update(flags)
    return RealtimeStatus(**fields)


def passing(device: str) -> Probe:
    return lambda: DeviceCheck(device, CheckResult.PASSED)


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.at: list[float] = []

    def __call__(self) -> None:
        self.count += 1
        self.at.append(time.monotonic())


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of a test, so probes made to hang let their threads go."""
    event = threading.Event()
    yield event
    event.set()


def make_desk(
    tmp_path: Path,
    probes: Mapping[str, Probe] | None = None,
    *,
    printer: Callable[[], PrinterReading] | None = DeviceState.ok,
    on_refilled: Callable[[], None] = lambda: None,
    request_restart: Callable[[], None] = lambda: None,
    timeout_s: float = 0.5,
    restart_delay_s: float = 0.0,
    roll: PaperRoll | None = None,
    counters: Callable[[], Mapping[str, object]] = lambda: {"sessions": 3, "receipts": 2},
) -> MaintenanceDesk:
    return MaintenanceDesk(
        terminal_id="kiosk-0001",
        site="site-001",
        probes=probes if probes is not None else {},
        roll=roll or PaperRoll(tmp_path / "paper_roll.json", 1000),
        printer_status=printer,
        counters=counters,
        devices=lambda: {"card_reader": DeviceState.ok(),
                         "scanner": DeviceState.fault("offline")},
        on_refilled=on_refilled,
        request_restart=request_restart,
        content_version=lambda: "2025.04.1",
        software_version=lambda: "1.4.0",
        addresses=lambda: ("eth0 192.168.1.20",),
        probe_timeout_s=timeout_s,
        restart_delay_s=restart_delay_s,
    )


# --- self-test -----------------------------------------------------------------------------------


def test_self_test_lists_every_device_in_order_with_the_unfitted_ones(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, {"broker": passing("broker"), "card_reader": passing("card_reader"),
                                "printer": passing("printer")})
    report = desk.self_test()
    assert tuple(c.device for c in report.checks) == SELF_TEST_DEVICES
    results = {c.device: c.result for c in report.checks}
    assert results["card_reader"] is results["printer"] is results["broker"] is CheckResult.PASSED
    assert results["camera"] is results["controller"] is CheckResult.NOT_FITTED
    assert report.passed


def test_hanging_probes_fail_no_answer_within_one_bound(
    tmp_path: Path, release: threading.Event
) -> None:
    def hang() -> DeviceCheck:
        release.wait()
        return DeviceCheck("camera", CheckResult.PASSED)

    desk = make_desk(tmp_path, {"camera": hang, "scanner": hang, "hub": hang,
                                "network": passing("network")}, timeout_s=0.4)
    start = time.monotonic()
    report = desk.self_test()
    elapsed = time.monotonic() - start
    # Three hangs at once cost one bound, not three: the probes run in parallel.
    assert 0.35 < elapsed < 1.0
    checks = {c.device: c for c in report.checks}
    for device in ("camera", "scanner", "hub"):
        assert checks[device] == DeviceCheck(device, CheckResult.FAILED, NO_ANSWER, "0.4 s")
    assert checks["network"].result is CheckResult.PASSED
    assert not report.passed


def test_a_probe_still_hanging_is_not_started_again(
    tmp_path: Path, release: threading.Event
) -> None:
    started = Calls()

    def hang() -> DeviceCheck:
        started()
        release.wait()
        return DeviceCheck("camera", CheckResult.PASSED)

    desk = make_desk(tmp_path, {"camera": hang}, timeout_s=0.2)
    desk.self_test()
    start = time.monotonic()
    again = desk.self_test()
    assert time.monotonic() - start < 0.1  # answered at once: the last one still hangs
    assert again.checks[SELF_TEST_DEVICES.index("camera")].reason == NO_ANSWER
    assert started.count == 1
    release.set()  # the device answers at last: the next self-test asks it again
    deadline = time.monotonic() + 2
    while started.count == 1 and time.monotonic() < deadline:
        desk.self_test()
    assert started.count == 2


def test_a_probe_that_raises_fails_with_the_type_name_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> DeviceCheck:
        raise ValueError(PERSONAL)

    desk = make_desk(tmp_path, {"id_reader": broken})
    with caplog.at_level(logging.DEBUG):
        report = desk.self_test()
    check = report.checks[SELF_TEST_DEVICES.index("id_reader")]
    assert check == DeviceCheck("id_reader", CheckResult.FAILED, PROBE_ERROR, "ValueError")
    assert "110101" not in repr(report) and "张三" not in repr(report)
    assert "110101" not in caplog.text and "张三" not in caplog.text


def test_the_desk_names_each_check_after_its_slot(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, {"controller": call_probe("co-processor", lambda: None)})
    check = desk.self_test().checks[SELF_TEST_DEVICES.index("controller")]
    assert check.device == "controller" and check.result is CheckResult.PASSED


def test_a_misspelt_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="card_raeder"):
        make_desk(tmp_path, {"card_raeder": passing("card_reader")})


def test_a_probe_returning_something_else_fails(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, {"hub": lambda: "ok"})  # type: ignore[dict-item, return-value]
    check = desk.self_test().checks[SELF_TEST_DEVICES.index("hub")]
    assert (check.result, check.reason, check.detail) == (CheckResult.FAILED, PROBE_ERROR, "str")


# --- probe builders ------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "expected"), [
    (DeviceState.ok(), DeviceCheck("scanner", CheckResult.PASSED)),
    (DeviceState.degraded("paper_near_end"),
     DeviceCheck("scanner", CheckResult.WARNING, "paper_near_end")),
    (DeviceState.fault("absent"), DeviceCheck("scanner", CheckResult.FAILED, "absent")),
])
def test_state_probe_maps_health_to_a_verdict(state: DeviceState, expected: DeviceCheck) -> None:
    assert state_probe("scanner", lambda: state)() == expected


def test_printer_probe_reads_status_bytes_and_the_roll(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 100)
    assert printer_probe(realtime, roll)() == DeviceCheck(
        "printer", CheckResult.PASSED, "", "0/100")
    roll.printed(95)
    assert printer_probe(realtime, roll)() == DeviceCheck(
        "printer", CheckResult.WARNING, PAPER_LOW_ESTIMATED, "95/100")
    assert printer_probe(lambda: realtime(cover_open=True, paper_end=True), roll)() == (
        DeviceCheck("printer", CheckResult.FAILED, "cover_open", "95/100"))
    assert printer_probe(lambda: DeviceState.fault("offline"))() == DeviceCheck(
        "printer", CheckResult.FAILED, "offline")


def test_network_probe_needs_an_address_and_a_default_route() -> None:
    assert network_probe(lambda: ("eth0 10.0.0.5", "eth0 fd00::5"), lambda: True)() == (
        DeviceCheck("network", CheckResult.PASSED, "", "2"))
    assert network_probe(lambda: ("eth0 10.0.0.5",), lambda: False)().reason == "no_default_route"
    assert network_probe(lambda: (), lambda: True)().reason == "no_address"


def test_call_probe_times_the_call_and_keeps_a_device_reason() -> None:
    check = call_probe("controller", lambda: {"pong": True})()
    assert check.result is CheckResult.PASSED and MS.match(check.detail)

    def silent() -> object:
        raise DeviceTimeout(PERSONAL)

    failed = call_probe("controller", silent)()
    assert (failed.result, failed.reason) == (CheckResult.FAILED, "timeout")
    assert PERSONAL not in repr(failed)

    def odd() -> object:
        raise DeviceError(reason="handshake_mismatch")

    assert call_probe("controller", odd)().reason == "handshake_mismatch"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_tcp_probe_connects_to_a_listening_socket_and_not_to_a_closed_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check = tcp_probe("127.0.0.1", port, 2.0)()
    assert check.device == "broker" and check.result is CheckResult.PASSED
    assert MS.match(check.detail)
    refused = tcp_probe("127.0.0.1", closed_port(), 2.0)()
    assert (refused.result, refused.reason) == (CheckResult.FAILED, "refused")


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """A tiny local server answering 404 to everything (the hub has no page at its base)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_http_probe_passes_on_any_http_answer(http_server: str) -> None:
    check = http_probe(http_server, 2.0)()
    assert check.device == "hub" and check.result is CheckResult.PASSED
    assert MS.match(check.detail)


def test_http_probe_fails_on_a_closed_port_a_silent_peer_and_garbage() -> None:
    refused = http_probe(f"http://127.0.0.1:{closed_port()}/", 2.0)()
    assert (refused.result, refused.reason) == (CheckResult.FAILED, "refused")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        start = time.monotonic()
        quiet = http_probe(f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.3)()
        assert time.monotonic() - start < 1.5
    assert (quiet.result, quiet.reason) == (CheckResult.FAILED, "timeout")
    with socket.create_server(("127.0.0.1", 0)) as garbage:
        def answer() -> None:
            conn, _ = garbage.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"\x00\x01 not http at all\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        bad = http_probe(f"http://127.0.0.1:{garbage.getsockname()[1]}/", 2.0)()
        thread.join(2)
    assert (bad.result, bad.reason) == (CheckResult.FAILED, "bad_answer")


def test_http_probe_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError):
        http_probe("ftp://hub.example/")


# --- the terminal's own network facts ------------------------------------------------------------


def test_addresses_of_this_machine_leave_loopback_out() -> None:
    addresses = interface_addresses()
    for entry in addresses:
        name, address = entry.split(" ")
        assert name != "lo"
        assert not address.startswith("127.") and address != "::1"
        assert not address.lower().startswith("fe80:")


def test_default_route_is_read_from_the_kernel_tables(tmp_path: Path) -> None:
    header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    subnet = "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    default = "eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    unreachable_v6 = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                      "00000000000000000000000000000000 ffffffff 00000001 00000001 00200200 lo\n")
    default_v6 = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                  "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n")
    (tmp_path / "route").write_text(header + subnet, encoding="ascii")
    (tmp_path / "ipv6_route").write_text(unreachable_v6, encoding="ascii")
    assert not default_route(tmp_path)
    (tmp_path / "ipv6_route").write_text(unreachable_v6 + default_v6, encoding="ascii")
    assert default_route(tmp_path)
    (tmp_path / "ipv6_route").unlink()
    (tmp_path / "route").write_text(header + subnet + default, encoding="ascii")
    assert default_route(tmp_path)
    assert not default_route(tmp_path / "nowhere")
    default_route()  # the real machine's tables parse without an error


def test_content_version_says_where_it_came_from(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text('title = "x"\n', encoding="utf-8")
    assert content_version("2025.04.1", catalogue) == "2025.04.1"
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", content_version("", catalogue))
    assert content_version("", tmp_path / "missing.toml") == "unknown"


# --- status --------------------------------------------------------------------------------------


def test_status_has_every_field(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 1000)
    roll.printed(12)
    status = make_desk(tmp_path, printer=lambda: realtime(paper_near_end=True),
                       roll=roll).status()
    assert isinstance(status, TerminalStatus)
    assert (status.terminal_id, status.site) == ("kiosk-0001", "site-001")
    assert (status.software_version, status.content_version) == ("1.4.0", "2025.04.1")
    assert status.addresses == ("eth0 192.168.1.20",)
    assert status.counters == {"sessions": 3, "receipts": 2}
    assert status.devices["scanner"] == DeviceState.fault("offline")
    printer = status.printer
    assert printer.state == DeviceState.degraded("paper_near_end")
    assert (printer.paper_near_end, printer.paper_out, printer.cover_open) == (True, False, False)
    assert (printer.receipts_since_refill, printer.roll_capacity) == (12, 1000)


@pytest.mark.parametrize(("reading", "flags"), [
    (DeviceState.ok(), (False, False, False)),
    (DeviceState.degraded("paper_near_end"), (True, False, False)),
    (DeviceState.fault("paper_out"), (None, True, False)),
    (DeviceState.fault("cover_open"), (None, None, True)),
    (DeviceState.fault("no_response"), (None, None, None)),
    (realtime(cover_open=True, paper_end=True), (False, True, True)),
])
def test_printer_detail_says_what_the_reading_tells(
    tmp_path: Path, reading: PrinterReading, flags: tuple[bool | None, ...]
) -> None:
    detail = make_desk(tmp_path, printer=lambda: reading).status().printer
    assert (detail.paper_near_end, detail.paper_out, detail.cover_open) == flags


def test_a_silent_or_failing_printer_leaves_the_rest_of_the_status(
    tmp_path: Path, release: threading.Event
) -> None:
    def hang() -> DeviceState:
        release.wait()
        return DeviceState.ok()

    start = time.monotonic()
    status = make_desk(tmp_path, printer=hang, timeout_s=0.3).status()
    assert time.monotonic() - start < 1.0
    assert status.printer.state == DeviceState.fault("no_response")
    assert status.printer.paper_out is None and status.terminal_id == "kiosk-0001"

    def offline() -> DeviceState:
        raise DeviceError(PERSONAL, reason="offline")

    assert make_desk(tmp_path, printer=offline).status().printer.state == DeviceState.fault(
        "offline")
    assert make_desk(tmp_path, printer=None).status().printer.state == DeviceState.fault(
        "absent")


def test_the_estimate_shows_in_the_printer_detail(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 10)
    roll.printed(9)
    detail = make_desk(tmp_path, roll=roll).status().printer
    assert detail.state == DeviceState.degraded(PAPER_LOW_ESTIMATED)
    assert detail.paper_near_end is False  # the sensor's own word, kept apart from the guess


def test_a_broken_part_of_the_status_falls_back(tmp_path: Path) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError(PERSONAL)

    status = make_desk(tmp_path, counters=broken).status()
    assert status.counters == {} and status.software_version == "1.4.0"


# --- refill, restart, dispatch -------------------------------------------------------------------


def test_paper_refilled_resets_the_roll_and_reports_at_once(tmp_path: Path) -> None:
    roll = PaperRoll(tmp_path / "paper_roll.json", 10)
    roll.printed(9)
    seen: list[bool] = []
    desk = make_desk(tmp_path, roll=roll, on_refilled=lambda: seen.append(roll.low))
    assert desk.perform(MaintenanceTask.PAPER_REFILLED) is None
    assert roll.count == 0 and seen == [False]  # reset before the state is reported again


def test_a_failing_refill_report_does_not_undo_the_refill(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("monitor gone")

    roll = PaperRoll(tmp_path / "paper_roll.json", 10)
    roll.printed(5)
    make_desk(tmp_path, roll=roll, on_refilled=broken).paper_refilled()
    assert roll.count == 0


def test_restart_is_asked_for_after_the_delay_and_once(tmp_path: Path) -> None:
    restarts = Calls()
    desk = make_desk(tmp_path, request_restart=restarts, restart_delay_s=0.2)
    asked = time.monotonic()
    assert desk.perform(MaintenanceTask.RESTART) is None
    desk.restart()  # pressed twice: still one restart
    assert restarts.count == 0
    deadline = time.monotonic() + 2
    while restarts.count == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert restarts.count == 1 and restarts.at[0] - asked >= 0.19


def test_perform_answers_each_task(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, {"network": passing("network")})
    assert isinstance(desk.perform(MaintenanceTask.SELF_TEST), SelfTestReport)
    assert isinstance(desk.perform(MaintenanceTask.STATUS), TerminalStatus)

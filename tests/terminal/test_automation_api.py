"""Automation API over real loopback HTTP, driven by plain callables instead of a Kivy window."""

from __future__ import annotations

import http.client
import json
import logging
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from terminal.automation import AutomationEndpoints, AutomationServer
from terminal.config import parse_config

PNG = b"\x89PNG\r\n\x1a\nfake"


@dataclass
class FakeUi:
    """A screen with one enabled and one disabled target; a tap on ``go`` moves to ``next``."""

    screen: str = "first"
    taps: list[str] = field(default_factory=list)
    touches: list[tuple[float, float]] = field(default_factory=list)
    stuck: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        return {
            "screen": self.screen,
            "title": "标题",
            "texts": ["标题"],
            "targets": [
                {"id": "go", "label": "继续", "enabled": True},
                {"id": "off", "label": "不可用", "enabled": False},
            ],
        }

    def tap(self, target: str) -> bool:
        if target != "go":
            return False
        self.taps.append(target)
        self.screen = "next"
        return True

    def screenshot(self) -> bytes:
        return PNG

    def touch(self, x: float, y: float) -> None:
        if not (0 <= x < 800 and 0 <= y < 480):
            raise ValueError(f"({x}, {y}) is outside the 800x480 window")
        self.touches.append((x, y))

    def never_answers(self) -> dict[str, Any]:
        self.stuck.wait(10)  # a main thread that is blocked
        return {}

    def endpoints(self) -> AutomationEndpoints:
        """This UI's callables, without the optional ones; tests ``replace`` what they break."""
        return AutomationEndpoints(
            describe=self.describe, tap=self.tap, screenshot=self.screenshot, touch=self.touch
        )


@pytest.fixture
def ui() -> FakeUi:
    return FakeUi()


@pytest.fixture
def server(ui: FakeUi) -> Iterator[AutomationServer]:
    endpoints = replace(ui.endpoints(), layout=lambda: ["target 'go' overlaps target 'off'"])
    with AutomationServer(endpoints, timeout_s=2.0) as running:
        yield running
    ui.stuck.set()


def call(
    server: AutomationServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, str, bytes]:
    # As the simulator's client does: JSON on every POST; urllib sends Host: 127.0.0.1:<port>.
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    request = urllib.request.Request(server.url + path, data=body, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def call_json(
    server: AutomationServer, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else None
    status, content_type, payload = call(server, method, path, raw)
    assert content_type.startswith("application/json")
    return status, json.loads(payload)


def test_get_screen_answers_the_description(server: AutomationServer, ui: FakeUi) -> None:
    assert call_json(server, "GET", "/screen") == (200, ui.describe())


def test_chinese_text_travels_as_utf8_not_escapes(server: AutomationServer) -> None:
    _, content_type, payload = call(server, "GET", "/screen")
    assert "charset=utf-8" in content_type
    assert "标题".encode() in payload


def test_a_tap_answers_the_description_after_the_ui_handled_it(
    server: AutomationServer, ui: FakeUi
) -> None:
    status, body = call_json(server, "POST", "/tap", {"target": "go"})
    assert status == 200
    assert body["screen"] == "next"
    assert ui.taps == ["go"]


@pytest.mark.parametrize("target", ["off", "nowhere"])
def test_a_tap_on_a_disabled_or_unknown_target_is_404(
    server: AutomationServer, ui: FakeUi, target: str
) -> None:
    status, body = call_json(server, "POST", "/tap", {"target": target})
    assert status == 404
    assert target in body["error"]
    assert ui.taps == []


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'{"target": 3}', b"{}", "\u7ee7".encode("utf-16")],
    ids=["malformed", "not-an-object", "target-not-a-string", "no-target", "not-utf8"],
)
def test_a_malformed_tap_is_400(server: AutomationServer, ui: FakeUi, raw: bytes) -> None:
    status, _, payload = call(server, "POST", "/tap", raw)
    assert status == 400, payload
    assert "error" in json.loads(payload)
    assert ui.taps == []


def test_there_are_no_text_fields_yet(server: AutomationServer) -> None:
    status, body = call_json(server, "POST", "/text", {"target": "phone", "text": "123"})
    assert (status, body) == (404, {"error": "no such text field"})


def test_screenshot_is_png(server: AutomationServer) -> None:
    assert call(server, "GET", "/screenshot") == (200, "image/png", PNG)


def test_a_touch_is_passed_on_in_window_pixels(server: AutomationServer, ui: FakeUi) -> None:
    status, body = call_json(server, "POST", "/touch", {"x": 400, "y": 240.5})
    assert (status, body) == (200, {"x": 400.0, "y": 240.5})
    assert ui.touches == [(400.0, 240.5)]


@pytest.mark.parametrize(
    "body",
    [{"x": 1}, {"x": "1", "y": 2}, {"x": True, "y": 2}, {"x": 900, "y": 10}],
    ids=["missing-y", "string", "bool", "outside-window"],
)
def test_a_bad_touch_is_400(server: AutomationServer, ui: FakeUi, body: Any) -> None:
    status, answer = call_json(server, "POST", "/touch", body)
    assert status == 400
    assert answer["error"]
    assert ui.touches == []


def test_the_debug_layout_endpoint_lists_issues(server: AutomationServer) -> None:
    assert call_json(server, "GET", "/debug/layout") == (
        200,
        {"issues": ["target 'go' overlaps target 'off'"]},
    )


def test_unknown_paths_and_wrong_methods(server: AutomationServer) -> None:
    assert call_json(server, "GET", "/nothing")[0] == 404
    assert call_json(server, "GET", "/tap")[0] == 405
    assert call_json(server, "POST", "/screen", {})[0] == 405


def test_a_main_thread_that_does_not_answer_gives_503_in_time(ui: FakeUi) -> None:
    endpoints = replace(ui.endpoints(), describe=ui.never_answers)
    with AutomationServer(endpoints, timeout_s=0.3) as server:
        started = time.monotonic()
        status, body = call_json(server, "GET", "/screen")
        elapsed = time.monotonic() - started
    ui.stuck.set()
    assert status == 503
    assert "did not answer" in body["error"]
    assert elapsed < 2.0


def test_a_ui_timeout_error_is_503_too(ui: FakeUi) -> None:
    def late() -> bytes:
        raise TimeoutError("main thread busy")

    endpoints = replace(ui.endpoints(), screenshot=late)
    with AutomationServer(endpoints) as server:
        assert call(server, "GET", "/screenshot")[0] == 503


def test_a_failing_callable_is_500_and_the_server_keeps_serving(ui: FakeUi) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("bug")

    endpoints = replace(ui.endpoints(), describe=broken)
    with AutomationServer(endpoints) as server:
        assert call_json(server, "GET", "/screen") == (500, {"error": "internal error"})
        assert call(server, "GET", "/screenshot")[0] == 200
        # Without a layout callable the debug endpoint does not exist.
        assert call_json(server, "GET", "/debug/layout")[0] == 404


def test_it_listens_on_loopback_only(ui: FakeUi) -> None:
    endpoints = ui.endpoints()
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        AutomationServer(endpoints, host="0.0.0.0")
    with AutomationServer(endpoints) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.port > 0


def test_stop_frees_the_port(ui: FakeUi) -> None:
    endpoints = ui.endpoints()
    server = AutomationServer(endpoints)
    server.start()
    port = server.port
    server.stop()
    with AutomationServer(endpoints, port=port) as again:
        assert call_json(again, "GET", "/screen")[0] == 200


# --- only a local tool, never a web page, may drive the terminal ------------------------------


def raw_call(
    server: AutomationServer, method: str, path: str, headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (http.client adds Host only if not given)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def own_host(server: AutomationServer) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "127.0.0.1.evil:{port}",
     "[::1]:{port}"],
)
def test_a_foreign_host_is_refused_dns_rebinding(
    server: AutomationServer, ui: FakeUi, host: str
) -> None:
    # A page on evil.example, its name re-pointed at 127.0.0.1, reads GET /screen: its Host is
    # its own name. Nothing is answered and nothing is tapped.
    host = host.format(port=server.port)
    status, _, payload = raw_call(server, "GET", "/screen", {"Host": host})
    assert status == 421, payload
    assert b"first" not in payload  # not the screen
    body = json.dumps({"target": "go"}).encode()
    status, _, _ = raw_call(server, "POST", "/tap", {
        "Host": host, "Content-Type": "application/json"}, body)
    assert status == 421
    assert ui.taps == []


def test_its_own_names_are_hosts(server: AutomationServer) -> None:
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                 f"LOCALHOST:{server.port}"):
        assert raw_call(server, "GET", "/screen", {"Host": host})[0] == 200


def test_a_request_with_two_hosts_is_refused(server: AutomationServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET /screen HTTP/1.1\r\nHost: {own_host(server)}\r\n"
                     "Host: evil.example\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 421 ")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x"],
)
def test_a_cross_origin_simple_post_is_refused(
    server: AutomationServer, ui: FakeUi, content_type: str
) -> None:
    # A page elsewhere posts a form or fetch(no-cors) body: the browser sends it without asking
    # first, with its Origin. It must not tap.
    status, headers, _ = raw_call(server, "POST", "/tap", {
        "Host": own_host(server), "Origin": "http://evil.example",
        "Content-Type": content_type, "Sec-Fetch-Site": "cross-site",
    }, b'{"target": "go"}')
    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers
    assert ui.taps == []


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}",
     "http://localhost.evil:{port}"],
)
def test_a_foreign_origin_is_refused_even_with_json(
    server: AutomationServer, ui: FakeUi, origin: str
) -> None:
    status, _, _ = raw_call(server, "POST", "/tap", {
        "Host": own_host(server), "Origin": origin.format(port=server.port),
        "Content-Type": "application/json",
    }, b'{"target": "go"}')
    assert status == 403
    assert raw_call(server, "GET", "/screen", {
        "Host": own_host(server), "Origin": origin.format(port=server.port)})[0] == 403
    assert ui.taps == []


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_browser_request_from_another_site_is_refused(
    server: AutomationServer, ui: FakeUi, site: str
) -> None:
    # same-site too: another port on 127.0.0.1 is the same site to a browser (ports do not count).
    status, _, _ = raw_call(server, "GET", "/screen", {
        "Host": own_host(server), "Sec-Fetch-Site": site})
    assert status == 403


def test_its_own_origin_and_an_address_typed_by_hand_are_answered(
    server: AutomationServer, ui: FakeUi
) -> None:
    status, _, _ = raw_call(server, "POST", "/tap", {
        "Host": own_host(server), "Origin": f"http://127.0.0.1:{server.port}",
        "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json; charset=utf-8",
    }, b'{"target": "go"}')
    assert status == 200
    assert ui.taps == ["go"]
    assert raw_call(server, "GET", "/screen", {
        "Host": own_host(server), "Sec-Fetch-Site": "none"})[0] == 200


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1",
     "application/jsonp"],
)
def test_a_post_that_is_not_json_is_refused(
    server: AutomationServer, ui: FakeUi, content_type: str | None
) -> None:
    headers = {"Host": own_host(server)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    status, _, payload = raw_call(server, "POST", "/tap", headers, b'{"target": "go"}')
    assert status == 415, payload
    assert "application/json" in json.loads(payload)["error"]
    assert ui.taps == []


def test_a_preflight_gets_no_cors_permission(server: AutomationServer) -> None:
    status, headers, _ = raw_call(server, "OPTIONS", "/tap", {
        "Host": own_host(server), "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST"})
    assert status in (403, 405)
    assert not any(name.lower().startswith("access-control-") for name in headers)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /screen HTTP/1.1\r\nHost : {host}\r\n\r\n",
        b"GET /screen HTTP/1.1\r\nX: 1\r\n: {host}\r\nHost: {host}\r\n\r\n",
        b"GET /screen\r\nHost: {host}\r\n\r\n",
        b"GET http://evil.example/screen HTTP/1.1\r\nHost: {host}\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\r\n\r\n",
        b"POST /tap HTTP/1.1\r\nHost: {host}\r\nContent-Length: 99999999\r\n\r\n",
        b"POST /tap HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /tap HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["space-before-colon", "no-name", "http-0.9", "absolute-url", "tls-hello", "huge-length",
         "chunked", "two-lengths"],
)
def test_a_malformed_request_is_refused_not_guessed_at(
    server: AutomationServer, ui: FakeUi, request_bytes: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request_bytes.replace(b"{host}", own_host(server).encode()))
        answer = sock.recv(100)
    assert answer[9:12] in (b"400", b"413", b"501"), answer
    assert ui.taps == []


def test_the_simulators_client_is_answered(server: AutomationServer, ui: FakeUi) -> None:
    from simulator.automation_client import AutomationClient  # noqa: PLC0415

    client = AutomationClient(server.url)
    assert client.screen()["screen"] == "first"
    assert client.tap("go")["screen"] == "next"
    assert client.call("POST", "/touch", {"x": 1, "y": 2})[0] == 200
    assert client.call("POST", "/tap")[0] == 400  # JSON, but no body: the body's fault
    assert ui.taps == ["go"]


# --- bounded in threads and time, whatever clients do ---------------------------------------------


def test_200_stalled_connections_take_no_threads_and_a_good_client_is_answered(
    server: AutomationServer,
) -> None:
    # 200 clients connect and never finish their request (half send a partial head). The
    # server's threads stay as they were, and a well-behaved client is answered at once.
    threads_before = threading.active_count()
    stalled = []
    try:
        for n in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if n % 2:
                sock.sendall(b"GET /screen HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            stalled.append(sock)
        time.sleep(0.3)  # the accepting thread has seen them all
        threads_during = threading.active_count()
        started = time.monotonic()
        status, _, _ = raw_call(server, "GET", "/screen", {"Host": own_host(server)})
        answered_in = time.monotonic() - started
    finally:
        for sock in stalled:
            sock.close()
    assert status == 200
    assert answered_in < 1.0
    assert threads_during - threads_before <= 2, (threads_before, threads_during)


@pytest.mark.parametrize("where", ["head", "body"])
def test_a_slowloris_client_is_cut_off(ui: FakeUi, where: str) -> None:
    # One byte every 0.3 s: each recv would be within any per-read timeout, so the deadline is
    # for the whole request (2 s by default). The connection is answered 408 and closed.
    with AutomationServer(ui.endpoints()) as server:
        head = (f"POST /tap HTTP/1.1\r\nHost: {own_host(server)}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n"
                "X-Padding: " + "x" * 200).encode()
        if where == "body":
            head = head.replace(b"X-Padding: ", b"\r\n")[:-200] + b"\r\n"
        drip = head if where == "head" else head + b" " * 100
        sent_whole = head if where == "body" else b""
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(sent_whole)
            started = time.monotonic()
            answer = b""
            for byte in drip[len(sent_whole):]:
                readable, _, _ = select.select([sock], [], [], 0.3)
                if readable:
                    answer = sock.recv(200)
                    break
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    break
                if time.monotonic() - started > 5.0:
                    break
            cut_off_after = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert cut_off_after < 3.0
    assert ui.taps == []


def test_a_flood_of_complete_requests_gets_503_not_threads(ui: FakeUi) -> None:
    # The UI is stuck: every answer waits. Requests beyond the workers and their queue are
    # told 503 at once instead of waiting in a thread each.
    endpoints = replace(ui.endpoints(), describe=ui.never_answers)
    with AutomationServer(endpoints, timeout_s=0.5) as server:
        threads_before = threading.active_count()
        socks = []
        request = f"GET /screen HTTP/1.1\r\nHost: {own_host(server)}\r\n\r\n".encode()
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(request)
            socks.append(sock)
        time.sleep(0.3)
        threads_during = threading.active_count()
        started = time.monotonic()
        statuses = []
        for sock in socks:
            statuses.append(sock.recv(100)[9:12])
            sock.close()
        all_answered_in = time.monotonic() - started
        threads_after = threading.active_count()
    ui.stuck.set()
    assert set(statuses) == {b"503"}
    # 4 workers, each waiting on one bounded UI call (a thread of its own, which gives up).
    assert threads_during - threads_before <= 4
    # Calls the workers gave up on hold their threads until the UI lets go: at most 8.
    assert threads_after - threads_before <= 8
    assert all_answered_in < 4.0


# --- production refuses the API ------------------------------------------------------------------


def test_a_config_asking_for_the_api_without_the_development_marker_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from terminal.app import automation_wanted  # noqa: PLC0415 - fails alone on old code

    wants = parse_config({"automation": {"enabled": True}})
    with caplog.at_level(logging.WARNING, logger="terminal.app"):
        assert automation_wanted(wants, {}) is False
        assert automation_wanted(wants, {"KIOSK_DEVELOPMENT": "0"}) is False
        assert automation_wanted(wants, {"KIOSK_DEVELOPMENT": " "}) is False
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert "REFUSED" in errors[0].getMessage()
    assert "KIOSK_DEVELOPMENT" in errors[0].getMessage()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_development_marker_turns_it_on_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from terminal.app import automation_wanted  # noqa: PLC0415

    wants = parse_config({"automation": {"enabled": True, "port": 8799}})
    with caplog.at_level(logging.WARNING, logger="terminal.app"):
        assert automation_wanted(wants, {"KIOSK_DEVELOPMENT": "simulator"}) is True
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "AUTOMATION API ON at http://127.0.0.1:8799" in warning.getMessage()
    assert "KIOSK_DEVELOPMENT='simulator'" in warning.getMessage()


def test_the_marker_alone_does_not_turn_it_on(caplog: pytest.LogCaptureFixture) -> None:
    from terminal.app import automation_wanted  # noqa: PLC0415

    with caplog.at_level(logging.WARNING, logger="terminal.app"):
        assert automation_wanted(parse_config({}), {"KIOSK_DEVELOPMENT": "simulator"}) is False
    assert not caplog.records

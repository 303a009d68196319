"""Automation API over real loopback HTTP, driven by plain callables instead of a Kivy window."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from terminal.automation import AutomationEndpoints, AutomationServer

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
    request = urllib.request.Request(server.url + path, data=body, method=method)
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

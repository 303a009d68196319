"""Control panel: every HTTP endpoint over real HTTP, against a fake backend recording its calls."""

from __future__ import annotations

import datetime as dt
import email.message
import io
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from simulator.panel import (
    ID_CARD_FAULTS,
    ID_CARD_TYPES,
    PRINTER_STATUSES,
    BackendError,
    BackendUnavailableError,
    CameraDocuments,
    ControlPanel,
    DeviceSummary,
    PresetPerson,
    ReceiptEntry,
    _PanelRequestHandler,
)

SCREEN_SIZE = (800, 480)
E_CODE = "EID1:" + "A" * 43  # the shape of one the simulated hub issues


def _png(width: int, height: int, colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


SCREEN_PNG = _png(*SCREEN_SIZE, "navy")
RECEIPT_PNG = _png(384, 600, "white")


@dataclass
class FakeBackend:
    """Records every call in order; a test makes a method fail or hang by its name."""

    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    failures: dict[str, BaseException] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    screenshot_bytes: bytes = SCREEN_PNG
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    summary: DeviceSummary = field(
        default_factory=lambda: DeviceSummary(
            card_present=True,
            card_kind="ssse",
            printer_status="near_end",
            hub_mode="slow",
            hub_delay_s=2.0,
            broker_up=True,
            pcscd_up=True,
        )
    )

    def reset(self) -> None:
        fresh = FakeBackend()
        self.calls, self.failures, self.gates = fresh.calls, fresh.failures, fresh.gates
        self.screenshot_bytes, self.summary = fresh.screenshot_bytes, fresh.summary
        self.zone = fresh.zone

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        gate = self.gates.get(name)
        if gate is not None:
            gate.wait(timeout=5.0)
        failure = self.failures.get(name)
        if failure is not None:
            raise failure

    def insert_card(self, kind: str, id_number: str | None, name: str | None) -> None:
        self._record("insert_card", kind, id_number, name)

    def remove_card(self) -> None:
        self._record("remove_card")

    def pull_card_mid_read(self) -> None:
        self._record("pull_card_mid_read")

    def cancel_card_pull(self) -> None:
        self._record("cancel_card_pull")

    def terminal_zone(self) -> ZoneInfo:
        return self.zone

    def scan_code(self, code: str) -> None:
        self._record("scan_code", code)

    def set_scanner_plugged(self, plugged: bool) -> None:
        self._record("set_scanner_plugged", plugged)

    def camera_documents(self) -> CameraDocuments:
        self._record("camera_documents")
        return CameraDocuments(
            documents=["empty", "application_form"],
            current="empty",
            titles={"empty": "空台面", "application_form": "申请表"},
            fault="ok",
        )

    def set_camera_document(self, name: str) -> None:
        self._record("set_camera_document", name)

    def set_camera_fault(self, mode: str) -> None:
        self._record("set_camera_fault", mode)

    def place_id_card(
        self,
        id_number: str,
        name: str,
        *,
        valid_until: str | None,
        card_type: str,
        sex: str | None,
    ) -> None:
        self._record("place_id_card", id_number, name, valid_until, card_type, sex)

    def remove_id_card(self) -> None:
        self._record("remove_id_card")

    def set_id_card_fault(self, mode: str) -> None:
        self._record("set_id_card_fault", mode)

    def set_id_card_plugged(self, plugged: bool) -> None:
        self._record("set_id_card_plugged", plugged)

    def issue_e_code(self, id_number: str, name: str, ttl_s: float | None) -> str:
        self._record("issue_e_code", id_number, name, ttl_s)
        return E_CODE

    def set_door(self, open: bool) -> None:
        self._record("set_door", open)

    def set_tamper(self, triggered: bool) -> None:
        self._record("set_tamper", triggered)

    def set_temperature(self, celsius: float) -> None:
        self._record("set_temperature", celsius)

    def freeze_terminal(self, frozen: bool) -> None:
        self._record("freeze_terminal", frozen)

    def set_printer_status(self, status: str) -> None:
        self._record("set_printer_status", status)

    def paper_out_after(self, lines: int) -> None:
        self._record("paper_out_after", lines)

    def set_hub_fault(self, mode: str, delay_s: float) -> None:
        self._record("set_hub_fault", mode, delay_s)

    def set_broker_up(self, up: bool) -> None:
        self._record("set_broker_up", up)

    def restart_pcscd(self) -> None:
        self._record("restart_pcscd")

    def list_receipts(self) -> list[ReceiptEntry]:
        self._record("list_receipts")
        return [
            # The virtual printer stamps in UTC; the panel shows the terminal's local time.
            ReceiptEntry(index=0, printed_at="2025-03-01T01:30:00+00:00", text="参保证明\n张*"),
            # A backend's own png_url means nothing to the page; the panel must replace it.
            ReceiptEntry(
                index=1, printed_at="2025-03-01T09:41:00+08:00", text="回执", png_url="file:///x"
            ),
        ]

    def receipt_png(self, index: int) -> bytes:
        self._record("receipt_png", index)
        if index not in (0, 1):
            raise IndexError(index)
        return RECEIPT_PNG

    def device_summary(self) -> DeviceSummary:
        self._record("device_summary")
        return self.summary

    def presets(self) -> list[PresetPerson]:
        self._record("presets")
        return [PresetPerson(label="张三 (已参保)", id_number="11010519491231002X", name="张三")]

    def screen(self) -> dict[str, object]:
        self._record("screen")
        return {
            "screen": "attract",
            "title": "欢迎",
            "texts": ["请插卡"],
            "targets": [{"id": "start", "label": "开始", "enabled": True}],
            "language": "zh_CN",
        }

    def screenshot(self) -> bytes:
        self._record("screenshot")
        return self.screenshot_bytes

    def touch(self, x: int, y: int) -> None:
        self._record("touch", x, y)

    def tap(self, target: str) -> None:
        self._record("tap", target)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    headers: email.message.Message
    body: bytes

    def json(self) -> dict[str, object]:
        assert self.content_type.startswith("application/json"), self.content_type
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    def error(self) -> str:
        message = self.json()["error"]
        assert isinstance(message, str)
        return message


def call(
    panel: ControlPanel,
    method: str,
    path: str,
    body: object = None,
    *,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request; a bytes body is sent as it is, anything else but None as JSON."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        panel.url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Answer(
                response.status,
                response.headers.get("Content-Type", ""),
                response.headers,
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return Answer(
            error.code, error.headers.get("Content-Type", ""), error.headers, error.read()
        )


@pytest.fixture(scope="module")
def shared_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="module")
def shared_panel(shared_backend: FakeBackend) -> Iterator[ControlPanel]:
    # One panel for the module: stopping a server waits out its poll interval, and 90 of those
    # would be most of this file's run time.
    panel = ControlPanel(shared_backend, port=0, backend_timeout_s=2.0)
    panel.start()
    yield panel
    panel.stop()


@pytest.fixture
def backend(shared_backend: FakeBackend) -> FakeBackend:
    shared_backend.reset()
    return shared_backend


@pytest.fixture
def panel(shared_panel: ControlPanel, backend: FakeBackend) -> ControlPanel:
    return shared_panel


# -- valid calls reach the backend with the right arguments -------------------------------------

VALID_CALLS: list[tuple[str, object, tuple[str, tuple[object, ...]]]] = [
    (
        "/api/card/insert",
        {"kind": "ssse", "id_number": "11010519491231002X", "name": "张三"},
        ("insert_card", ("ssse", "11010519491231002X", "张三")),
    ),
    # Padding is stripped and a lower-case x upper-cased, as a keyboard would give it.
    (
        "/api/card/insert",
        {"kind": "ssse", "id_number": " 11010519491231002x ", "name": " 欧阳娜娜 "},
        ("insert_card", ("ssse", "11010519491231002X", "欧阳娜娜")),
    ),
    # Missing, null and blank all mean "the backend's default person".
    ("/api/card/insert", {"kind": "ssse"}, ("insert_card", ("ssse", None, None))),
    (
        "/api/card/insert",
        {"kind": "ssse", "id_number": "", "name": None},
        ("insert_card", ("ssse", None, None)),
    ),
    ("/api/card/insert", {"kind": "other"}, ("insert_card", ("other", None, None))),
    ("/api/card/remove", {}, ("remove_card", ())),
    ("/api/printer/status", {"status": "ok"}, ("set_printer_status", ("ok",))),
    ("/api/printer/status", {"status": "near_end"}, ("set_printer_status", ("near_end",))),
    ("/api/printer/status", {"status": "paper_out"}, ("set_printer_status", ("paper_out",))),
    ("/api/printer/status", {"status": "cover_open"}, ("set_printer_status", ("cover_open",))),
    ("/api/printer/status", {"status": "silent"}, ("set_printer_status", ("silent",))),
    (
        "/api/printer/status",
        {"status": "cutter_error"},
        ("set_printer_status", ("cutter_error",)),
    ),
    ("/api/printer/status", {"status": "garbage"}, ("set_printer_status", ("garbage",))),
    ("/api/printer/paper-out-after", {"lines": 12}, ("paper_out_after", (12,))),
    ("/api/printer/paper-out-after", {"lines": 0}, ("paper_out_after", (0,))),
    # JavaScript has one number type; 12.0 is a whole number and arrives as the int 12.
    ("/api/printer/paper-out-after", {"lines": 12.0}, ("paper_out_after", (12,))),
    ("/api/hub/fault", {"mode": "ok"}, ("set_hub_fault", ("ok", 0.0))),
    ("/api/hub/fault", {"mode": "slow", "delay_s": 2.5}, ("set_hub_fault", ("slow", 2.5))),
    ("/api/hub/fault", {"mode": "slow", "delay_s": 3}, ("set_hub_fault", ("slow", 3.0))),
    # A delay left over in the page's field must not follow the hub into another mode.
    ("/api/hub/fault", {"mode": "down", "delay_s": 7}, ("set_hub_fault", ("down", 0.0))),
    ("/api/hub/fault", {"mode": "error"}, ("set_hub_fault", ("error", 0.0))),
    ("/api/broker", {"up": True}, ("set_broker_up", (True,))),
    ("/api/broker", {"up": False}, ("set_broker_up", (False,))),
    ("/api/pcscd/restart", {}, ("restart_pcscd", ())),
    ("/api/touch", {"x": 10, "y": 470}, ("touch", (10, 470))),
    ("/api/tap", {"target": "start"}, ("tap", ("start",))),
    # The ID card: the number normalised as for the card slot, a date in either form as
    # YYYYMMDD, 长期 as it is; card type citizen and sex "from the number" unless given.
    (
        "/api/idcard/place",
        {"id_number": " 11010519491231002x ", "name": " 张三 "},
        ("place_id_card", ("11010519491231002X", "张三", None, "citizen", None)),
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "2999-12-31"},
        ("place_id_card", ("11010519491231002X", "张三", "29991231", "citizen", None)),
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "29990101",
         "card_type": "residence_permit", "sex": "2"},
        ("place_id_card", ("11010519491231002X", "张三", "29990101", "residence_permit", "2")),
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "长期",
         "card_type": None, "sex": None},
        ("place_id_card", ("11010519491231002X", "张三", "长期", "citizen", None)),
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "欧阳娜娜" * 3 + "abc", "valid_until": " "},
        ("place_id_card", ("11010519491231002X", "欧阳娜娜" * 3 + "abc", None, "citizen", None)),
    ),
    ("/api/idcard/remove", {}, ("remove_id_card", ())),
    ("/api/idcard/fault", {"mode": "ok"}, ("set_id_card_fault", ("ok",))),
    ("/api/idcard/fault", {"mode": "mid_frame"}, ("set_id_card_fault", ("mid_frame",))),
    ("/api/idcard/fault", {"mode": "sam_self_test"}, ("set_id_card_fault", ("sam_self_test",))),
]


@pytest.mark.parametrize(("path", "body", "expected"), VALID_CALLS)
def test_valid_call_reaches_the_backend_with_its_arguments(
    panel: ControlPanel,
    backend: FakeBackend,
    path: str,
    body: object,
    expected: tuple[str, tuple[object, ...]],
) -> None:
    answer = call(panel, "POST", path, body)
    assert answer.status == 200, answer.body
    assert answer.json() == {"ok": True}
    assert backend.calls == [expected]
    # 12 == 12.0 in Python, so compare the types too: an int field must not arrive as a float.
    assert [type(arg) for arg in backend.calls[0][1]] == [type(arg) for arg in expected[1]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, ("pull_card_mid_read", ())),
        ({"armed": True}, ("pull_card_mid_read", ())),
        ({"armed": False}, ("cancel_card_pull", ())),
    ],
)
def test_the_card_pull_fault_is_armed_and_disarmed(
    panel: ControlPanel,
    backend: FakeBackend,
    body: dict[str, object],
    expected: tuple[str, tuple[object, ...]],
) -> None:
    answer = call(panel, "POST", "/api/card/pull-mid-read", body)
    assert answer.status == 200, answer.body
    assert answer.json() == {"ok": True, "armed": body.get("armed", True)}
    assert backend.calls == [expected]


@pytest.mark.parametrize("plugged", [True, False])
def test_the_id_card_reader_is_plugged_and_unplugged(
    panel: ControlPanel, backend: FakeBackend, plugged: bool
) -> None:
    answer = call(panel, "POST", "/api/idcard/plug", {"plugged": plugged})
    assert answer.status == 200, answer.body
    assert answer.json() == {"ok": True, "plugged": plugged}
    assert backend.calls == [("set_id_card_plugged", (plugged,))]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"id_number": "11010519491231002X", "name": "张三"},
            ("issue_e_code", ("11010519491231002X", "张三", None)),
        ),
        # Padding and a lower-case x are the keyboard's; the hub checks the person itself.
        (
            {"id_number": " 11010519491231002x", "name": " 张三 ", "ttl_s": 30},
            ("issue_e_code", ("11010519491231002X", "张三", 30.0)),
        ),
        (
            {"id_number": "11010519491231002X", "name": "张三", "ttl_s": None},
            ("issue_e_code", ("11010519491231002X", "张三", None)),
        ),
    ],
)
def test_an_e_id_code_is_issued_and_answered_as_the_design_fixes(
    panel: ControlPanel,
    backend: FakeBackend,
    body: dict[str, object],
    expected: tuple[str, tuple[object, ...]],
) -> None:
    answer = call(panel, "POST", "/api/ecode/issue", body)
    assert answer.status == 200, answer.body
    assert answer.json() == {"code": E_CODE}
    assert backend.calls == [expected]
    assert [type(arg) for arg in backend.calls[0][1]] == [type(arg) for arg in expected[1]]


def test_a_person_the_hub_refuses_is_a_400_with_the_hubs_message(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.failures["issue_e_code"] = ValueError("not a valid ID number (check_digit)")
    answer = call(panel, "POST", "/api/ecode/issue",
                  {"id_number": "110105194912310021", "name": "张三"})
    assert answer.status == 400
    assert answer.error() == "not a valid ID number (check_digit)"


def test_a_card_the_virtual_reader_cannot_hold_is_a_400_with_its_message(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.failures["place_id_card"] = ValueError("the ID number holds no calendar date")
    answer = call(panel, "POST", "/api/idcard/place",
                  {"id_number": "110105194913310021", "name": "张三"})
    assert answer.status == 400
    assert answer.error() == "the ID number holds no calendar date"


def test_an_id_card_with_a_wrong_check_digit_or_a_past_date_is_placed_with_warnings(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    # Testers need such cards to watch the terminal decline them: allowed, but flagged.
    answer = call(panel, "POST", "/api/idcard/place",
                  {"id_number": "110105194912310021", "name": "张三", "valid_until": "2020-01-31"})
    assert answer.status == 200
    warning = str(answer.json()["warning"])
    assert "check digit" in warning
    assert "expired on 2020-01-31; the terminal should decline it" in warning
    assert backend.calls == [
        ("place_id_card", ("110105194912310021", "张三", "20200131", "citizen", None))]


def test_an_id_card_valid_until_today_is_not_expired(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    # "Today" where the terminal stands (Asia/Shanghai), not where the panel's machine is.
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    answer = call(panel, "POST", "/api/idcard/place",
                  {"id_number": "11010519491231002X", "name": "张三",
                   "valid_until": today.isoformat()})
    assert answer.json() == {"ok": True}
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    answer = call(panel, "POST", "/api/idcard/place",
                  {"id_number": "11010519491231002X", "name": "张三", "valid_until": yesterday})
    assert "expired" in str(answer.json()["warning"])


def test_the_qr_route_draws_the_text_a_phone_would_show(panel: ControlPanel) -> None:
    answer = call(panel, "GET", "/api/qr.png?data=" + urllib.parse.quote(E_CODE + "+/?"))
    assert answer.status == 200 and answer.content_type == "image/png"
    image = Image.open(io.BytesIO(answer.body))
    assert image.width == image.height and image.width >= 21 * 6  # version 1 at 6 px a module
    for query in ("", "?data=", "?other=1", "?data=a&data=b", "?data=%ff",
                  "?data=" + "x" * 1025):
        answer = call(panel, "GET", "/api/qr.png" + query)
        assert answer.status == 400, query
        assert "data" in answer.error()


def test_post_without_a_body_counts_as_an_empty_object(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    answer = call(panel, "POST", "/api/card/remove")
    assert answer.status == 200
    assert backend.calls == [("remove_card", ())]


def test_an_id_number_failing_its_check_digit_is_inserted_with_a_warning(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    # Testers need such a card to watch the terminal refuse it, so it is allowed, but flagged.
    answer = call(
        panel, "POST", "/api/card/insert", {"kind": "ssse", "id_number": "110105194912310021"}
    )
    assert answer.status == 200
    assert "check digit" in str(answer.json()["warning"])
    assert backend.calls == [("insert_card", ("ssse", "110105194912310021", None))]


# -- invalid input gets 400 with a message and never reaches the backend -------------------------

INVALID_CALLS: list[tuple[str, object, str]] = [
    ("/api/card/insert", b"{not json", "not valid JSON"),
    ("/api/card/insert", b"\xff\xfe{}", "not UTF-8"),
    # Hostile bodies: each was a 500 or a dropped connection before the shared parser.
    ("/api/card/insert", b"[" * 994 + b"]" * 994, "nested deeper than 16 levels"),
    ("/api/tap", b'{"a":' * 12_000, "nested deeper than 16 levels"),
    ("/api/touch", b'{"x": ' + b"9" * 4301 + b', "y": 1}', "integer of more than 20 digits"),
    # The refusal quotes the value; a lone surrogate in it could not be encoded as UTF-8.
    ("/api/card/insert", b'{"kind": "\\ud800"}', "lone surrogate"),
    ("/api/tap", b'{"target": "\\udfff"}', "lone surrogate"),
    ("/api/card/insert", '{"kind": "other"}'.encode("utf-16"), "not UTF-8"),
    ("/api/broker", b'{"up": false, "up": true}', "'up' twice"),
    ("/api/card/insert", b"[1, 2]", "must be a JSON object"),
    ("/api/card/insert", {}, "missing field(s): kind"),
    ("/api/card/insert", {"kind": "bank"}, "kind must be one of ssse, other"),
    ("/api/card/insert", {"kind": "ssse", "id": "1"}, "unknown field(s): id"),
    ("/api/card/insert", {"kind": "ssse", "id_number": "1101051949123100"}, "18 characters"),
    (
        "/api/card/insert",
        {"kind": "ssse", "id_number": "11010519491231002Y"},
        "18 characters",
    ),
    ("/api/card/insert", {"kind": "ssse", "id_number": 110105194912310021}, "string or null"),
    ("/api/card/insert", {"kind": "ssse", "name": "张" * 16}, "too long for the card"),
    ("/api/card/insert", {"kind": "ssse", "name": "😀"}, "GBK"),
    (
        "/api/card/insert",
        {"kind": "other", "id_number": "11010519491231002X"},
        "carries no id_number or name",
    ),
    ("/api/card/remove", {"now": True}, "unknown field(s): now"),
    ("/api/card/pull-mid-read", b'"now"', "must be a JSON object"),
    ("/api/card/pull-mid-read", {"armed": "yes"}, "armed must be true"),
    ("/api/card/pull-mid-read", {"apdus": 2}, "unknown field(s): apdus"),
    ("/api/printer/status", {"status": "on_fire"}, "status must be one of ok, near_end"),
    ("/api/printer/status", {"status": "OK"}, "status must be one of"),
    ("/api/printer/status", {}, "missing field(s): status"),
    ("/api/printer/paper-out-after", {"lines": -1}, "lines must not be negative"),
    ("/api/printer/paper-out-after", {"lines": 2.5}, "lines must be a whole number"),
    ("/api/printer/paper-out-after", {"lines": True}, "lines must be an integer"),
    ("/api/printer/paper-out-after", {"lines": "10"}, "lines must be an integer"),
    ("/api/printer/paper-out-after", {"lines": 10**9}, "lines must be at most"),
    ("/api/hub/fault", {"mode": "flaky"}, "mode must be one of ok, slow, down, error"),
    ("/api/hub/fault", {"mode": "slow"}, "mode slow needs delay_s"),
    ("/api/hub/fault", {"mode": "slow", "delay_s": -1}, "delay_s must not be negative"),
    ("/api/hub/fault", {"mode": "slow", "delay_s": 0}, "above 0"),
    ("/api/hub/fault", {"mode": "slow", "delay_s": 1e6}, "delay_s must be at most"),
    ("/api/hub/fault", b'{"mode": "slow", "delay_s": NaN}', "not valid JSON"),
    ("/api/hub/fault", b'{"mode": "slow", "delay_s": 1e999}', "finite"),
    ("/api/hub/fault", {"mode": "down", "delay_s": -3}, "delay_s must not be negative"),
    ("/api/hub/fault", {"mode": "ok", "delay": 3}, "unknown field(s): delay"),
    ("/api/broker", {"up": "yes"}, "up must be true or false"),
    ("/api/broker", {"up": 1}, "up must be true or false"),
    ("/api/broker", {}, "missing field(s): up"),
    ("/api/pcscd/restart", {"hard": True}, "unknown field(s): hard"),
    ("/api/touch", {"x": -1, "y": 5}, "x must not be negative"),
    ("/api/touch", {"x": 5, "y": -0.5}, "y must be a whole number"),
    ("/api/touch", {"x": 5}, "missing field(s): y"),
    ("/api/touch", {"x": "5", "y": 5}, "x must be an integer"),
    ("/api/tap", {"target": ""}, "non-empty string"),
    ("/api/tap", {"target": 3}, "non-empty string"),
    ("/api/tap", {"target": "x" * 201}, "longer than 200"),
    ("/api/idcard/place", {}, "missing field(s): id_number, name"),
    ("/api/idcard/place", {"id_number": "11010519491231002X"}, "missing field(s): name"),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "photo": "x"},
        "unknown field(s): photo",
    ),
    ("/api/idcard/place", {"id_number": 11010519491231002, "name": "张三"}, "must be a string"),
    ("/api/idcard/place", {"id_number": "1101051949123100", "name": "张三"}, "18 characters"),
    ("/api/idcard/place", {"id_number": "11010519491231002Y", "name": "张三"}, "18 characters"),
    ("/api/idcard/place", {"id_number": "11010519491231002X", "name": ""}, "non-empty string"),
    ("/api/idcard/place", {"id_number": "11010519491231002X", "name": None}, "non-empty"),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张" * 16},
        "too long for the ID card: at most 15 characters",
    ),
    ("/api/idcard/place", {"id_number": "11010519491231002X", "name": "𠮷三"}, "UCS-2"),
    ("/api/idcard/place", {"id_number": "11010519491231002X", "name": "😀"}, "UCS-2"),
    ("/api/idcard/place", {"id_number": "11010519491231002X", "name": "张\n三"}, "control"),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "2036/12/31"},
        "valid_until must be YYYY-MM-DD, YYYYMMDD or 长期",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "2036-W01-1"},
        "valid_until must be YYYY-MM-DD",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "2036-1231"},
        "valid_until must be YYYY-MM-DD",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": "20360231"},
        "valid_until is not a calendar date",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "valid_until": 20361231},
        "valid_until must be",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "card_type": "passport"},
        "card_type must be one of citizen, residence_permit",
    ),
    (
        "/api/idcard/place",
        {"id_number": "11010519491231002X", "name": "张三", "sex": "M"},
        "sex must be one of 1, 2, 0, 9",
    ),
    ("/api/idcard/remove", {"now": True}, "unknown field(s): now"),
    ("/api/idcard/fault", {}, "missing field(s): mode"),
    ("/api/idcard/fault", {"mode": "smoke"}, "mode must be one of ok, no_card, sam_self_test"),
    ("/api/idcard/plug", {}, "missing field(s): plugged"),
    ("/api/idcard/plug", {"plugged": "yes"}, "plugged must be true"),
    ("/api/idcard/plug", {"plugged": 0}, "plugged must be true"),
    ("/api/ecode/issue", {}, "missing field(s): id_number, name"),
    ("/api/ecode/issue", {"id_number": "11010519491231002X"}, "missing field(s): name"),
    ("/api/ecode/issue", {"id_number": "", "name": "张三"}, "id_number must be a non-empty"),
    ("/api/ecode/issue", {"id_number": 1, "name": "张三"}, "id_number must be a non-empty"),
    ("/api/ecode/issue", {"id_number": "11010519491231002X", "name": " "}, "name must be a"),
    (
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三", "ttl_s": 0},
        "ttl_s must be above 0",
    ),
    (
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三", "ttl_s": -5},
        "ttl_s must not be negative",
    ),
    (
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三", "ttl_s": 86401},
        "ttl_s must be at most 86400",
    ),
    (
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三", "ttl_s": "60"},
        "ttl_s must be a number",
    ),
    (
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三", "code": "x"},
        "unknown field(s): code",
    ),
]


@pytest.mark.parametrize(("path", "body", "message"), INVALID_CALLS)
def test_invalid_input_is_refused_before_the_backend(
    panel: ControlPanel, backend: FakeBackend, path: str, body: object, message: str
) -> None:
    # A bytes body goes out as it is (broken JSON); anything else is encoded as JSON.
    answer = call(panel, "POST", path, body)
    assert answer.status == 400
    assert message in answer.error()
    assert backend.calls == []


def test_a_refused_value_is_quoted_short(panel: ControlPanel, backend: FakeBackend) -> None:
    answer = call(panel, "POST", "/api/printer/status", {"status": "x" * 60_000})
    assert answer.status == 400
    assert answer.error().startswith("status must be one of ok, near_end")
    assert len(answer.error()) < 300
    assert backend.calls == []


def test_a_touch_outside_the_last_screenshot_is_refused(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    assert call(panel, "GET", "/api/screen.png").status == 200
    backend.calls.clear()
    answer = call(panel, "POST", "/api/touch", {"x": SCREEN_SIZE[0], "y": 10})
    assert answer.status == 400
    assert "outside the terminal's screen of 800x480" in answer.error()
    assert backend.calls == []
    # The last pixel is still inside.
    assert call(panel, "POST", "/api/touch", {"x": 799, "y": 479}).status == 200
    assert backend.calls == [("touch", (799, 479))]


def test_a_post_that_is_not_json_is_refused(panel: ControlPanel, backend: FakeBackend) -> None:
    # A cross-site form can send text/plain without a CORS preflight; it must not insert a card.
    answer = call(panel, "POST", "/api/card/remove", b"{}", headers={"Content-Type": "text/plain"})
    assert answer.status == 415
    assert "application/json" in answer.error()
    assert backend.calls == []


@pytest.mark.parametrize("host", ["evil.example:8700", "127.0.0.1.evil.example:8700", "127.x"])
def test_a_foreign_host_name_is_refused(
    panel: ControlPanel, backend: FakeBackend, host: str
) -> None:
    # DNS rebinding: a web page's own name resolving to 127.0.0.1.
    answer = call(panel, "POST", "/api/card/remove", {}, headers={"Host": host})
    assert answer.status == 403
    assert "not this machine's loopback" in answer.error()
    assert backend.calls == []


@pytest.mark.parametrize("host", ["localhost:8700", "127.0.0.1:8700", "127.0.0.2", "[::1]:8700"])
def test_loopback_host_names_are_served(panel: ControlPanel, host: str) -> None:
    assert call(panel, "GET", "/", headers={"Host": host}).status == 200


def test_an_oversized_body_is_refused(panel: ControlPanel, backend: FakeBackend) -> None:
    answer = call(panel, "POST", "/api/tap", b" " * (64 * 1024 + 1))
    assert answer.status == 413
    assert backend.calls == []


def raw_post(panel: ControlPanel, head: bytes, body: bytes, *, close_send: bool = True) -> Answer:
    """POST /api/card/remove with hand-written headers on a raw socket."""
    port = int(panel.url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/card/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + head + b"\r\n" + body
        )
        if close_send:
            sock.shutdown(socket.SHUT_WR)  # the client has said all it will say
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head_part, _, body_part = received.partition(b"\r\n\r\n")
    status = int(head_part.split()[1])
    return Answer(status, "application/json", email.message.Message(), body_part)


@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        (b"Content-Length: -1\r\n", 400, "not a valid length"),
        # int() would read these as 2 and 2.
        (b"Content-Length: 0_2\r\n", 400, "not a valid length"),
        (b"Content-Length: +2\r\n", 400, "not a valid length"),
        (b"Content-Length: 2\r\nContent-Length: 9\r\n", 400, "disagree"),
        (b"Transfer-Encoding: chunked\r\n", 411, "Content-Length"),
        # "{}" is a whole object: read short, it used to remove the card.
        (b"Content-Length: 50\r\n", 400, "ended after 2 of the 50 bytes"),
    ],
)
def test_a_wrong_content_length_is_refused_before_the_backend(
    panel: ControlPanel, backend: FakeBackend, head: bytes, status: int, message: str
) -> None:
    answer = raw_post(panel, head, b"{}")
    assert answer.status == status
    assert message in answer.error()
    assert backend.calls == []


def test_a_body_that_stops_coming_is_a_408_not_silence(
    panel: ControlPanel, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client announces 50 bytes, sends 2 and waits; the panel used to hang up wordlessly.
    monkeypatch.setattr(_PanelRequestHandler, "timeout", 0.3)
    answer = raw_post(panel, b"Content-Length: 50\r\n", b"{}", close_send=False)
    assert answer.status == 408
    assert "stopped before the 50 bytes" in answer.error()
    assert backend.calls == []


def test_unknown_paths_and_wrong_methods_get_json_errors(panel: ControlPanel) -> None:
    missing = call(panel, "GET", "/api/nothing")
    assert missing.status == 404
    assert "/api/nothing" in missing.error()
    get_only = call(panel, "POST", "/api/state", {})
    assert get_only.status == 405
    assert "only answers GET" in get_only.error()
    post_only = call(panel, "GET", "/api/card/remove")
    assert post_only.status == 405
    assert "only answers POST" in post_only.error()


# -- backend failures become 502/503/504 JSON, and the panel keeps serving ------------------------


@dataclass(frozen=True)
class Failure:
    """A backend method that raises, the request that calls it and the answer the page must get."""

    method_name: str
    path: str
    body: object
    raised: BaseException
    status: int
    message: str


BACKEND_FAILURES = [
    Failure(
        "set_printer_status",
        "/api/printer/status",
        {"status": "ok"},
        BackendError("paper jam"),
        502,
        "printer failed: paper jam",
    ),
    Failure(
        "set_broker_up",
        "/api/broker",
        {"up": True},
        BackendUnavailableError("mosquitto is not installed"),
        503,
        "broker not reachable: mosquitto is not installed",
    ),
    Failure(
        "tap",
        "/api/tap",
        {"target": "start"},
        ConnectionRefusedError(111, "Connection refused"),
        503,
        "terminal not reachable: [Errno 111] Connection refused",
    ),
    Failure(
        "touch",
        "/api/touch",
        {"x": 1, "y": 1},
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
        503,
        "terminal not reachable: [Errno 111] Connection refused",
    ),
    # The terminal answered, so it is up: it refused the tap.
    Failure(
        "tap",
        "/api/tap",
        {"target": "gone"},
        urllib.error.HTTPError(
            "http://127.0.0.1:8701/tap", 404, "unknown target", email.message.Message(), None
        ),
        502,
        "terminal refused: HTTP 404 unknown target",
    ),
    # ... and when its answer carries the automation API's {"error": ...}, that is the message.
    Failure(
        "tap",
        "/api/tap",
        {"target": "gone"},
        urllib.error.HTTPError(
            "http://127.0.0.1:8701/tap",
            404,
            "Not Found",
            email.message.Message(),
            io.BytesIO(b'{"error": "no enabled target \'gone\' on screen"}'),
        ),
        502,
        "terminal refused: HTTP 404 no enabled target 'gone' on screen",
    ),
    Failure(
        "set_id_card_plugged",
        "/api/idcard/plug",
        {"plugged": False},
        BackendUnavailableError("no virtual ID card reader: the simulator reads a real one"),
        503,
        "ID card reader not reachable: no virtual ID card reader: the simulator reads a real one",
    ),
    Failure(
        "issue_e_code",
        "/api/ecode/issue",
        {"id_number": "11010519491231002X", "name": "张三"},
        BackendUnavailableError("no simulated hub"),
        503,
        "hub not reachable: no simulated hub",
    ),
    Failure(
        "insert_card",
        "/api/card/insert",
        {"kind": "other"},
        RuntimeError("slot wedged"),
        502,
        "card slot failed: RuntimeError: slot wedged",
    ),
]


@pytest.mark.parametrize("failure", BACKEND_FAILURES, ids=lambda f: f"{f.method_name}-{f.status}")
def test_backend_failure_is_a_clear_json_error_and_the_panel_keeps_serving(
    panel: ControlPanel, backend: FakeBackend, failure: Failure
) -> None:
    backend.failures[failure.method_name] = failure.raised
    answer = call(panel, "POST", failure.path, failure.body)
    assert answer.status == failure.status
    assert answer.error() == failure.message
    assert b"Traceback" not in answer.body
    assert call(panel, "GET", "/").status == 200
    assert call(panel, "GET", "/api/state").status == 200


def test_a_hung_backend_gets_a_gateway_timeout_not_a_hung_page(backend: FakeBackend) -> None:
    gate = threading.Event()
    backend.gates["restart_pcscd"] = gate
    panel = ControlPanel(backend, port=0, backend_timeout_s=0.3)
    panel.start()
    try:
        started = time.monotonic()
        answer = call(panel, "POST", "/api/pcscd/restart", {})
        assert answer.status == 504
        assert "pcscd did not answer within 0.3 s" in answer.error()
        assert time.monotonic() - started < 2.0
        assert call(panel, "GET", "/api/state").status == 200
    finally:
        gate.set()
        panel.stop()


def test_calls_left_hanging_are_bounded(backend: FakeBackend) -> None:
    # A device that never answers must not cost a thread per poll of the page for ever.
    gate = threading.Event()
    backend.gates["tap"] = gate
    panel = ControlPanel(backend, port=0, backend_timeout_s=0.05)
    panel.start()
    try:
        statuses = [call(panel, "POST", "/api/tap", {"target": "start"}).status for _ in range(17)]
        assert statuses == [504] * 16 + [503]
        assert "still hanging" in call(panel, "POST", "/api/tap", {"target": "start"}).error()
        gate.set()
        deadline = time.monotonic() + 5.0
        while call(panel, "POST", "/api/tap", {"target": "start"}).status != 200:
            assert time.monotonic() < deadline, "hung calls never gave their places back"
            time.sleep(0.02)
    finally:
        gate.set()
        panel.stop()


# -- the terminal's screen -----------------------------------------------------------------------


def test_screen_png_is_the_terminals_screenshot(panel: ControlPanel) -> None:
    answer = call(panel, "GET", "/api/screen.png")
    assert answer.status == 200
    assert answer.content_type == "image/png"
    assert answer.body == SCREEN_PNG
    # The picture changes under the same URL; a cached frame would freeze the live view.
    assert answer.headers["Cache-Control"] == "no-store"


def test_screen_png_with_the_terminal_down_is_a_clear_json_error(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.failures["screenshot"] = urllib.error.URLError(
        ConnectionRefusedError(111, "Connection refused")
    )
    answer = call(panel, "GET", "/api/screen.png")
    assert answer.status == 503
    assert answer.error().startswith("terminal not reachable")


def test_screen_png_that_is_not_a_png_is_refused(panel: ControlPanel, backend: FakeBackend) -> None:
    backend.screenshot_bytes = b"<html>oops</html>"
    answer = call(panel, "GET", "/api/screen.png")
    assert answer.status == 502
    assert "not a PNG" in answer.error()


def test_state_joins_device_summary_and_screen(panel: ControlPanel, backend: FakeBackend) -> None:
    state = call(panel, "GET", "/api/state").json()
    assert state["devices"] == backend.summary
    assert state["zone"] == {"name": "Asia/Shanghai", "label": "CST"}
    assert state["devices_error"] is None
    screen = state["screen"]
    assert isinstance(screen, dict)
    assert screen["screen"] == "attract"
    assert screen["targets"] == [{"id": "start", "label": "开始", "enabled": True}]
    assert state["screen_error"] is None


def test_state_with_the_terminal_down_still_shows_the_devices(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.failures["screen"] = ConnectionRefusedError(111, "Connection refused")
    answer = call(panel, "GET", "/api/state")
    assert answer.status == 200
    state = answer.json()
    assert state["screen"] is None
    assert str(state["screen_error"]).startswith("terminal not reachable")
    assert state["devices"] == backend.summary


def test_state_with_the_devices_failing_still_shows_the_screen(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.failures["device_summary"] = BackendError("printer thread died")
    state = call(panel, "GET", "/api/state").json()
    assert state["devices"] is None
    assert state["devices_error"] == "devices failed: printer thread died"
    assert isinstance(state["screen"], dict)


# -- receipts and presets -------------------------------------------------------------------------


def test_state_says_when_the_card_pull_fault_fired_in_the_terminals_local_time(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    backend.summary = DeviceSummary(
        **backend.summary, card_pull_armed=False, card_pulled_at="2026-12-06T04:03:05.250+00:00"
    )
    devices = call(panel, "GET", "/api/state").json()["devices"]
    assert isinstance(devices, dict)
    assert devices["card_pull_armed"] is False
    assert devices["card_pulled_at"] == "2026-12-06T12:03:05.250000+08:00"
    assert devices["card_pulled_at_local"] == "2026-12-06 12:03:05 CST"


def test_receipt_times_are_local_with_the_zone_as_the_receipt_prints_them(
    panel: ControlPanel,
) -> None:
    receipts = call(panel, "GET", "/api/receipts").json()["receipts"]
    assert isinstance(receipts, list)
    assert receipts[0]["printed_at"] == "2025-03-01T09:30:00+08:00"
    assert receipts[0]["printed_at_local"] == "2025-03-01 09:30:00 CST"
    assert receipts[1]["printed_at_local"] == "2025-03-01 09:41:00 CST"


@pytest.mark.parametrize(
    ("zone", "label", "local"),
    [
        ("Asia/Shanghai", "CST", "2025-03-01 09:30:00 CST"),
        # A zone whose abbreviation is a bare number ("+08") is said as its offset.
        ("Asia/Singapore", "+08:00", "2025-03-01 09:30:00 +08:00"),
        ("America/Sao_Paulo", "-03:00", "2025-02-28 22:30:00 -03:00"),
        ("Europe/Berlin", "CET", "2025-03-01 02:30:00 CET"),
    ],
)
def test_times_follow_the_terminals_configured_zone_not_the_machines(
    zone: str, label: str, local: str
) -> None:
    backend = FakeBackend(zone=ZoneInfo(zone))
    panel = ControlPanel(backend, port=0)
    panel.start()
    try:
        receipts = call(panel, "GET", "/api/receipts").json()["receipts"]
        assert isinstance(receipts, list)
        assert receipts[0]["printed_at_local"] == local
        zone_answer = call(panel, "GET", "/api/state").json()["zone"]
        assert isinstance(zone_answer, dict)
        assert zone_answer["name"] == zone
        # Berlin is CET or CEST depending on today; the others never change.
        assert zone_answer["label"] in ({label, "CEST"} if zone == "Europe/Berlin" else {label})
    finally:
        panel.stop()


def test_a_time_without_an_offset_is_shown_as_given(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    # Whether a naive stamp meant UTC or local time is unknown; no zone is made up for it.
    backend.summary = DeviceSummary(**backend.summary, card_pulled_at="2026-12-06 04:03:05")
    devices = call(panel, "GET", "/api/state").json()["devices"]
    assert isinstance(devices, dict)
    assert devices["card_pulled_at"] == "2026-12-06 04:03:05"
    assert "card_pulled_at_local" not in devices


def test_receipts_list_points_at_the_panels_own_png_route(panel: ControlPanel) -> None:
    receipts = call(panel, "GET", "/api/receipts").json()["receipts"]
    assert isinstance(receipts, list)
    assert [r["index"] for r in receipts] == [0, 1]
    assert [r["png_url"] for r in receipts] == ["api/receipts/0.png", "api/receipts/1.png"]
    assert receipts[0]["text"] == "参保证明\n张*"
    # The listed URL, taken relative to the page as the browser does, fetches the picture.
    picture = call(panel, "GET", "/" + receipts[1]["png_url"])
    assert picture.status == 200
    assert picture.content_type == "image/png"
    assert picture.body == RECEIPT_PNG


def test_an_unknown_receipt_is_404_and_a_bad_index_400(
    panel: ControlPanel, backend: FakeBackend
) -> None:
    missing = call(panel, "GET", "/api/receipts/7.png")
    assert missing.status == 404
    assert missing.error() == "no receipt 7"
    backend.calls.clear()
    for bad in ("abc", "-1", "1.5", "9999999999"):
        answer = call(panel, "GET", f"/api/receipts/{bad}.png")
        assert answer.status == 400, bad
        assert "non-negative integer" in answer.error()
    assert backend.calls == []


def test_presets_come_from_the_backend(panel: ControlPanel) -> None:
    assert call(panel, "GET", "/api/presets").json() == {
        "presets": [{"label": "张三 (已参保)", "id_number": "11010519491231002X", "name": "张三"}]
    }


# -- the page ----------------------------------------------------------------------------------

KEY_CONTROLS = [
    "screen",
    "targets",
    "preset",
    "id-number",
    "name",
    "card-insert-ssse",
    "card-insert-other",
    "card-remove",
    "card-pull",
    "printer-statuses",
    "paper-lines",
    "paper-out-after",
    "hub-ok",
    "hub-delay",
    "hub-slow",
    "hub-down",
    "hub-error",
    "broker-up",
    "broker-down",
    "pcscd-restart",
    "receipts",
    "status",
    "idcard-preset",
    "idcard-number",
    "idcard-name",
    "idcard-valid-until",
    "idcard-type",
    "idcard-sex",
    "idcard-place",
    "idcard-remove",
    "idcard-fault",
    "idcard-plug",
    "idcard-unplug",
    "idcard-state",
    "ecode-ttl",
    "ecode-issue",
    "ecode-scan",
    "ecode-qr",
    "ecode-text",
    "card-insert-badge",
]


def test_page_has_the_key_controls(panel: ControlPanel) -> None:
    answer = call(panel, "GET", "/")
    assert answer.status == 200
    assert answer.content_type == "text/html; charset=utf-8"
    page = answer.body.decode("utf-8")
    for control in KEY_CONTROLS:
        assert f'id="{control}"' in page, control
    for status in PRINTER_STATUSES:
        assert f'data-status="{status}"' in page, status
    for mode in ID_CARD_FAULTS:
        assert f'data-fault="{mode}"' in page, mode
    for card_type in ID_CARD_TYPES:
        assert f'<option value="{card_type}">' in page, card_type
    # The issued code is drawn as a QR, and the scan button sends it to the virtual scanner.
    for shown in ("api/qr.png?data=", "scan this code", "idcard_state", "idcard_fault",
                  "idcard_path", "电子社保卡", "身份证"):
        assert shown in page, shown
    assert "terminal not reachable" in page
    # Times as the terminal shows them, and the card pull fault's state beside its button.
    for shown in ("printed_at_local", "card_pulled_at_local", "card_pull_armed", "timeZone"):
        assert shown in page, shown
    assert 'id="card-pull-state"' in page
    # Clicks must be scaled from the displayed size to the screenshot's own pixels.
    assert "naturalWidth" in page and "naturalHeight" in page


def test_every_api_path_the_page_uses_is_served(panel: ControlPanel) -> None:
    page = call(panel, "GET", "/").body.decode("utf-8")
    paths = sorted(set(re.findall(r"""["'`](api/[a-z./-]+)["'`]""", page)))
    assert len(paths) >= 14, paths  # guard against the pattern silently matching nothing
    for path in paths:
        statuses = {call(panel, method, "/" + path, {}).status for method in ("GET", "POST")}
        # The right method answers 200 or 400 (a body of {} is not enough for some); the other 405.
        assert 404 not in statuses, (path, statuses)
        assert statuses & {200, 400}, (path, statuses)


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::1", "kiosk.local"])
def test_the_panel_refuses_to_listen_beyond_loopback(backend: FakeBackend, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ControlPanel(backend, host=host, port=0)


def test_the_panel_serves_on_loopback_and_stops_cleanly(backend: FakeBackend) -> None:
    panel = ControlPanel(backend, host="localhost", port=0)
    panel.start()
    url = panel.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    assert not url.endswith(":0/")
    assert call(panel, "GET", "/").status == 200
    panel.stop()
    panel.stop()  # twice is harmless
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_requests_are_not_logged_to_stderr(
    panel: ControlPanel, capfd: pytest.CaptureFixture[str]
) -> None:
    call(panel, "GET", "/api/state")
    call(panel, "POST", "/api/tap", {"target": ""})
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/controller/door", {"open": True}, ("set_door", (True,))),
        ("/api/controller/door", {"open": False}, ("set_door", (False,))),
        ("/api/controller/tamper", {"triggered": True}, ("set_tamper", (True,))),
        ("/api/controller/temperature", {"celsius": 61.5}, ("set_temperature", (61.5,))),
        ("/api/controller/temperature", {"celsius": -40}, ("set_temperature", (-40.0,))),
        ("/api/terminal/freeze", {"frozen": True}, ("freeze_terminal", (True,))),
    ],
)
def test_the_co_processor_routes_reach_the_backend(
    panel: ControlPanel, backend: FakeBackend, path: str, body: dict[str, object],
    expected: tuple[str, tuple[object, ...]],
) -> None:
    answer = call(panel, "POST", path, body)
    assert answer.status == 200, answer.body
    assert backend.calls == [expected]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/controller/door", {"open": "yes"}),
        ("/api/controller/door", {}),
        ("/api/controller/tamper", {"triggered": 1}),
        ("/api/controller/temperature", {"celsius": 126}),
        ("/api/controller/temperature", {"celsius": True}),
        ("/api/controller/temperature", {"celsius": "hot"}),
        ("/api/terminal/freeze", {"frozen": None}),
    ],
)
def test_the_co_processor_routes_refuse_bad_bodies(
    panel: ControlPanel, backend: FakeBackend, path: str, body: dict[str, object]
) -> None:
    answer = call(panel, "POST", path, body)
    assert answer.status == 400 and answer.json()["error"]
    assert backend.calls == []

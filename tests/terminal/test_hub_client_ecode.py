"""The adapter's ``resolve_code`` against the real simulated hub over loopback: the person, each
refusal, the hub down or slow, answers that do not hold together, the DeferredHub passing it on,
and nothing personal in errors or logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contracts.codes import E_ID_PREFIX
from devices.base import CardHolder, IdentityDocument, Sex
from flows.hub import (
    FINAL_REFUSALS,
    CodeExpired,
    CodeRefused,
    CodeUnknown,
    CodeUsed,
    ErrandRefused,
    Hub,
    HubError,
    HubUnavailable,
)
from simulator.hub import CHINA_STANDARD_TIME, SimHub
from simulator.hub_ecodes import DEFAULT_CODE_TTL_S
from terminal.deferred import DeferredHub
from terminal.hub_client import HttpServiceHub

PERSON = "34052419800101001X"  # valid, listed nowhere; born 1980-01-01, male
WOMAN = "510107199211300021"  # born 1992-11-30, female
NAME = "欧阳娜娜"
TERMINAL = "T-0042"
NOW = dt.datetime(2025, 3, 5, 9, 30, tzinfo=CHINA_STANDARD_TIME)
NEVER_ISSUED = E_ID_PREFIX + "Zq3" * 14


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: NOW) as hub:
        yield hub


@pytest.fixture
def client(hub: SimHub) -> Iterator[HttpServiceHub]:
    adapter = HttpServiceHub(hub.url, timeout_s=2.0)
    yield adapter
    adapter.close()


def assert_nothing_personal_in(exc: BaseException, *secrets: str) -> None:
    """Neither the error nor anything chained to it may carry the person or the code."""
    seen: BaseException | None = exc
    while seen is not None:
        for secret in secrets:
            assert secret not in str(seen)
            assert secret not in repr(seen)
            assert secret not in repr(seen.args)
        seen = seen.__cause__ or seen.__context__


# --- the person ------------------------------------------------------------------------------


def test_a_code_resolves_to_the_holder_it_was_issued_for(
    client: HttpServiceHub, hub: SimHub
) -> None:
    holder = client.resolve_code(hub.issue_code(PERSON, NAME), TERMINAL)
    assert holder == CardHolder(
        id_number=PERSON,
        name=NAME,
        sex=Sex.MALE,
        birth_date=dt.date(1980, 1, 1),
        card_number="",
        region_code="340524",
        expires=None,
        document=IdentityDocument.E_CODE,
    )
    assert PERSON not in repr(holder) and NAME not in repr(holder)
    [stored] = hub.codes()
    assert stored.used_by == TERMINAL


def test_a_woman_is_female_with_her_own_region(client: HttpServiceHub, hub: SimHub) -> None:
    holder = client.resolve_code(hub.issue_code(WOMAN, "李华"), TERMINAL)
    assert (holder.sex, holder.birth_date, holder.region_code) == (
        Sex.FEMALE, dt.date(1992, 11, 30), "510107"
    )  # fmt: skip


# --- refusals --------------------------------------------------------------------------------


def test_a_code_used_once_is_code_used(client: HttpServiceHub, hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    client.resolve_code(code, TERMINAL)
    with pytest.raises(CodeUsed) as caught:
        client.resolve_code(code, "T-0043")
    assert caught.value.reason == "code_used"
    assert isinstance(caught.value, CodeRefused) and isinstance(caught.value, ErrandRefused)
    assert_nothing_personal_in(caught.value, code, PERSON, NAME)


def test_an_expired_code_is_code_expired(client: HttpServiceHub, hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    hub.advance(DEFAULT_CODE_TTL_S)
    with pytest.raises(CodeExpired) as caught:
        client.resolve_code(code, TERMINAL)
    assert caught.value.reason == "code_expired"
    assert_nothing_personal_in(caught.value, code, PERSON, NAME)


def test_a_code_this_hub_never_issued_is_code_unknown(
    client: HttpServiceHub, hub: SimHub, tmp_path: Path
) -> None:
    with SimHub(db_path=tmp_path / "other.sqlite", clock=lambda: NOW) as other:
        foreign = other.issue_code(PERSON, NAME)
    for code in (NEVER_ISSUED, foreign):
        with pytest.raises(CodeUnknown) as caught:
            client.resolve_code(code, TERMINAL)
        assert caught.value.reason == "code_unknown"
        assert_nothing_personal_in(caught.value, code)


@pytest.mark.parametrize(
    "text",
    [PERSON, "EID1:short", f" {NEVER_ISSUED}", "https://hub.example.gov.cn/v1/progress/SB1?c=AAAA"],
)
def test_what_is_not_an_e_id_code_never_leaves_the_terminal(
    hub: SimHub, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="terminal.hub_client")
    hub.set_fault("down")  # anything sent would be HubUnavailable, not CodeUnknown
    client = HttpServiceHub(hub.url, timeout_s=1.0)
    try:
        with pytest.raises(CodeUnknown) as caught:
            client.resolve_code(text, TERMINAL)
    finally:
        client.close()
    assert "hub resolve_code" not in caplog.text  # no exchange was made
    assert_nothing_personal_in(caught.value, text.strip())


def test_every_code_refusal_is_final() -> None:
    # A flow tells the resident "get a new code", never "try again later".
    assert {"code_expired", "code_used", "code_unknown"} <= FINAL_REFUSALS


# --- the hub in trouble ----------------------------------------------------------------------


def test_hub_down_is_unavailable_and_the_code_is_still_good(
    client: HttpServiceHub, hub: SimHub
) -> None:
    code = hub.issue_code(PERSON, NAME)
    hub.set_fault("down")
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        client.resolve_code(code, TERMINAL)
    assert time.monotonic() - started < 1.0
    assert_nothing_personal_in(caught.value, code)
    hub.set_fault("ok")
    assert client.resolve_code(code, TERMINAL).id_number == PERSON


def test_hub_answering_503_is_unavailable(client: HttpServiceHub, hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    hub.set_fault("error")
    with pytest.raises(HubUnavailable):
        client.resolve_code(code, TERMINAL)


def test_hub_slower_than_the_timeout_is_unavailable_within_the_timeout(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    client = HttpServiceHub(hub.url, timeout_s=0.5)
    hub.set_fault("slow", delay_s=5.0)
    started = time.monotonic()
    try:
        with pytest.raises(HubUnavailable) as caught:
            client.resolve_code(code, TERMINAL)
    finally:
        client.close()
    assert 0.4 < time.monotonic() - started < 1.5
    assert "timed out" in str(caught.value)
    assert_nothing_personal_in(caught.value, code, PERSON, NAME)
    # The hub resolved it meanwhile: the answer was lost, and the code with it. The resident
    # shows a fresh one; a retry of this one says so rather than identifying twice.
    hub.set_fault("ok")
    again = HttpServiceHub(hub.url, timeout_s=2.0)
    try:
        with pytest.raises(CodeUsed):
            again.resolve_code(code, TERMINAL)
    finally:
        again.close()


# --- answers that do not hold together ---------------------------------------------------------


class _CannedHandler(BaseHTTPRequestHandler):
    server: _CannedServer
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _CannedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b"{}")
        super().__init__(("127.0.0.1", 0), _CannedHandler)


@pytest.fixture
def canned() -> Iterator[_CannedServer]:
    server = _CannedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


GOOD = {"id_number": PERSON, "name": NAME, "sex": "male", "birth_date": "1980-01-01"}


def test_a_well_formed_canned_answer_is_a_holder(canned: _CannedServer) -> None:
    canned.answer = (200, json.dumps({**GOOD, "extra": 1}).encode())
    client = HttpServiceHub(f"http://127.0.0.1:{canned.server_address[1]}", timeout_s=2.0)
    try:
        assert client.resolve_code(NEVER_ISSUED, TERMINAL).name == NAME
    finally:
        client.close()


@pytest.mark.parametrize(
    "answer",
    [
        (200, {**GOOD, "id_number": PERSON[:-1] + "9"}),  # fails its check digit
        (200, {**GOOD, "birth_date": "1980-01-02"}),  # not the ID number's
        (200, {**GOOD, "name": ""}),
        (200, {**GOOD, "name": "张\n三"}),
        (200, {**GOOD, "sex": "m"}),
        (200, {key: value for key, value in GOOD.items() if key != "name"}),
        (200, {**GOOD, "id_number": 34052419800101001}),
        (200, "not an object"),
        (404, {"message": "no error code: a proxy's page, not the hub"}),
    ],
)
def test_an_answer_that_does_not_hold_together_is_bad_answer(
    canned: _CannedServer, answer: tuple[int, object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, body = answer
    canned.answer = (status, json.dumps(body, ensure_ascii=False).encode())
    client = HttpServiceHub(f"http://127.0.0.1:{canned.server_address[1]}", timeout_s=2.0)
    try:
        with pytest.raises(HubError) as caught:
            client.resolve_code(NEVER_ISSUED, TERMINAL)
    finally:
        client.close()
    assert caught.value.reason == "bad_answer"
    assert not isinstance(caught.value, HubUnavailable)
    assert_nothing_personal_in(caught.value, PERSON, PERSON[:-1], NAME, NEVER_ISSUED)
    assert NAME not in caplog.text and PERSON[:-1] not in caplog.text


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [(404, "code_unknown", CodeUnknown), (409, "code_used", CodeUsed),
     (410, "code_expired", CodeExpired), (409, "something_new", ErrandRefused)],
)  # fmt: skip
def test_refusals_map_by_their_code(
    canned: _CannedServer, status: int, reason: str, kind: type[ErrandRefused]
) -> None:
    canned.answer = (status, json.dumps({"error": reason}).encode())
    client = HttpServiceHub(f"http://127.0.0.1:{canned.server_address[1]}", timeout_s=2.0)
    try:
        with pytest.raises(kind) as caught:
            client.resolve_code(NEVER_ISSUED, TERMINAL)
    finally:
        client.close()
    assert type(caught.value) is kind
    assert caught.value.reason == (reason if kind is not ErrandRefused else "refused")


# --- the deferred hub ------------------------------------------------------------------------


def test_the_deferred_hub_passes_resolve_code_on(client: HttpServiceHub, hub: SimHub) -> None:
    built: list[HttpServiceHub] = []

    def get() -> Hub:
        built.append(client)
        return client

    deferred: Hub = DeferredHub(get)  # typed as the port: mypy checks it implements all of it
    assert built == []
    code = hub.issue_code(PERSON, NAME)
    assert deferred.resolve_code(code, TERMINAL).id_number == PERSON
    assert len(built) == 1
    with pytest.raises(CodeUsed):
        deferred.resolve_code(code, TERMINAL)


# --- privacy ---------------------------------------------------------------------------------


def test_no_code_name_or_id_number_in_the_logs(
    client: HttpServiceHub, hub: SimHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = hub.issue_code(PERSON, NAME)
    client.resolve_code(code, TERMINAL)
    with pytest.raises(CodeUsed):
        client.resolve_code(code, TERMINAL)
    expired = hub.issue_code(WOMAN, "李华", ttl_s=1)
    hub.advance(1)
    with pytest.raises(CodeExpired):
        client.resolve_code(expired, TERMINAL)
    hub.set_fault("down")
    with pytest.raises(HubUnavailable):
        client.resolve_code(NEVER_ISSUED, TERMINAL)
    assert "hub resolve_code -> HTTP 200" in caplog.text  # the adapter does log; cleanly
    for secret in (PERSON, WOMAN, NAME, "李华", code, expired, NEVER_ISSUED):
        assert secret not in caplog.text
        assert secret.removeprefix(E_ID_PREFIX) not in caplog.text

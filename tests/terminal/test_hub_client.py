"""The terminal's hub adapter against the real simulated hub over loopback, and bad answers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flows.hub import (
    DocumentField,
    ErrandDocument,
    ErrandRefused,
    HubError,
    HubUnavailable,
    RatingSubmission,
)
from simulator.hub import SimHub
from simulator.hub_records import ERRAND_SSC_ENROLLMENT_PROOF, SPECIAL_PEOPLE, SpecialPerson
from terminal.hub_client import HttpServiceHub

ERRAND = ERRAND_SSC_ENROLLMENT_PROOF
PERSON = "34052419800101001X"  # valid, listed nowhere, with the X check character
WRONG_CHECK_DIGIT = "340524198001010019"
TERMINAL = "T-0042"
UTC8 = dt.timezone(dt.timedelta(hours=8))

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite") as hub:
        yield hub


@pytest.fixture
def client(hub: SimHub) -> Iterator[HttpServiceHub]:
    adapter = HttpServiceHub(hub.url, timeout_s=2.0)
    yield adapter
    adapter.close()


def rating(case_number: str, level: int = 4) -> RatingSubmission:
    return RatingSubmission(
        case_number=case_number,
        errand_id=ERRAND,
        level=level,
        terminal_id=TERMINAL,
        rated_at=dt.datetime(2025, 3, 5, 9, 31, tzinfo=UTC8),
    )


def get_json(url: str) -> tuple[int, Any]:
    try:
        with _OPENER.open(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def assert_no_person_in(exc: BaseException, *people: str) -> None:
    """Neither the error nor anything chained to it may carry the person's ID number."""
    seen: BaseException | None = exc
    while seen is not None:
        for person in people:
            assert person not in str(seen)
            assert person not in repr(seen)
            assert person not in repr(seen.args)
        seen = seen.__cause__ or seen.__context__


# --- documents -------------------------------------------------------------------------------


def test_a_valid_person_gets_a_stable_document(client: HttpServiceHub, hub: SimHub) -> None:
    first = client.run_errand(ERRAND, PERSON, TERMINAL)
    second = client.run_errand(ERRAND, PERSON, TERMINAL)

    assert isinstance(first, ErrandDocument)
    assert first.fields == second.fields
    assert all(isinstance(f, DocumentField) for f in first.fields)
    assert dict((f.label, f.value) for f in first.fields)["参保状态"] == "正常参保"
    assert first.title == "社会保险参保证明"
    assert first.errand_id == ERRAND
    assert first.case_number != second.case_number
    assert first.case_number.startswith("SB")
    assert first.verify_url == f"{hub.url}/v1/documents/{first.verification_code}"
    assert first.issued_at.utcoffset() == dt.timedelta(hours=8)
    assert abs(first.issued_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert PERSON not in repr(first)


def test_a_wrong_check_digit_is_refused_as_invalid_id(client: HttpServiceHub) -> None:
    with pytest.raises(ErrandRefused) as caught:
        client.run_errand(ERRAND, WRONG_CHECK_DIGIT, TERMINAL)
    assert caught.value.reason == "invalid_id"
    assert_no_person_in(caught.value, WRONG_CHECK_DIGIT)


@pytest.mark.parametrize("person", list(SPECIAL_PEOPLE.values()), ids=lambda p: p.refusal)
def test_each_special_person_is_refused_with_their_reason(
    client: HttpServiceHub, person: SpecialPerson
) -> None:
    with pytest.raises(ErrandRefused) as caught:
        client.run_errand(ERRAND, person.id_number, TERMINAL)
    assert caught.value.reason == person.refusal
    assert_no_person_in(caught.value, person.id_number)


@pytest.mark.parametrize("errand_id", ["residence_permit", "../health", "a b/c?d"])
def test_an_unknown_errand_is_refused(client: HttpServiceHub, errand_id: str) -> None:
    # The id is quoted into the path, so "../health" names an errand, not another endpoint.
    with pytest.raises(ErrandRefused) as caught:
        client.run_errand(errand_id, PERSON, TERMINAL)
    assert caught.value.reason == "unknown_errand"


def test_an_issued_code_verifies_and_a_made_up_one_does_not(client: HttpServiceHub) -> None:
    document = client.run_errand(ERRAND, PERSON, TERMINAL)

    status, check = get_json(document.verify_url)
    assert (status, check["valid"], check["terminal_id"]) == (200, True, TERMINAL)
    assert dt.datetime.fromisoformat(check["issued_at"]) == document.issued_at

    made_up = document.verify_url.rsplit("/", 1)[0] + "/ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    assert get_json(made_up)[1]["valid"] is False


# --- the hub in trouble ----------------------------------------------------------------------


def test_hub_down_is_unavailable_at_once(client: HttpServiceHub, hub: SimHub) -> None:
    hub.set_fault("down")
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert time.monotonic() - started < 1.0
    assert_no_person_in(caught.value, PERSON)
    with pytest.raises(HubUnavailable):
        client.submit_rating(rating("SB20250305000001"))

    hub.set_fault("ok")
    assert client.run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND


def test_hub_answering_503_is_unavailable(client: HttpServiceHub, hub: SimHub) -> None:
    hub.set_fault("error")
    with pytest.raises(HubUnavailable):
        client.run_errand(ERRAND, PERSON, TERMINAL)


def test_hub_slower_than_the_timeout_is_unavailable_within_the_timeout(hub: SimHub) -> None:
    client = HttpServiceHub(hub.url, timeout_s=0.5)
    hub.set_fault("slow", delay_s=5.0)
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert 0.4 < time.monotonic() - started < 1.5
    assert "timed out" in str(caught.value)
    assert_no_person_in(caught.value, PERSON)


def test_hub_slow_but_within_the_timeout_still_answers(hub: SimHub) -> None:
    client = HttpServiceHub(hub.url, timeout_s=2.0)
    hub.set_fault("slow", delay_s=0.3)
    assert client.run_errand(ERRAND, PERSON, TERMINAL).title == "社会保险参保证明"


# --- ratings ---------------------------------------------------------------------------------


def test_a_rating_sent_twice_is_stored_once(client: HttpServiceHub, hub: SimHub) -> None:
    case_number = client.run_errand(ERRAND, PERSON, TERMINAL).case_number
    client.submit_rating(rating(case_number))
    client.submit_rating(rating(case_number))
    assert hub.ratings() == [rating(case_number)]


def test_a_rating_whose_answer_was_lost_is_safe_to_send_again(hub: SimHub) -> None:
    # The outbox's case: the hub stores the rating but the answer comes too late, so the
    # terminal sees "unavailable" and sends it again later.
    case_number = HttpServiceHub(hub.url).run_errand(ERRAND, PERSON, TERMINAL).case_number
    hub.set_fault("slow", delay_s=2.0)
    with pytest.raises(HubUnavailable):
        HttpServiceHub(hub.url, timeout_s=0.2).submit_rating(rating(case_number))
    hub.set_fault("ok")
    HttpServiceHub(hub.url).submit_rating(rating(case_number))
    assert hub.ratings() == [rating(case_number)]


def test_a_rating_the_hub_will_never_take_is_a_final_error(client: HttpServiceHub) -> None:
    with pytest.raises(HubError) as caught:
        client.submit_rating(rating("SB20250305000001", level=9))
    # Not HubUnavailable: the outbox must drop it, not retry it forever.
    assert not isinstance(caught.value, HubUnavailable)
    assert caught.value.reason == "rating_rejected"


def test_a_rating_without_a_time_zone_is_a_programming_error(client: HttpServiceHub) -> None:
    naive = RatingSubmission("SB20250305000001", ERRAND, 5, TERMINAL, dt.datetime(2025, 3, 5))
    with pytest.raises(ValueError, match="timezone"):
        client.submit_rating(naive)


# --- privacy ---------------------------------------------------------------------------------


def test_the_hub_database_never_holds_the_id_number(
    client: HttpServiceHub, hub: SimHub, tmp_path: Path
) -> None:
    document = client.run_errand(ERRAND, PERSON, TERMINAL)
    client.submit_rating(rating(document.case_number))
    hub.stop()

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    assert document.verification_code.encode() in stored  # the search sees what is there
    assert PERSON.encode() not in stored
    assert PERSON[:17].encode() not in stored


def test_no_id_number_in_the_logs(
    client: HttpServiceHub, hub: SimHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.run_errand(ERRAND, PERSON, TERMINAL)
    with pytest.raises(ErrandRefused):
        client.run_errand(ERRAND, WRONG_CHECK_DIGIT, TERMINAL)
    hub.set_fault("down")
    with pytest.raises(HubUnavailable):
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert caplog.records  # the adapter does log; what it logs must be clean
    assert PERSON not in caplog.text
    assert WRONG_CHECK_DIGIT not in caplog.text


# --- answers that are not the hub's ----------------------------------------------------------


@dataclass
class Canned:
    """What the fake far end answers; it stands where a broken proxy or hub would."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_up: bool = False  # close the connection without any answer
    drip_s: float = 0.0  # pause before each byte of the body


class _CannedHandler(BaseHTTPRequestHandler):
    server: _CannedServer
    timeout = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        canned = self.server.canned
        if canned.hang_up:
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(canned.status)
        for name, value in canned.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(canned.body)))
        self.end_headers()
        if not canned.drip_s:
            self.wfile.write(canned.body)
            return
        self.wfile.flush()
        for byte in canned.body:
            time.sleep(canned.drip_s)
            self.wfile.write(bytes([byte]))
            self.wfile.flush()


class _CannedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, canned: Canned) -> None:
        self.canned = canned
        super().__init__(("127.0.0.1", 0), _CannedHandler)


@dataclass
class CannedHub:
    answer: Canned
    url: str

    def client(self, timeout_s: float = 2.0) -> HttpServiceHub:
        return HttpServiceHub(self.url, timeout_s=timeout_s)


@pytest.fixture
def canned() -> Iterator[CannedHub]:
    server = _CannedServer(Canned())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield CannedHub(server.canned, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _document(**changes: Any) -> bytes:
    document = {
        "errand_id": ERRAND,
        "title": "社会保险参保证明",
        "case_number": "SB20250305000001",
        "verification_code": "ABCD-EFGH-JKMN-PQRS",
        "verify_url": "https://hub.example/v1/documents/ABCD-EFGH-JKMN-PQRS",
        "issued_at": "2025-03-05T09:30:00+08:00",
        "fields": [{"label": "参保状态", "value": "正常参保"}],
    }
    return json.dumps(document | changes, ensure_ascii=False).encode()


def test_a_well_formed_canned_answer_is_accepted(canned: CannedHub) -> None:
    # The baseline for the cases below: the fake far end itself is not what makes them fail.
    answer, client = canned.answer, canned.client()
    answer.body = _document()
    document = client.run_errand(ERRAND, PERSON, TERMINAL)
    assert document.issued_at == dt.datetime(2025, 3, 5, 9, 30, tzinfo=UTC8)
    assert document.fields == (DocumentField("参保状态", "正常参保"),)


@pytest.mark.parametrize(
    "bad",
    [
        Canned(body=b"<html>portal login</html>"),
        Canned(body=b'{"errand_id": "ssc_enrollment_proof"}'),
        Canned(body=_document(issued_at="2025-03-05T09:30:00")),  # no offset
        Canned(body=_document(issued_at=1741138200)),
        Canned(body=_document(errand_id="another_errand")),
        Canned(body=_document(verify_url="javascript:alert(1)")),
        Canned(body=_document(fields=[{"label": "参保状态", "value": 7}])),
        Canned(body=_document(padding="x" * 300_000)),  # readable, but beyond the size cap
        Canned(body=json.dumps({"error": PERSON}).encode()),  # echoes the ID: not in the error
        Canned(404, b"<html>Not Found</html>"),  # a proxy's page: the base URL is wrong
        Canned(302, b"", {"Location": "http://elsewhere.example/"}),
        Canned(204),
    ],
    ids=lambda c: f"{c.status}:{c.body[:30]!r}",
)
def test_an_unreadable_answer_is_bad_answer(canned: CannedHub, bad: Canned) -> None:
    answer, client = canned.answer, canned.client()
    answer.status, answer.body, answer.headers = bad.status, bad.body, bad.headers
    with pytest.raises(HubError) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert type(caught.value) is HubError
    assert caught.value.reason == "bad_answer"
    assert_no_person_in(caught.value, PERSON)


def test_a_refusal_with_a_code_we_do_not_know_is_still_a_refusal(
    canned: CannedHub,
) -> None:
    answer, client = canned.answer, canned.client()
    answer.status, answer.body = 409, b'{"error": "under_review", "message": "..."}'
    with pytest.raises(ErrandRefused) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert caught.value.reason == "refused"  # never the hub's string as a translation key


@pytest.mark.parametrize("status", [500, 502, 504, 408, 429])
def test_try_later_statuses_are_unavailable(canned: CannedHub, status: int) -> None:
    answer, client = canned.answer, canned.client()
    answer.status, answer.body = status, b"<html>gateway</html>"
    with pytest.raises(HubUnavailable):
        client.run_errand(ERRAND, PERSON, TERMINAL)
    with pytest.raises(HubUnavailable):
        client.submit_rating(rating("SB20250305000001"))


def test_a_connection_closed_without_answer_is_unavailable(
    canned: CannedHub,
) -> None:
    answer, client = canned.answer, canned.client()
    answer.hang_up = True
    with pytest.raises(HubUnavailable) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert_no_person_in(caught.value, PERSON)


def test_an_answer_dripping_in_is_cut_off_at_the_timeout(
    canned: CannedHub,
) -> None:
    # Every byte comes well within the per-read timeout, but the whole would take about 20 s.
    canned.answer.body, canned.answer.drip_s = _document(), 0.05
    client = canned.client(timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(HubUnavailable):
        client.run_errand(ERRAND, PERSON, TERMINAL)
    assert time.monotonic() - started < 1.5


# --- configuration and TLS -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://hub.example/", "hub.example", "https://",
     "https://hub.example:99999/", "https://user:secret@hub.example/", "https://hub.example/?a=1",
     "https://hub.example/a b", "https://hub.例子.example/"],
)
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        HttpServiceHub(url)


def test_proxy_settings_in_the_environment_are_not_used(
    hub: SimHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) on loopback refuses: the call fails if urllib goes through this "proxy".
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert HttpServiceHub(hub.url).run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "hub-cert.pem", tmp_path / "hub-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=sim-hub", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def test_https_with_the_pinned_ca_file_works_and_without_it_does_not(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with SimHub(db_path=tmp_path / "tls.sqlite", tls=context) as hub:
        assert hub.url.startswith("https://")

        pinned = HttpServiceHub(hub.url, timeout_s=2.0, ca_file=cert)
        document = pinned.run_errand(ERRAND, PERSON, TERMINAL)
        assert document.verify_url.startswith("https://")

        with pytest.raises(HubUnavailable, match="TLS certificate not trusted"):
            HttpServiceHub(hub.url, timeout_s=2.0).run_errand(ERRAND, PERSON, TERMINAL)


# --- a far end that never finishes: every call ends at its deadline -------------------------

DEADLINE_S = 1.0
# What a call may take beyond its deadline: unwinding the exchange and handing the error back.
MARGIN_S = 0.3
REPO = Path(__file__).resolve().parents[2]

Behaviour = Callable[[socket.socket], None]


def read_request(connection: socket.socket) -> bytes:
    """One HTTP request: the head, then as many body bytes as its Content-Length says."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class RawHub:
    """A TCP server that reads each request and then plays ``behaviour`` on the raw socket.

    Behaviours end when the terminal hangs up (a send fails, or a read sees the end).
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[bytes] = []  # as received, head and body
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                self.requests.append(read_request(connection))
                self.behaviour(connection)
            except OSError:  # the terminal hung up
                pass


@pytest.fixture
def raw_hub() -> Iterator[Callable[[Behaviour], RawHub]]:
    started: list[RawHub] = []

    def start(behaviour: Behaviour) -> RawHub:
        started.append(RawHub(behaviour))
        return started[-1]

    yield start
    for server in started:
        server.close()


def drip_headers(connection: socket.socket) -> None:
    """A status line, then one byte of a header every 0.3 s, forever."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Padding: ")
    while True:
        time.sleep(0.3)
        connection.sendall(b"a")


def continue_forever(connection: socket.socket) -> None:
    """``100 Continue`` every 0.1 s, forever: each one is a complete, valid HTTP answer."""
    while True:
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.1)


def never_answer(connection: socket.socket) -> None:
    """Take the request, say nothing, until the terminal hangs up."""
    connection.recv(1)


def drip_body(connection: socket.socket) -> None:
    """Headers at once, then one byte of a 1000-byte body every 0.1 s."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    connection.sendall(b"Content-Length: 1000\r\n\r\n")
    while True:
        time.sleep(0.1)
        connection.sendall(b" ")


def flood_body(connection: socket.socket) -> None:
    """A body announced as 100 MB and sent as fast as the terminal reads."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
    while True:
        connection.sendall(b" " * 65536)


def flood_chunks(connection: socket.socket) -> None:
    """A chunked body that never ends."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        connection.sendall(b"10000\r\n" + b" " * 0x10000 + b"\r\n")


def answer_document(connection: socket.socket) -> None:
    body = _document()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    connection.sendall(head.encode() + body)


def assert_ends_at_the_deadline(client: HttpServiceHub) -> HubUnavailable:
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        client.run_errand(ERRAND, PERSON, TERMINAL)
    elapsed = time.monotonic() - started
    assert DEADLINE_S - 0.05 < elapsed < DEADLINE_S + MARGIN_S
    assert "timed out" in str(caught.value)
    assert_no_person_in(caught.value, PERSON)
    return caught.value


@pytest.mark.parametrize(
    "behaviour",
    [drip_headers, continue_forever, never_answer, drip_body],
    ids=lambda b: b.__name__,
)
def test_a_hub_that_never_finishes_its_answer_is_unavailable_at_the_deadline(
    raw_hub: Callable[[Behaviour], RawHub], behaviour: Behaviour
) -> None:
    # The terminal POSTs an errand; the far end plays ``behaviour`` (see its docstring) and
    # never completes an answer. Each read arrives well within the per-read timeout, so only a
    # deadline for the whole call ends it.
    client = HttpServiceHub(raw_hub(behaviour).url, timeout_s=DEADLINE_S)
    try:
        assert_ends_at_the_deadline(client)
    finally:
        client.close()


def test_a_tls_handshake_never_answered_is_unavailable_at_the_deadline(
    raw_hub: Callable[[Behaviour], RawHub],
) -> None:
    # https: the terminal sends its ClientHello; the far end accepts and never says a word.
    url = raw_hub(never_answer).url.replace("http://", "https://")
    client = HttpServiceHub(url, timeout_s=DEADLINE_S)
    try:
        assert_ends_at_the_deadline(client)
    finally:
        client.close()


@pytest.mark.parametrize("behaviour", [flood_body, flood_chunks], ids=lambda b: b.__name__)
def test_an_endless_body_is_bad_answer_at_the_size_cap(
    raw_hub: Callable[[Behaviour], RawHub], behaviour: Behaviour
) -> None:
    # The far end answers 200 and sends body bytes as fast as they are read, without end: the
    # terminal stops reading at the size cap, long before its deadline.
    client = HttpServiceHub(raw_hub(behaviour).url, timeout_s=DEADLINE_S)
    started = time.monotonic()
    try:
        with pytest.raises(HubError) as caught:
            client.run_errand(ERRAND, PERSON, TERMINAL)
    finally:
        client.close()
    assert time.monotonic() - started < DEADLINE_S / 2
    assert (type(caught.value), caught.value.reason) == (HubError, "bad_answer")


# --- HTTP framing: what a proxy or another server in front of the hub may send -----------------


def _answer_with(head: bytes, body_parts: tuple[bytes, ...] = ()) -> Behaviour:
    def answer(connection: socket.socket) -> None:
        connection.sendall(head)
        for part in body_parts:
            connection.sendall(part)
    return answer


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:])
                    ) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["chunked", "until_close", "after_continue"])
def test_an_answer_framed_any_way_http_allows_is_read_whole(
    raw_hub: Callable[[Behaviour], RawHub], framing: str
) -> None:
    body = _document()
    behaviour = {
        "chunked": _answer_with(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                                (_chunked(body),)),
        # HTTP/1.0 style: no length, the body ends where the connection does.
        "until_close": _answer_with(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", (body,)),
        "after_continue": _answer_with(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode(), (body,)),
    }[framing]
    client = HttpServiceHub(raw_hub(behaviour).url, timeout_s=DEADLINE_S)
    try:
        assert client.run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND
    finally:
        client.close()


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"errand_id\"",  # cut off
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",  # never asked for
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"",  # accepted, then closed
    ],
    ids=["cut_off", "two_lengths", "unasked_upgrade", "not_http", "closed"],
)
def test_an_answer_that_breaks_http_is_unavailable_without_its_bytes(
    raw_hub: Callable[[Behaviour], RawHub], head: bytes
) -> None:
    client = HttpServiceHub(raw_hub(_answer_with(head)).url, timeout_s=DEADLINE_S)
    started = time.monotonic()
    try:
        with pytest.raises(HubUnavailable) as caught:
            client.run_errand(ERRAND, PERSON, TERMINAL)
    finally:
        client.close()
    assert time.monotonic() - started < DEADLINE_S / 2  # known broken at once, not timed out
    assert str(caught.value) == "hub not reachable: broken HTTP answer"
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_the_request_names_the_host_under_its_base_path_and_asks_for_no_keep_alive(
    raw_hub: Callable[[Behaviour], RawHub],
) -> None:
    server = raw_hub(answer_document)
    port = server.url.rsplit(":", 1)[1]
    client = HttpServiceHub(server.url + "/gateway/hub/", timeout_s=DEADLINE_S)
    try:
        assert client.run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND
    finally:
        client.close()
    seen = server.requests
    head = seen[0].partition(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == f"POST /gateway/hub/v1/errands/{ERRAND}/run HTTP/1.1"
    pairs = (line.partition(":") for line in head[1:])
    fields = {name.lower(): value.strip() for name, _, value in pairs}
    assert fields["host"] == f"127.0.0.1:{port}"
    assert fields["connection"] == "close"
    assert fields["accept-encoding"] == "identity"
    assert fields["content-type"] == "application/json"
    assert int(fields["content-length"]) == len(seen[0].partition(b"\r\n\r\n")[2])


def test_after_a_call_cut_off_at_the_deadline_the_next_one_is_answered(
    raw_hub: Callable[[Behaviour], RawHub],
) -> None:
    # The hub lane's next errand: the same adapter, the far end now answering properly.
    server = raw_hub(drip_headers)
    client = HttpServiceHub(server.url, timeout_s=DEADLINE_S)
    try:
        assert_ends_at_the_deadline(client)
        server.behaviour = answer_document
        assert client.run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND
    finally:
        client.close()


def test_a_stuck_call_on_one_thread_does_not_hold_up_another(
    raw_hub: Callable[[Behaviour], RawHub],
) -> None:
    # The effect-hub worker's call hangs on a far end that drips headers; meanwhile the
    # rating-sender's call through the same adapter is answered at once.
    server = raw_hub(drip_headers)
    client = HttpServiceHub(server.url, timeout_s=DEADLINE_S)
    stuck: list[BaseException] = []

    def errand() -> None:
        try:
            client.run_errand(ERRAND, PERSON, TERMINAL)
        except HubError as error:
            stuck.append(error)

    try:
        worker = threading.Thread(target=errand)
        worker.start()
        time.sleep(0.2)  # the errand is now waiting for its headers
        server.behaviour = answer_document
        started = time.monotonic()
        assert client.run_errand(ERRAND, PERSON, TERMINAL).errand_id == ERRAND
        assert time.monotonic() - started < 0.3
        worker.join(DEADLINE_S + MARGIN_S)
        assert not worker.is_alive()
        assert [type(error) for error in stuck] == [HubUnavailable]
    finally:
        client.close()


def test_close_ends_calls_in_flight_and_later_calls_fail_at_once(
    raw_hub: Callable[[Behaviour], RawHub],
) -> None:
    # Shutdown while an errand waits on a silent far end with a long timeout.
    before = set(threading.enumerate())
    client = HttpServiceHub(raw_hub(never_answer).url, timeout_s=30.0)
    (loop_thread,) = [t for t in set(threading.enumerate()) - before if t.name == "hub-io"]
    outcome: list[BaseException] = []

    def errand() -> None:
        try:
            client.run_errand(ERRAND, PERSON, TERMINAL)
        except HubError as error:
            outcome.append(error)

    worker = threading.Thread(target=errand)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    client.close()
    worker.join(1.0)
    assert time.monotonic() - started < 1.0
    assert [type(error) for error in outcome] == [HubUnavailable]
    with pytest.raises(HubUnavailable):
        client.run_errand(ERRAND, PERSON, TERMINAL)
    client.close()  # twice is harmless
    assert not loop_thread.is_alive()


def test_an_adapter_dropped_without_close_stops_its_thread(hub: SimHub) -> None:
    # A rebuilt adapter, or one a test forgot: the garbage collector winds its loop down.
    before = set(threading.enumerate())
    client = HttpServiceHub(hub.url, timeout_s=DEADLINE_S)
    client.run_errand(ERRAND, PERSON, TERMINAL)
    (loop_thread,) = [t for t in set(threading.enumerate()) - before if t.name == "hub-io"]
    del client
    loop_thread.join(2.0)
    assert not loop_thread.is_alive()


# --- a resolver that never answers ----------------------------------------------------------

# Run in a child process whose /etc/resolv.conf names a silent resolver. Prints each call's
# outcome and duration, and how long close() took.
_LOOKUP_CHILD = """
import json, sys, time
from flows.hub import HubError
from terminal.hub_client import HttpServiceHub

url, timeout_s, calls = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
hub = HttpServiceHub(url, timeout_s=timeout_s)
outcomes = []
for _ in range(calls):
    started = time.monotonic()
    try:
        hub.run_errand("ssc_enrollment_proof", "34052419800101001X", "T-0042")
        outcomes.append(["answer", time.monotonic() - started])
    except HubError as error:
        outcomes.append([type(error).__name__, time.monotonic() - started])
started = time.monotonic()
getattr(hub, "close", lambda: None)()
print(json.dumps({"calls": outcomes, "close_s": time.monotonic() - started}), flush=True)
"""
RESOLVER_TIMEOUT_S = 30  # what the silent resolver costs a lookup that waits it out


def _private_mounts_available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "true"], check=False, capture_output=True, timeout=10
    )
    return probe.returncode == 0


@pytest.fixture
def silent_resolver() -> Iterator[tuple[str, socket.socket]]:
    """A UDP socket on port 53 of a random loopback address that reads queries, never answers."""
    if not _private_mounts_available():
        pytest.skip("needs root and unshare --mount to give a child its own /etc/resolv.conf")
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        resolver.bind((address, 53))
    except OSError as error:
        resolver.close()
        pytest.skip(f"cannot listen on {address}:53 ({error.strerror})")
    with resolver:
        yield address, resolver


def test_a_resolver_that_never_answers_costs_each_call_no_more_than_its_deadline(
    silent_resolver: tuple[str, socket.socket], tmp_path: Path
) -> None:
    # A child process, in a private mount namespace whose /etc/resolv.conf names a resolver that
    # takes every query and never answers, calls a hub given by name six times. Each call ends
    # at its deadline or sooner (lookups still hanging are capped, then calls fail at once),
    # close() is immediate, and the abandoned lookups do not hold the process at exit.
    address, resolver = silent_resolver
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(
        f"nameserver {address}\noptions timeout:{RESOLVER_TIMEOUT_S} attempts:1\n"
    )
    started = time.monotonic()
    child = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"', "sh", str(resolv_conf),
         sys.executable, "-c", _LOOKUP_CHILD, "http://hub.kiosk.test:8080", str(DEADLINE_S), "6"],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=RESOLVER_TIMEOUT_S * 3,
    )  # fmt: skip
    lifetime = time.monotonic() - started
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert [outcome for outcome, _ in report["calls"]] == ["HubUnavailable"] * 6
    assert all(took < DEADLINE_S + MARGIN_S for _, took in report["calls"])
    assert report["close_s"] < 0.5
    # Six calls of at most a second each, and Python's start: far below one resolver timeout.
    assert lifetime < RESOLVER_TIMEOUT_S / 2
    resolver.settimeout(0)
    assert resolver.recv(512)  # the lookups did reach the silent resolver


def test_the_adapter_brings_no_http_client_library_into_the_terminal() -> None:
    # httpx with httpcore and anyio cost a terminal ~9 MB resident for its whole life
    # (terminal/hub_wire.py); a later import of one of them through the adapter would quietly
    # bring that back.
    probe = ("import sys, terminal.hub_client; print(sorted("
             "{m.split('.')[0] for m in sys.modules} & {'httpx', 'httpcore', 'anyio'}))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                           text=True, timeout=60, check=True)
    assert found.stdout.strip() == "[]"

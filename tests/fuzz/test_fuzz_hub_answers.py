"""Fuzz the hub adapter over a real socket: whatever a hub answers, only a HubError comes out.

One local server plays the hub for the whole module; each example swaps the raw bytes it sends
back (status line, headers, framing, body) and makes one call through ``HttpServiceHub``. The
call must return a valid result or raise ``HubError`` (or a subclass) with a known reason, and no
error may quote the ID number, even when the answer echoes it back.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from flows.hub import REFUSAL_REASONS, ErrandDocument, HubError, RatingSubmission
from terminal.hub_client import HttpServiceHub

ERRAND = "ssc_enrollment_proof"
PERSON = "34052419800101001X"
TERMINAL = "T-0042"
RATING = RatingSubmission(
    case_number="SB20250305000001",
    errand_id=ERRAND,
    level=4,
    terminal_id=TERMINAL,
    rated_at=dt.datetime(2025, 3, 5, 9, 31, tzinfo=dt.timezone(dt.timedelta(hours=8))),
)
KNOWN_REASONS = REFUSAL_REASONS | {"refused", "hub_unavailable", "bad_answer", "rating_rejected"}
SIZE_CAP = 256 * 1024  # the adapter's answer size cap, approached from both sides below


# --- the far end ------------------------------------------------------------------------------


class AnswerServer:
    """Reads each request in full, sends ``answer`` as it is and hangs up, one at a time.

    Hanging up after every answer means no answer can leave the terminal waiting for more.
    """

    def __init__(self) -> None:
        self.answer = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, name="fuzz-hub", daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with connection:
                try:
                    _read_request(connection)
                    connection.sendall(self.answer)
                    connection.shutdown(socket.SHUT_WR)
                except OSError:  # the terminal hung up first (size cap): fine
                    pass


def _read_request(connection: socket.socket) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (int(v) for n, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
         if n.strip().lower() == b"content-length"),
        0,
    )  # fmt: skip
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


@pytest.fixture(scope="module")
def far_end() -> Iterator[tuple[AnswerServer, HttpServiceHub]]:
    server = AnswerServer()
    # Generous: every answer is complete when the server hangs up, so no call should wait.
    hub = HttpServiceHub(server.url, timeout_s=5.0)
    yield server, hub
    hub.close()
    server.close()


# --- answers ----------------------------------------------------------------------------------

_TEXT = st.text(max_size=12) | st.just(PERSON)
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and Infinity too: json.dumps writes them, strict parsers refuse them
    | _TEXT
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# Raw JSON text for one value: anything of any shape, deeply nested, or a huge integer.
_FRAGMENTS = st.one_of(
    _JSON_VALUES.map(_json),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(300, 6000).map(lambda n: "9" * n),
)
_BOUNDARY_TEXT = st.sampled_from([0, 1, 63, 64, 65, 511, 512, 513]).map(lambda n: "码" * n)
_ISSUED_AT = st.one_of(
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
    st.sampled_from(["2025-03-05T09:30:00+08:00", "2025-03-05T09:30:00", "", "now"]),
    _TEXT,
)


_HUB_DOCUMENT = {
    "errand_id": ERRAND,
    "title": "社会保险参保证明",
    "case_number": "SB20250305000001",
    "verification_code": "ABCD-EFGH-JKMN-PQRS",
    "verify_url": "https://hub.example/v1/documents/ABCD-EFGH-JKMN-PQRS",
    "issued_at": "2025-03-05T09:30:00+08:00",
    "fields": [{"label": "参保状态", "value": "正常参保"}],
}
_FIELD_LISTS = st.lists(
    st.fixed_dictionaries({"label": _TEXT | _BOUNDARY_TEXT, "value": _TEXT}), max_size=3
) | st.integers(63, 66).map(lambda n: [{"label": "参保状态", "value": "正常参保"}] * n)
# Plausible other values per field: wrong in type, length, form or time zone, or just right.
_FIELD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "errand_id": _TEXT,
    "title": _TEXT | _BOUNDARY_TEXT,
    "case_number": _TEXT | _BOUNDARY_TEXT,
    "verification_code": _TEXT | _BOUNDARY_TEXT,
    "verify_url": _TEXT | st.sampled_from(["http://h/", "javascript:alert(1)", "https://"]),
    "issued_at": _ISSUED_AT,
    "fields": _FIELD_LISTS,
}


@st.composite
def documents(draw: st.DrawFn) -> str:
    """The hub's document with a few fields dropped, replaced by plausible values or any JSON."""
    document = {name: _json(value) for name, value in _HUB_DOCUMENT.items()}
    for name in draw(st.lists(st.sampled_from([*_HUB_DOCUMENT, "extra"]), max_size=3)):
        how = draw(st.sampled_from(["plausible", "plausible", "any", "drop"]))
        if how == "drop":
            document.pop(name, None)
        elif how == "plausible" and name in _FIELD_VALUES:
            document[name] = _json(draw(_FIELD_VALUES[name]))
        else:
            document[name] = draw(_FRAGMENTS)
    return "{" + ", ".join(f"{_json(name)}: {value}" for name, value in document.items()) + "}"


_ERROR_BODIES = st.fixed_dictionaries(
    {"error": st.sampled_from(sorted(REFUSAL_REASONS)) | _TEXT | _JSON_VALUES}
).map(lambda answer: _json(answer).encode())
_BODIES = st.one_of(
    documents().map(str.encode),  # twice: the answer that gets furthest into the adapter
    documents().map(str.encode),
    _ERROR_BODIES,
    _FRAGMENTS.map(str.encode),
    st.binary(max_size=64),
    st.sampled_from([SIZE_CAP, SIZE_CAP + 1]).map(lambda n: b" " * n),
)
# What the hub says (200 most of all), then anything else an HTTP status line can carry.
_HUB_STATUSES = st.sampled_from([200, 200, 200, 200, 201, 404, 409, 422, 400, 503])
_ANY_STATUSES = st.sampled_from(
    [100, 101, 103, 204, 302, 401, 403, 408, 429, 500, 599, 600, 999]
) | st.integers(0, 999)
_HUB_HEADERS = st.sampled_from([b"Content-Type: application/json", b"Server: hub"])
_ODD_HEADERS = st.sampled_from(
    [
        b"Content-Type: text/html; charset=gbk",
        b"Content-Encoding: gzip",
        b"Location: http://elsewhere.example/",
        b"Connection: keep-alive",
        b"Connection: Upgrade",
        b"Upgrade: websocket",
        b"Transfer-Encoding: gzip, chunked",
        b"Content-Length: 5",
        b"Content-Length: -1",
        b"X-Echo: " + PERSON.encode(),
    ]
) | st.binary(max_size=24).map(lambda line: line.replace(b"\n", b""))


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, start = b"", 0
    for size in [*sizes, len(body)]:
        piece = body[start : start + max(size, 1)]
        if not piece:
            break
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        start += len(piece)
    return out + b"0\r\n\r\n"


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """One raw HTTP answer: a document, a refusal, another answer shaped like the hub's, one with
    its envelope perturbed, or not HTTP at all."""
    shape = draw(st.sampled_from(["document", "refusal", "hub", "perturbed", "not_http"]))
    if shape == "not_http":
        return draw(st.binary(max_size=200))
    if shape == "document":  # what a working hub sends, so that the success path gets its share
        body = draw(documents()).encode()
        head = b"HTTP/1.1 200 OK\r\n"
        headers = [b"Content-Type: application/json"]
        framing = draw(st.sampled_from(["length", "close", "chunked"]))
    elif shape == "refusal":
        body = draw(_ERROR_BODIES)
        head = b"HTTP/1.1 %d Refused\r\n" % draw(st.sampled_from([404, 409, 422]))
        headers = [b"Content-Type: application/json"]
        framing = "length"
    elif shape == "hub":  # a well-formed envelope, so the body is what gets tested
        body = draw(_BODIES)
        head = b"HTTP/1.1 %03d OK\r\n" % draw(_HUB_STATUSES)
        headers = draw(st.lists(_HUB_HEADERS, max_size=2))
        framing = draw(st.sampled_from(["length", "close", "chunked"]))
    else:
        body = draw(_BODIES)
        status = draw(_ANY_STATUSES | _HUB_STATUSES)
        reason = draw(st.sampled_from([b"", PERSON.encode()]) | st.binary(max_size=12))
        head = b"HTTP/1.1 %03d " % status + reason.replace(b"\r", b"").replace(b"\n", b"")
        head = draw(st.integers(0, 2)) * b"HTTP/1.1 100 Continue\r\n\r\n" + head + b"\r\n"
        headers = draw(st.lists(_ODD_HEADERS | _HUB_HEADERS, max_size=3))
        framing = draw(st.sampled_from(["length", "short", "long", "close", "bad_chunks"]))
    if framing in {"length", "short", "long"}:
        length = len(body) + {"length": 0, "short": -1, "long": 1}[framing]
        headers.append(b"Content-Length: %d" % max(length, 0))
    elif framing in {"chunked", "bad_chunks"}:
        headers.append(b"Transfer-Encoding: chunked")
        body = _chunked(body, draw(st.lists(st.integers(1, 64), max_size=4)))
        if framing == "bad_chunks":
            body = body.replace(b"\r\n", b"\n", draw(st.integers(1, 3)))
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


# --- the property -----------------------------------------------------------------------------


def _assert_no_person_in(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        assert PERSON not in str(seen)
        assert PERSON not in repr(seen)
        seen = seen.__cause__ or seen.__context__


def _assert_valid(document: ErrandDocument) -> None:
    assert isinstance(document, ErrandDocument)
    assert document.errand_id == ERRAND
    assert document.title and document.case_number and document.verification_code
    assert document.verify_url.startswith(("http://", "https://"))
    assert document.issued_at.utcoffset() is not None
    assert all(isinstance(f.label, str) and isinstance(f.value, str) for f in document.fields)


def _check_error(error: HubError) -> None:
    event(f"{type(error).__name__}: {error.reason}")  # shown by --hypothesis-show-statistics
    assert error.reason in KNOWN_REASONS
    assert "timed out" not in str(error)  # every answer ends with the server hanging up
    _assert_no_person_in(error)


@given(answer=answers())
def test_any_answer_to_an_errand_is_a_valid_document_or_a_hub_error(
    far_end: tuple[AnswerServer, HttpServiceHub], answer: bytes
) -> None:
    server, hub = far_end
    server.answer = answer
    try:
        document = hub.run_errand(ERRAND, PERSON, TERMINAL)
    except HubError as error:
        _check_error(error)
    else:
        event("document issued")
        _assert_valid(document)


@given(answer=answers())
def test_any_answer_to_a_rating_is_taken_or_a_hub_error(
    far_end: tuple[AnswerServer, HttpServiceHub], answer: bytes
) -> None:
    server, hub = far_end
    server.answer = answer
    try:
        hub.submit_rating(RATING)
    except HubError as error:
        _check_error(error)
    else:
        event("rating taken")

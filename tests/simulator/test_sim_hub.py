"""The simulated hub over real HTTP on loopback: records, refusals, ratings, faults, privacy."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with python-escpos; no stubs

from flows.hub import DocumentField, RatingSubmission
from flows.identity import check_character, is_valid_id_number
from simulator.hub import CHINA_STANDARD_TIME, SimHub, _HubRequestHandler
from simulator.hub_records import (
    DECEASED,
    ERRAND_SSC_ENROLLMENT_PROOF,
    NOT_ENROLLED,
    SPECIAL_PEOPLE,
    SUSPENDED,
    SpecialPerson,
    enrollment_fields,
)

ERRAND = ERRAND_SSC_ENROLLMENT_PROOF
PERSON = "330106198506120015"  # valid, listed nowhere
OTHER_PEOPLE = ("34052419800101001X", "510107199211300021", "440524188001010014")
FIXED_NOW = dt.datetime(2025, 3, 5, 9, 30, tzinfo=CHINA_STANDARD_TIME)
REPO = Path(__file__).resolve().parents[2]

# Never take a proxy from the environment: these requests must reach the hub on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


def call(
    url: str, method: str = "GET", body: object = None, *, timeout: float = 5.0
) -> tuple[int, Any]:
    """One request; the status and the decoded JSON answer, whatever the status."""
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def run(hub: SimHub, id_number: str, errand: str = ERRAND) -> tuple[int, Any]:
    return call(
        f"{hub.url}/v1/errands/{errand}/run",
        "POST",
        {"id_number": id_number, "terminal_id": "T-0001"},
    )


def rating_body(case_number: str, level: int = 5) -> dict[str, Any]:
    return {
        "case_number": case_number,
        "errand_id": ERRAND,
        "level": level,
        "terminal_id": "T-0001",
        "rated_at": "2025-03-05T09:31:00+08:00",
    }


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite") as hub:
        yield hub


@pytest.fixture
def fixed_hub(tmp_path: Path) -> Iterator[SimHub]:
    """A hub whose clock stands at FIXED_NOW, so records and case numbers are predictable."""
    with SimHub(db_path=tmp_path / "fixed.sqlite", clock=lambda: FIXED_NOW) as hub:
        yield hub


# --- documents -------------------------------------------------------------------------------


def test_health_answers_ok(hub: SimHub) -> None:
    assert call(f"{hub.url}/v1/health") == (200, {"status": "ok"})


def test_any_valid_person_gets_a_proof_with_the_same_fields_each_time(fixed_hub: SimHub) -> None:
    status, first = run(fixed_hub, PERSON)
    status_again, second = run(fixed_hub, PERSON)

    assert (status, status_again) == (200, 200)
    assert first["title"] == "社会保险参保证明"
    assert first["errand_id"] == ERRAND
    assert first["fields"] == second["fields"]
    assert [f["label"] for f in first["fields"]] == [
        "参保险种", "参保状态", "参保地", "首次参保年月",
        "累计缴费月数", "当前缴费单位", "数据截至",
    ]  # fmt: skip
    # Each run is a new issue: its own case number from the day's sequence, its own code.
    assert (first["case_number"], second["case_number"]) == ("SB20250305000001", "SB20250305000002")
    assert first["verification_code"] != second["verification_code"]
    assert first["verification_code"].count("-") == 3
    assert len(first["verification_code"]) == 19
    assert first["verify_url"] == f"{fixed_hub.url}/v1/documents/{first['verification_code']}"
    assert dt.datetime.fromisoformat(first["issued_at"]) == FIXED_NOW


def test_records_are_pinned_so_scenarios_keep_their_data() -> None:
    # A change in the derivation changes every synthetic person; it must be a deliberate one.
    assert enrollment_fields(PERSON, dt.date(2025, 3, 5)) == (
        DocumentField("参保险种", "城镇职工基本养老保险、城镇职工基本医疗保险、失业保险、工伤保险"),
        DocumentField("参保状态", "正常参保"),
        DocumentField("参保地", "浙江省杭州市"),
        DocumentField("首次参保年月", "2009年03月"),
        DocumentField("累计缴费月数", "189"),
        DocumentField("当前缴费单位", "鼎盛物流有限公司"),
        DocumentField("数据截至", "2025年02月"),
    )


def test_records_are_the_same_from_another_hub_with_another_database(
    fixed_hub: SimHub, tmp_path: Path
) -> None:
    with SimHub(db_path=tmp_path / "other.sqlite", clock=lambda: FIXED_NOW) as other:
        for person in (PERSON, *OTHER_PEOPLE):
            assert run(fixed_hub, person)[1]["fields"] == run(other, person)[1]["fields"]


def test_records_follow_the_id_number() -> None:
    day = dt.date(2025, 3, 5)

    def facts(id_number: str) -> dict[str, str]:
        return {f.label: f.value for f in enrollment_fields(id_number, day)}

    assert facts(with_check("11010519491231002"))["参保地"] == "北京市"
    assert facts(with_check("44030419800101001"))["参保地"] == "广东省深圳市"
    assert facts(with_check("99010119800101001"))["参保地"] == "本地统筹区"
    assert facts(with_check("11010520150601001"))["参保险种"] == "城乡居民基本医疗保险"
    assert facts(with_check("11010519550101001"))["待遇状态"] == "按月领取养老金"
    # Different people get different records, not one canned answer.
    assert len({tuple(sorted(facts(p).items())) for p in (PERSON, *OTHER_PEOPLE)}) == 4
    # A month on, a working contributor has one month more.
    later = {f.label: f.value for f in enrollment_fields(PERSON, dt.date(2025, 4, 5))}
    assert int(later["累计缴费月数"]) == int(facts(PERSON)["累计缴费月数"]) + 1


def test_concurrent_runs_get_distinct_case_numbers(fixed_hub: SimHub) -> None:
    numbers: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        case_number = run(fixed_hub, PERSON)[1]["case_number"]
        with lock:
            numbers.append(case_number)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(numbers) == [f"SB20250305{n:06d}" for n in range(1, 9)]


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_number", "why"),
    [
        (PERSON[:-1] + "6", "check_digit"),  # the right one is 5
        ("33010619850612001", "shape"),
        ("330106198502300014", "birth_date"),
    ],
)
def test_a_bad_id_number_is_refused_as_invalid_id(hub: SimHub, id_number: str, why: str) -> None:
    status, answer = run(hub, id_number)
    assert status == 422
    assert answer["error"] == "invalid_id"
    assert why in answer["message"]
    assert id_number not in json.dumps(answer)


@pytest.mark.parametrize("person", list(SPECIAL_PEOPLE.values()), ids=lambda p: p.refusal)
def test_each_special_person_is_refused_with_their_reason(
    hub: SimHub, person: SpecialPerson
) -> None:
    assert is_valid_id_number(person.id_number)  # refused for who they are, not a bad number
    status, answer = run(hub, person.id_number)
    assert status == 409
    assert answer["error"] == person.refusal
    assert person.id_number not in json.dumps(answer)


def test_special_people_cover_every_refusal() -> None:
    assert sorted(p.refusal for p in SPECIAL_PEOPLE.values()) == sorted(
        [NOT_ENROLLED, SUSPENDED, DECEASED]
    )


def test_someone_not_yet_born_is_not_enrolled(fixed_hub: SimHub) -> None:
    assert run(fixed_hub, with_check("11010120300101001")) == (
        409,
        {"error": "not_enrolled", "message": "errand refused: not_enrolled"},
    )


def test_unknown_errand_is_404_whoever_asks(hub: SimHub) -> None:
    for id_number in (PERSON, "not a number"):
        status, answer = run(hub, id_number, errand="driving_licence_points")
        assert (status, answer["error"]) == (404, "unknown_errand")


def test_unreadable_requests_are_refused_plainly(hub: SimHub) -> None:
    url = f"{hub.url}/v1/errands/{ERRAND}/run"
    assert call(url, "POST", ["not", "an", "object"])[1]["error"] == "bad_request"
    assert call(url, "POST", {"id_number": PERSON})[1]["error"] == "bad_request"
    assert call(url, "GET") == (405, {"error": "method_not_allowed", "message": "use POST"})
    assert call(f"{hub.url}/v2/health")[0] == 404
    request = urllib.request.Request(url, data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        _OPENER.open(request, timeout=5)
    assert caught.value.code == 400
    caught.value.close()


# --- bodies the hub must refuse plainly ------------------------------------------------------


def raw_post(hub: SimHub, path: str, head: bytes, body: bytes, *, close_send: bool = True) -> bytes:
    """Send a POST with hand-written headers on a raw socket; the whole answer, as received."""
    port = int(hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            .encode() + head + b"\r\n" + body
        )
        if close_send:
            # The client has said all it will say; a hub that already answered and closed
            # (a 413 sent before the body was read) makes this fail, which is no failure here.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_error(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), answer[:200]
    return int(head.split()[1]), json.loads(body)


def post_bytes(hub: SimHub, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    head = f"Content-Length: {len(body)}\r\n".encode()
    return status_and_error(raw_post(hub, path, head, body))


RUN_PATH = f"/v1/errands/{ERRAND}/run"
VALID_RUN = {"id_number": PERSON, "terminal_id": "T-0001"}

HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    # json's C scanner gives up with RecursionError near the interpreter's limit of 1,000.
    ("994 nested brackets", b"[" * 994 + b"]" * 994, "nested deeper than"),
    ("12,000 nested objects", b'{"a":' * 12_000, "nested deeper than"),
    # Python refuses int() of more than 4,300 digits with a bare ValueError.
    ("4,301-digit integer", b'{"level": ' + b"9" * 4301 + b"}", "more than 20 digits"),
    ("4,301-digit negative", b'{"terminal_id": -' + b"1" * 4301 + b"}", "more than 20 digits"),
    ("NaN", b'{"level": NaN}', "NaN is not a JSON number"),
    ("1e999", b'{"level": 1e999}', "too large to be finite"),
    # SQLite cannot store a lone surrogate: the terminal id would have been a 500.
    (
        "lone surrogate",
        b'{"id_number": "' + PERSON.encode() + b'", "terminal_id": "T\\ud800"}',
        "lone surrogate",
    ),
    # json.loads(bytes) reads UTF-16 and UTF-32 without a word; the API says UTF-8.
    ("UTF-16", json.dumps(VALID_RUN).encode("utf-16"), "not UTF-8"),
    ("Latin-1", '{"terminal_id": "Café"}'.encode("latin-1"), "not UTF-8"),
    ("duplicate key", b'{"terminal_id": "A", "terminal_id": "B"}', "'terminal_id' twice"),
    ("not JSON", b"{not json", "not valid JSON"),
    ("a list", b"[]", "must be a JSON object"),
]


@pytest.mark.parametrize(
    ("body", "message"),
    [case[1:] for case in HOSTILE_BODIES],
    ids=[case[0] for case in HOSTILE_BODIES],
)
@pytest.mark.parametrize("path", [RUN_PATH, "/v1/ratings"])
def test_a_hostile_json_body_is_a_400_with_a_clear_error(
    hub: SimHub, path: str, body: bytes, message: str
) -> None:
    status, answer = post_bytes(hub, path, body)
    assert status == 400, answer
    assert answer["error"] == "bad_request"
    assert message in answer["message"]
    # The hub is still well: the next good request is served.
    assert run(hub, PERSON)[0] == 200


def test_a_body_over_the_limit_is_a_413_before_anything_is_read(hub: SimHub) -> None:
    status, answer = post_bytes(hub, RUN_PATH, b"[" * 100_000)
    assert (status, answer["error"]) == (413, "too_large")
    assert "larger than 65536 bytes" in answer["message"]


@pytest.mark.parametrize(
    ("head", "status", "code", "message"),
    [
        (b"", 411, "length_required", "Content-Length"),
        (b"Content-Length: -1\r\n", 400, "bad_request", "not a valid length"),
        # int() would read these as 2, 5 and 2.
        (b"Content-Length: 0_2\r\n", 400, "bad_request", "not a valid length"),
        (b"Content-Length: +5\r\n", 400, "bad_request", "not a valid length"),
        ("Content-Length: ٢\r\n".encode(), 400, "bad_request", "not a valid length"),
        (b"Content-Length: 2\r\nContent-Length: 9\r\n", 400, "bad_request", "disagree"),
        (b"Transfer-Encoding: chunked\r\n", 411, "length_required", "Content-Length"),
        # The client promised 50 bytes, sent 2 and closed its side.
        (b"Content-Length: 50\r\n", 400, "bad_request", "ended after 2 of the 50 bytes"),
    ],
)
def test_a_wrong_content_length_is_refused_plainly(
    hub: SimHub, head: bytes, status: int, code: str, message: str
) -> None:
    answer = status_and_error(raw_post(hub, "/v1/ratings", head, b"{}"))
    assert answer[0] == status
    assert answer[1]["error"] == code
    assert message in answer[1]["message"]


def test_a_body_that_stops_coming_is_a_408_after_the_io_timeout(
    hub: SimHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client announces 50 bytes, sends 2 and waits: the hub must not hold it (or answer 500).
    monkeypatch.setattr(_HubRequestHandler, "timeout", 0.3)
    answer = raw_post(hub, "/v1/ratings", b"Content-Length: 50\r\n", b"{}", close_send=False)
    status, error = status_and_error(answer)
    assert (status, error["error"]) == (408, "request_timeout")
    assert "stopped before the 50 bytes" in error["message"]


# --- verification ----------------------------------------------------------------------------


def test_an_issued_code_verifies_and_a_made_up_one_does_not(hub: SimHub) -> None:
    document = run(hub, PERSON)[1]

    status, check = call(document["verify_url"])
    assert status == 200
    # What anyone holding the paper can learn: that it is genuine, and nothing about the person.
    assert check == {
        "valid": True,
        "errand_id": ERRAND,
        "title": "社会保险参保证明",
        "issued_at": document["issued_at"],
        "terminal_id": "T-0001",
    }
    code_lower = document["verification_code"].lower()
    assert call(f"{hub.url}/v1/documents/{code_lower}")[0] == 200

    status, check = call(f"{hub.url}/v1/documents/ABCD-EFGH-JKMN-PQRS")
    assert (status, check["valid"], check["error"]) == (404, False, "unknown_document")


# --- ratings ---------------------------------------------------------------------------------


def test_a_rating_is_stored_once_however_often_it_is_sent(hub: SimHub) -> None:
    case_number = run(hub, PERSON)[1]["case_number"]

    assert call(f"{hub.url}/v1/ratings", "POST", rating_body(case_number)) == (
        201,
        {"case_number": case_number, "status": "created"},
    )
    assert call(f"{hub.url}/v1/ratings", "POST", rating_body(case_number))[0] == 200
    # A different level for the same case does not replace the first: one case, one rating.
    assert call(f"{hub.url}/v1/ratings", "POST", rating_body(case_number, level=1)) == (
        200,
        {"case_number": case_number, "status": "duplicate"},
    )
    assert hub.ratings() == [
        RatingSubmission(
            case_number=case_number,
            errand_id=ERRAND,
            level=5,
            terminal_id="T-0001",
            rated_at=dt.datetime(2025, 3, 5, 9, 31, tzinfo=CHINA_STANDARD_TIME),
        )
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"level": 0},
        {"level": 6},
        {"level": True},
        {"level": "5"},
        {"rated_at": "2025-03-05T09:31:00"},  # no offset: when was that?
        {"rated_at": "yesterday"},
        {"case_number": ""},
        {"terminal_id": None},
    ],
)
def test_a_malformed_rating_is_refused_and_not_stored(hub: SimHub, change: dict[str, Any]) -> None:
    status, answer = call(f"{hub.url}/v1/ratings", "POST", rating_body("SB20250305000001") | change)
    assert (status, answer["error"]) == (422, "invalid_rating")
    assert hub.ratings() == []


def test_only_a_case_the_hub_issued_can_be_rated_and_only_for_its_errand(hub: SimHub) -> None:
    case_number = run(hub, PERSON)[1]["case_number"]
    never_issued = case_number[:-6] + "999999"
    status, answer = call(f"{hub.url}/v1/ratings", "POST", rating_body(never_issued))
    assert (status, answer["error"]) == (404, "unknown_case")
    status, answer = call(f"{hub.url}/v1/ratings", "POST",
                          rating_body(case_number) | {"errand_id": "another_errand"})
    assert (status, answer["error"]) == (422, "invalid_rating")
    assert hub.ratings() == []


# --- faults ----------------------------------------------------------------------------------


def test_down_refuses_connections_then_comes_back_on_the_same_url(hub: SimHub) -> None:
    url = hub.url
    hub.set_fault("down")
    assert hub.url == url
    started = time.monotonic()
    with pytest.raises(urllib.error.URLError) as caught:
        call(f"{url}/v1/health")
    assert isinstance(caught.value.reason, ConnectionRefusedError)
    assert time.monotonic() - started < 1.0

    hub.set_fault("ok")
    assert call(f"{url}/v1/health") == (200, {"status": "ok"})


def test_error_mode_answers_503_with_retry_after(hub: SimHub) -> None:
    hub.set_fault("error")
    request = urllib.request.Request(f"{hub.url}/v1/health")
    with pytest.raises(urllib.error.HTTPError) as caught:
        _OPENER.open(request, timeout=5)
    with caught.value as answer:
        assert answer.code == 503
        assert answer.headers["Retry-After"] == "30"
        assert json.loads(answer.read())["error"] == "unavailable"


def test_slow_mode_does_the_work_then_holds_the_answer(hub: SimHub) -> None:
    case_number = run(hub, PERSON)[1]["case_number"]
    hub.set_fault("slow", delay_s=0.3)
    started = time.monotonic()
    assert call(f"{hub.url}/v1/health") == (200, {"status": "ok"})
    assert time.monotonic() - started >= 0.3

    # The caller gives up first, yet the hub acted: the case a retried rating must not double.
    with pytest.raises(TimeoutError):
        call(f"{hub.url}/v1/ratings", "POST", rating_body(case_number), timeout=0.1)
    assert [r.case_number for r in hub.ratings()] == [case_number]


def test_stop_is_prompt_while_answers_are_held(tmp_path: Path) -> None:
    hub = SimHub(db_path=tmp_path / "held.sqlite")
    hub.start()
    hub.set_fault("slow", delay_s=60)
    waiter = threading.Thread(target=_ignore_errors(lambda: call(f"{hub.url}/v1/health")))
    waiter.start()
    time.sleep(0.1)  # let the request reach the hub and be held
    started = time.monotonic()
    hub.stop()
    waiter.join(timeout=5)
    assert time.monotonic() - started < 2.0
    assert not waiter.is_alive()


def test_unknown_fault_modes_are_refused(hub: SimHub) -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        hub.set_fault("flaky")
    with pytest.raises(ValueError, match="negative"):
        hub.set_fault("slow", delay_s=-1)


# --- privacy ---------------------------------------------------------------------------------


def test_the_database_never_holds_an_id_number(hub: SimHub, tmp_path: Path) -> None:
    people = (PERSON, *OTHER_PEOPLE, *SPECIAL_PEOPLE)
    case_numbers = [run(hub, person)[1].get("case_number") for person in people]
    hub.stop()

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    # The search must be able to find things: the issued case numbers are in there.
    assert all(c.encode() in stored for c in case_numbers if c)
    for person in people:
        assert person.encode("ascii") not in stored
        assert person[:17].encode("ascii") not in stored  # nor without its check character
        assert person.encode("utf-16-le") not in stored


def test_no_request_lines_or_personal_data_reach_any_output(
    hub: SimHub, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    document = run(hub, PERSON)[1]
    run(hub, next(iter(SPECIAL_PEOPLE)))
    run(hub, PERSON[:-1] + "6")
    call(document["verify_url"])
    hub.set_fault("slow", delay_s=0.5)
    with pytest.raises(TimeoutError):  # the hub then writes to a closed connection
        call(f"{hub.url}/v1/health", timeout=0.1)
    hub.set_fault("ok")
    time.sleep(0.6)  # the held answer meets the closed socket meanwhile

    out, err = capfd.readouterr()
    everything = out + err + caplog.text
    assert "/v1/" not in everything  # http.server would log "POST /v1/errands/..." lines
    assert "Traceback" not in everything
    for person in (PERSON, PERSON[:-1] + "6", *SPECIAL_PEOPLE):
        assert person not in everything
        assert person not in repr(hub)


# --- the API document ------------------------------------------------------------------------


def test_the_openapi_document_describes_what_the_hub_answers(hub: SimHub) -> None:
    spec = yaml.safe_load((REPO / "docs" / "hub-api.yaml").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    assert spec["openapi"].startswith("3.")
    # Every operation, the new ones included, is checked by tests/simulator/test_hub_schema.py.
    assert set(spec["paths"]) >= {
        "/v1/errands/{errand_id}/run",
        "/v1/documents/{verification_code}",
        "/v1/ratings",
        "/v1/health",
    }

    document = run(hub, PERSON)[1]
    assert set(document) == set(schemas["ErrandDocument"]["required"])
    assert set(call(document["verify_url"])[1]) == set(schemas["DocumentCheck"]["required"])
    receipt = call(f"{hub.url}/v1/ratings", "POST", rating_body(document["case_number"]))[1]
    assert set(receipt) == set(schemas["RatingReceipt"]["required"])

    documented_codes = set(schemas["Error"]["properties"]["error"]["enum"])
    seen = {
        run(hub, PERSON[:-1] + "6")[1]["error"],
        run(hub, PERSON, errand="nope")[1]["error"],
        call(f"{hub.url}/v1/ratings", "POST", {"level": 9})[1]["error"],
        *(run(hub, person)[1]["error"] for person in SPECIAL_PEOPLE),
    }
    assert seen <= documented_codes
    run_responses = spec["paths"]["/v1/errands/{errand_id}/run"]["post"]["responses"]
    assert {"200", "404", "409", "422", "503"} <= set(run_responses)


def _ignore_errors(action: Callable[[], object]) -> Callable[[], None]:
    def quietly() -> None:
        # The held answer may arrive or the connection may close; either is fine here.
        with contextlib.suppress(Exception):
            action()

    return quietly

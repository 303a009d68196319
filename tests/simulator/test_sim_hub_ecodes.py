"""The simulated hub's e-ID codes over real HTTP on loopback: issued, resolved once, reused,
expired, unknown, refused when the ID number is bad, and the person kept only while it resolves."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.codes import E_ID_PREFIX, is_e_id_code
from simulator.hub import CHINA_STANDARD_TIME, SimHub
from simulator.hub_ecodes import DEFAULT_CODE_TTL_S

PERSON = "34052419800101001X"  # valid, listed nowhere; born 1980-01-01, 17th digit odd: male
WOMAN = "510107199211300021"
THIRD = "330106198506120015"
NAME = "欧阳娜娜"
WRONG_CHECK_DIGIT = "340524198001010019"
TERMINAL = "T-0042"
FIXED_NOW = dt.datetime(2025, 3, 5, 9, 30, tzinfo=CHINA_STANDARD_TIME)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: FIXED_NOW) as hub:
        yield hub


def resolve(hub: SimHub, code: object, terminal_id: object = TERMINAL) -> tuple[int, Any]:
    body = json.dumps({"code": code, "terminal_id": terminal_id}, ensure_ascii=False).encode()
    request = urllib.request.Request(
        f"{hub.url}/v1/identity/codes/resolve",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


# --- issuing ---------------------------------------------------------------------------------


def test_an_issued_code_has_the_e_id_form_and_is_never_the_same_twice(hub: SimHub) -> None:
    codes = {hub.issue_code(PERSON, NAME) for _ in range(50)}
    assert len(codes) == 50
    assert all(is_e_id_code(code) and code.startswith(E_ID_PREFIX) for code in codes)
    # Nothing of the person in the code: it is random, not derived.
    assert not any(PERSON[:6] in code or PERSON[-4:] in code for code in codes)


@pytest.mark.parametrize(
    ("id_number", "why"),
    [
        (WRONG_CHECK_DIGIT, "check_digit"),
        ("34052419801301001X", "birth_date"),
        ("3405241980010100", "shape"),
        ("", "shape"),
    ],
)
def test_a_bad_id_number_is_refused_with_a_clear_message(
    hub: SimHub, id_number: str, why: str
) -> None:
    with pytest.raises(ValueError, match=f"not a valid ID number \\({why}\\)") as caught:
        hub.issue_code(id_number, NAME)
    assert not id_number or id_number not in str(caught.value)
    assert hub.codes() == []


@pytest.mark.parametrize("name", ["", "   ", "张" * 65, "张\n三", "张\x00三"])
def test_a_name_that_is_no_name_is_refused(hub: SimHub, name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        hub.issue_code(PERSON, name)


@pytest.mark.parametrize("ttl_s", [0.0, -1.0, float("nan"), float("inf"), 86_401.0])
def test_a_life_out_of_range_is_refused(hub: SimHub, ttl_s: float) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        hub.issue_code(PERSON, NAME, ttl_s=ttl_s)


def test_a_lowercase_x_is_read_as_the_check_character(hub: SimHub) -> None:
    code = hub.issue_code(PERSON.lower(), NAME)
    assert resolve(hub, code)[1]["id_number"] == PERSON


def test_issuing_needs_a_running_hub(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        SimHub(db_path=tmp_path / "hub.sqlite").issue_code(PERSON, NAME)


# --- resolving -------------------------------------------------------------------------------


def test_a_code_resolves_to_its_person_once(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, f" {NAME} ")
    assert resolve(hub, code) == (
        200, {"id_number": PERSON, "name": NAME, "sex": "male", "birth_date": "1980-01-01"}
    )  # fmt: skip
    used = {"error": "code_used", "message": "the code was used already"}
    assert resolve(hub, code) == (409, used)
    # Used is used, at any terminal, and stays so after its life would have ended.
    assert resolve(hub, code, "T-0043")[1]["error"] == "code_used"
    hub.advance(DEFAULT_CODE_TTL_S + 1)
    assert resolve(hub, code)[1]["error"] == "code_used"
    [stored] = hub.codes()
    assert stored.used_at == FIXED_NOW and stored.used_by == TERMINAL
    assert stored.expires_at == FIXED_NOW + dt.timedelta(seconds=DEFAULT_CODE_TTL_S)


def test_sex_and_birth_date_follow_the_id_number(hub: SimHub) -> None:
    answer = resolve(hub, hub.issue_code(WOMAN, "李华"))[1]
    assert (answer["sex"], answer["birth_date"]) == ("female", "1992-11-30")


def test_each_code_is_its_own_person(hub: SimHub) -> None:
    first, second = hub.issue_code(PERSON, NAME), hub.issue_code(WOMAN, "李华")
    assert resolve(hub, second)[1]["id_number"] == WOMAN
    assert resolve(hub, first)[1]["id_number"] == PERSON


def test_a_code_expires_after_its_life_on_the_hubs_clock(hub: SimHub) -> None:
    fresh = hub.issue_code(PERSON, NAME)
    short = hub.issue_code(PERSON, NAME, ttl_s=5)
    hub.advance(4.9)
    assert resolve(hub, short)[0] == 200
    late = hub.issue_code(PERSON, NAME, ttl_s=5)
    hub.advance(5)  # exactly at the end of its life: over
    assert resolve(hub, late) == (410, {"error": "code_expired", "message": "the code has expired"})
    assert resolve(hub, late)[1]["error"] == "code_expired"  # and stays so
    hub.advance(DEFAULT_CODE_TTL_S - 9.9 - 0.1)
    assert resolve(hub, fresh)[0] == 200  # 119.9 s after it was issued


def test_the_default_life_is_two_minutes(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    hub.advance(DEFAULT_CODE_TTL_S)
    assert DEFAULT_CODE_TTL_S == 120.0
    assert resolve(hub, code)[1]["error"] == "code_expired"


@pytest.mark.parametrize(
    "code",
    [
        E_ID_PREFIX + "A" * 43,  # the form, never issued
        "EID1:short",
        "https://hub.example.gov.cn/v1/progress/SB20250305000001?c=AAAA",
        PERSON,
        "张三",
    ],
)
def test_anything_not_issued_here_is_unknown(hub: SimHub, code: str) -> None:
    hub.issue_code(PERSON, NAME)
    assert resolve(hub, code) == (
        404, {"error": "code_unknown", "message": "this hub issued no such code"}
    )  # fmt: skip


def test_a_code_of_another_hub_is_unknown_here(tmp_path: Path, hub: SimHub) -> None:
    with SimHub(db_path=tmp_path / "other.sqlite", clock=lambda: FIXED_NOW) as other:
        foreign = other.issue_code(PERSON, NAME)
    assert resolve(hub, foreign)[1]["error"] == "code_unknown"


def test_a_code_with_one_character_changed_is_unknown(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    damaged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert resolve(hub, damaged)[1]["error"] == "code_unknown"
    assert resolve(hub, code.swapcase().replace("eid1:", "EID1:"))[1]["error"] == "code_unknown"
    assert resolve(hub, code)[0] == 200


@pytest.mark.parametrize(
    ("code", "terminal_id"),
    [(None, TERMINAL), (42, TERMINAL), ("", TERMINAL), ("E" * 257, TERMINAL),
     (E_ID_PREFIX + "A" * 43, None), (E_ID_PREFIX + "A" * 43, "T 0042"),
     (E_ID_PREFIX + "A" * 43, "")],
)  # fmt: skip
def test_a_request_without_a_code_or_terminal_is_a_bad_request(
    hub: SimHub, code: object, terminal_id: object
) -> None:
    assert resolve(hub, code, terminal_id)[0] == 400


def test_a_bad_request_does_not_use_the_code(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    assert resolve(hub, code, "T 0042")[0] == 400
    assert resolve(hub, code)[0] == 200


def test_only_post_resolves(hub: SimHub) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        _OPENER.open(f"{hub.url}/v1/identity/codes/resolve", timeout=5)
    with caught.value:
        assert caught.value.code == 405


def test_two_terminals_scanning_one_code_at_once_get_one_person(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def scan(terminal: int) -> None:
        start.wait(5)
        statuses.append(resolve(hub, code, f"T-{terminal:04d}")[0])

    threads = [threading.Thread(target=scan, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(statuses) == [200] + [409] * 7


def test_a_hub_in_error_mode_resolves_nothing(hub: SimHub) -> None:
    code = hub.issue_code(PERSON, NAME)
    hub.set_fault("error")
    assert resolve(hub, code)[0] == 503
    hub.set_fault("ok")
    assert resolve(hub, code)[0] == 200  # the 503 did not use it up


# --- privacy ---------------------------------------------------------------------------------


def test_the_person_is_kept_only_while_the_code_can_resolve(hub: SimHub, tmp_path: Path) -> None:
    used = hub.issue_code(PERSON, NAME)
    hub.issue_code(WOMAN, "李华", ttl_s=10)  # left to expire
    waiting = hub.issue_code(THIRD, "王芳")
    assert [c.holds_person for c in hub.codes()] == [True, True, True]
    resolve(hub, used)
    hub.advance(10)
    hub.issue_code(PERSON, NAME, ttl_s=1)  # issuing forgets the expired, too
    assert [c.holds_person for c in hub.codes()] == [False, False, True, True]
    hub.advance(1)
    assert resolve(hub, waiting)[0] == 200  # resolving forgets the expired as well
    assert not any(c.holds_person for c in hub.codes())
    hub.stop()

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    assert b"used_at" in stored  # the search sees the table
    for secret in (PERSON, WOMAN, THIRD, NAME, "李华", "王芳", used, waiting):
        assert secret.encode() not in stored


def test_no_code_name_or_id_number_reaches_any_output(
    hub: SimHub, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = hub.issue_code(PERSON, NAME)
    resolve(hub, code)
    resolve(hub, code)
    resolve(hub, E_ID_PREFIX + "B" * 43)
    with pytest.raises(ValueError) as caught:
        hub.issue_code(WRONG_CHECK_DIGIT, NAME)
    out, err = capfd.readouterr()
    everything = out + err + caplog.text + str(caught.value) + repr(hub) + repr(hub.codes())
    assert "issued an e-ID code" in caplog.text  # the hub does log; what it logs is clean
    for secret in (PERSON, WRONG_CHECK_DIGIT, NAME, code, code.removeprefix(E_ID_PREFIX)):
        assert secret not in everything

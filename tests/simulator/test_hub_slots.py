"""The simulated hub's appointment desk over real HTTP: periods and capacities, booking to the
last place (and the race for it), one appointment per service and day, cancelling."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from flows.identity import check_character
from simulator.hub import CHINA_STANDARD_TIME, SimHub
from simulator.hub_records import DECEASED, SPECIAL_PEOPLE

PERSON = "34052419800101001X"
OTHER = "510107199211300021"
MONDAY = dt.datetime(2025, 3, 3, 9, 40, tzinfo=CHINA_STANDARD_TIME)
TUESDAY = dt.date(2025, 3, 4)
SERVICE = "social_security_window"
SITE = "ruian-tangxia"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: MONDAY) as hub:
        yield hub


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


def call(hub: SimHub, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(hub.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def slots(hub: SimHub, day: dt.date, service: str = SERVICE, site: str = SITE) -> list[Any]:
    query = urlencode({"service_id": service, "site_id": site, "day": day.isoformat()})
    status, answer = call(hub, "GET", f"/v1/slots?{query}")
    assert status == 200, answer
    return list(answer["slots"])


def book(hub: SimHub, slot_id: str, person: str = PERSON, **changes: Any) -> tuple[int, Any]:
    body = {"id_number": person, "service_id": SERVICE, "site_id": SITE, "slot_id": slot_id}
    return call(hub, "POST", "/v1/appointments", body | changes)


def a_free_slot(hub: SimHub, day: dt.date = TUESDAY) -> dict[str, Any]:
    return next(slot for slot in slots(hub, day) if slot["free"] > 0)


# --- slots -----------------------------------------------------------------------------------


def test_a_working_day_has_half_hours_morning_and_afternoon_none_at_lunch(hub: SimHub) -> None:
    day = slots(hub, TUESDAY)
    assert [(s["start"], s["end"]) for s in day] == [
        ("09:00", "09:30"), ("09:30", "10:00"), ("10:00", "10:30"), ("10:30", "11:00"),
        ("11:00", "11:30"), ("11:30", "12:00"), ("14:00", "14:30"), ("14:30", "15:00"),
        ("15:00", "15:30"), ("15:30", "16:00"), ("16:00", "16:30"), ("16:30", "17:00"),
    ]  # fmt: skip
    assert day[0]["slot_id"] == "20250304-0900"
    assert all(2 <= s["capacity"] <= 6 and 0 <= s["free"] <= s["capacity"] for s in day)


def test_capacities_are_deterministic_and_some_periods_start_full(
    hub: SimHub, tmp_path: Path
) -> None:
    fortnight = [TUESDAY + dt.timedelta(days=n) for n in range(10)]
    ours = [slots(hub, day) for day in fortnight]
    with SimHub(db_path=tmp_path / "other.sqlite", clock=lambda: MONDAY) as other:
        assert [slots(other, day) for day in fortnight] == ours
    every = [slot for day in ours for slot in day]
    full = [slot for slot in every if slot["free"] == 0]
    assert 0.05 < len(full) / len(every) < 0.4
    # Another site, another picture.
    assert slots(hub, TUESDAY, site="塘下镇便民服务中心") != ours[0]


def test_no_slots_on_weekends_in_the_past_beyond_the_horizon_or_already_begun(
    hub: SimHub,
) -> None:
    assert slots(hub, dt.date(2025, 3, 8)) == []  # Saturday
    assert slots(hub, dt.date(2025, 2, 28)) == []  # last Friday
    assert slots(hub, dt.date(2025, 3, 25)) == []
    assert slots(hub, dt.date(2025, 3, 24)) != []  # the 15th working day ahead is the last
    # It is 09:40 on Monday: 09:00 and 09:30 have begun.
    assert slots(hub, MONDAY.date())[0]["start"] == "10:00"


def test_the_holiday_calendar_decides_which_days_have_slots(tmp_path: Path) -> None:
    new_years_eve = dt.datetime(2025, 12, 31, 9, 0, tzinfo=CHINA_STANDARD_TIME)
    with SimHub(db_path=tmp_path / "h.sqlite", clock=lambda: new_years_eve) as hub:
        assert slots(hub, dt.date(2026, 1, 2)) == []  # Friday, 元旦 off
        assert len(slots(hub, dt.date(2026, 1, 4))) == 12  # Sunday, worked (调休上班)


@pytest.mark.parametrize(
    "query",
    [
        "service_id=a&site_id=b",
        "service_id=a&site_id=b&day=2025-3-4",
        "service_id=a&site_id=b&day=2025-02-30",
        "service_id=a&site_id=b&day=2025-03-04&day=2025-03-05",
        "service_id=a%20b&site_id=b&day=2025-03-04",
        "service_id=a&site_id=%0a&day=2025-03-04",
    ],
)
def test_a_malformed_slot_query_is_400(hub: SimHub, query: str) -> None:
    status, answer = call(hub, "GET", f"/v1/slots?{query}")
    assert (status, answer["error"]) == (400, "bad_request")


# --- booking ---------------------------------------------------------------------------------


def test_booking_takes_a_place_and_the_appointment_is_listed(hub: SimHub) -> None:
    slot = a_free_slot(hub)
    status, appointment = book(hub, slot["slot_id"])
    assert status == 201
    assert appointment == {
        "appointment_id": "YY20250303000001",
        "code": appointment["code"],
        "service_id": SERVICE,
        "site_id": SITE,
        "day": "2025-03-04",
        "start": slot["start"],
        "end": slot["end"],
    }
    assert len(appointment["code"]) == 9 and appointment["code"][4] == "-"
    after = next(s for s in slots(hub, TUESDAY) if s["slot_id"] == slot["slot_id"])
    assert after["free"] == slot["free"] - 1
    assert call(hub, "POST", "/v1/residents/appointments", {"id_number": PERSON}) == (
        200, {"appointments": [appointment]}
    )  # fmt: skip
    assert call(hub, "POST", "/v1/residents/appointments", {"id_number": OTHER}) == (
        200, {"appointments": []}
    )  # fmt: skip


def test_a_full_slot_is_slot_taken(hub: SimHub) -> None:
    slot = a_free_slot(hub)
    hub.fill_slot(SERVICE, SITE, TUESDAY, dt.time.fromisoformat(slot["start"]))
    assert book(hub, slot["slot_id"])[1]["error"] == "slot_taken"
    assert book(hub, slot["slot_id"])[0] == 409
    assert hub.appointments() == []


def test_two_residents_confirming_the_last_place_get_one_appointment(hub: SimHub) -> None:
    slot = a_free_slot(hub)
    hub.fill_slot(SERVICE, SITE, TUESDAY, dt.time.fromisoformat(slot["start"]), leave=1)
    people = [PERSON, OTHER, with_check("11010519491231002"), with_check("44030419800101001")]
    answers: list[tuple[int, Any]] = []
    start = threading.Barrier(len(people))

    def confirm(person: str) -> None:
        start.wait()
        answers.append(book(hub, slot["slot_id"], person))

    threads = [threading.Thread(target=confirm, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409]
    assert {a["error"] for status, a in answers if status == 409} == {"slot_taken"}
    assert len(hub.appointments()) == 1
    assert next(s for s in slots(hub, TUESDAY) if s["slot_id"] == slot["slot_id"])["free"] == 0


def test_one_appointment_per_service_and_day_and_the_same_slot_again_is_the_same(
    hub: SimHub,
) -> None:
    first, second = [s for s in slots(hub, TUESDAY) if s["free"] > 0][:2]
    status, booked = book(hub, first["slot_id"])
    assert status == 201
    assert book(hub, first["slot_id"]) == (200, booked)  # a retry after a lost answer
    status, answer = book(hub, second["slot_id"])
    assert (status, answer["error"]) == (409, "already_booked")
    # Another service the same day, or the same service another day, is fine.
    assert book(hub, first["slot_id"], service_id="medical_window")[0] == 201
    assert book(hub, a_free_slot(hub, dt.date(2025, 3, 5))["slot_id"])[0] == 201


@pytest.mark.parametrize(
    "slot_id",
    ["20250304-1200", "20250304-0915", "20250303-0900", "20250308-0900", "x", "99999999-0900"],
)
def test_a_slot_not_offered_is_unknown_slot(hub: SimHub, slot_id: str) -> None:
    status, answer = book(hub, slot_id)
    assert (status, answer["error"]) == (404, "unknown_slot")


def test_bad_people_are_refused_as_everywhere(hub: SimHub) -> None:
    slot_id = a_free_slot(hub)["slot_id"]
    assert book(hub, slot_id, PERSON[:-1] + "5")[1]["error"] == "invalid_id"
    deceased = next(p for p in SPECIAL_PEOPLE.values() if p.refusal == DECEASED)
    assert book(hub, slot_id, deceased.id_number)[1]["error"] == DECEASED
    # Not enrolled in social insurance is no reason not to see someone at a window.
    not_deceased = [p for p in SPECIAL_PEOPLE.values() if p.refusal != DECEASED]
    assert all(book(hub, slot_id, p.id_number)[0] == 201 for p in not_deceased)


# --- cancelling ------------------------------------------------------------------------------


def test_cancelling_frees_the_place_and_is_idempotent(hub: SimHub) -> None:
    slot = a_free_slot(hub)
    appointment_id = book(hub, slot["slot_id"])[1]["appointment_id"]
    path = f"/v1/appointments/{appointment_id}/cancel"
    cancelled = (200, {"appointment_id": appointment_id, "status": "cancelled"})
    assert call(hub, "POST", path, {"id_number": PERSON}) == cancelled
    assert call(hub, "POST", path, {"id_number": PERSON}) == cancelled
    assert next(s for s in slots(hub, TUESDAY) if s["slot_id"] == slot["slot_id"]) == slot
    assert call(hub, "POST", "/v1/residents/appointments", {"id_number": PERSON})[1] == {
        "appointments": []
    }
    assert [a.cancelled for a in hub.appointments()] == [True]
    # The day is free again for this service.
    assert book(hub, slot["slot_id"])[0] == 201


def test_nobody_cancels_someone_elses_appointment(hub: SimHub) -> None:
    appointment_id = book(hub, a_free_slot(hub)["slot_id"])[1]["appointment_id"]
    path = f"/v1/appointments/{appointment_id}/cancel"
    status, answer = call(hub, "POST", path, {"id_number": OTHER})
    assert (status, answer["error"]) == (404, "unknown_appointment")
    assert call(hub, "POST", "/v1/appointments/YY20250303999999/cancel",
                {"id_number": PERSON})[0] == 404  # fmt: skip
    assert [a.cancelled for a in hub.appointments()] == [False]


def test_an_appointment_that_has_begun_cannot_be_cancelled_and_is_no_longer_listed(
    hub: SimHub,
) -> None:
    slot = slots(hub, TUESDAY)[0]  # 09:00
    if slot["free"] == 0:
        hub.fill_slot(SERVICE, SITE, TUESDAY, dt.time(9, 0), leave=1)
    appointment_id = book(hub, slot["slot_id"])[1]["appointment_id"]
    hub.advance(24 * 3600 - 30 * 60)  # Tuesday 09:10
    status, answer = call(
        hub, "POST", f"/v1/appointments/{appointment_id}/cancel", {"id_number": PERSON}
    )
    assert (status, answer["error"]) == (409, "too_late")
    listed = call(hub, "POST", "/v1/residents/appointments", {"id_number": PERSON})[1]
    assert [a["appointment_id"] for a in listed["appointments"]] == [appointment_id]
    hub.advance(30 * 60)  # 09:40: over
    listed = call(hub, "POST", "/v1/residents/appointments", {"id_number": PERSON})[1]
    assert listed == {"appointments": []}


def test_the_database_holds_no_id_number(hub: SimHub, tmp_path: Path) -> None:
    book(hub, a_free_slot(hub)["slot_id"])
    hub.stop()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    assert b"YY20250303000001" in stored
    assert PERSON.encode() not in stored
    assert PERSON[:17].encode() not in stored

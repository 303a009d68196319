"""The simulated hub's 办不成事 desk over real HTTP: filing, the call-back time, idempotency,
refusals, and a phone kept only masked."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.hub import CHINA_STANDARD_TIME, SimHub

FRIDAY_EVENING = dt.datetime(2025, 3, 7, 21, 15, tzinfo=CHINA_STANDARD_TIME)
PHONE = "13912345678"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: FRIDAY_EVENING) as hub:
        yield hub


def report(**changes: Any) -> dict[str, Any]:
    return {
        "reference": "T-0001-R-0001",
        "problem": "materials_unclear",
        "item_id": "minimum_subsistence",
        "phone": PHONE,
        "terminal_id": "T-0001",
        "screen": "guide.materials",
        "filed_at": "2025-03-07T21:14:00+08:00",
    } | changes


def file(hub: SimHub, body: dict[str, Any]) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(f"{hub.url}/v1/reports", data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_a_report_is_filed_with_a_call_back_by_the_next_working_day(hub: SimHub) -> None:
    status, filed = file(hub, report())
    assert status == 201
    # Filed on a Friday night: called back by 17:00 on Monday.
    assert filed == {
        "reference": "T-0001-R-0001",
        "hub_reference": "BC20250307000001",
        "callback_by": "2025-03-10T17:00:00+08:00",
        "status": "created",
    }
    [stored] = hub.reports()
    assert (stored.problem, stored.item_id, stored.screen) == (
        "materials_unclear", "minimum_subsistence", "guide.materials"
    )
    assert stored.phone_masked == "139****5678"


def test_the_same_reference_is_filed_once(hub: SimHub) -> None:
    first = file(hub, report())[1]
    hub.advance(3 * 24 * 3600)
    status, again = file(hub, report(problem="something_else"))
    assert status == 200
    assert again == first | {"status": "duplicate"}
    assert [r.problem for r in hub.reports()] == ["materials_unclear"]
    assert file(hub, report(reference="T-0001-R-0002"))[1]["hub_reference"] == "BC20250310000001"


def test_a_report_without_item_or_phone_is_fine(hub: SimHub) -> None:
    assert file(hub, report(item_id="", phone=""))[0] == 201
    assert hub.reports()[0].phone_masked == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"reference": ""},
        {"problem": "not an id"},
        {"phone": "12345"},
        {"phone": None},
        {"item_id": "a/b"},
        {"screen": ""},
        {"screen": "x" * 129},
        {"filed_at": "2025-03-07T21:14:00"},
        {"terminal_id": 7},
    ],
)
def test_a_malformed_report_is_refused_and_not_stored(
    hub: SimHub, changes: dict[str, Any]
) -> None:
    status, answer = file(hub, report(**changes))
    assert (status, answer["error"]) == (422, "invalid_report")
    assert PHONE not in answer["message"]
    assert hub.reports() == []


def test_the_database_keeps_no_phone(hub: SimHub, tmp_path: Path) -> None:
    file(hub, report())
    hub.stop()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    assert b"BC20250307000001" in stored
    assert PHONE.encode() not in stored

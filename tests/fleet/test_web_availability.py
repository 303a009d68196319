"""Availability on the dashboard: the share of the day's opening hours each terminal (and site)
sent a heartbeat saying it could serve; an out-of-service terminal online does not count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import T0, heartbeat, status
from starlette.testclient import TestClient
from test_web_support import accounts, bearer, client, login

from fleet.availability import OpeningHours
from fleet.ingest import Heartbeat, Status
from fleet.store import FleetStore
from fleet.web.app import WebSettings

NOW = T0 + dt.timedelta(hours=1)  # 04:00 UTC, an hour after the heartbeats began


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    store = FleetStore(tmp_path / "fleet.db")
    beats = []
    for minute in range(0, 60, 5):  # one heartbeat in every five-minute bucket of the hour
        when = T0 + dt.timedelta(minutes=minute)
        beats.append(Heartbeat("kiosk-0001", heartbeat(minute + 1), when))
        # kiosk-0002 online all hour, but out of service in the second half (its reader broke)
        state = "idle" if minute < 30 else "out_of_service"
        beats.append(Heartbeat("kiosk-0002", heartbeat(minute + 1).model_copy(
            update={"state": state}), when))
    store.apply([Status("kiosk-0001", status(True, 1, site="town-a"), T0),
                 Status("kiosk-0002", status(True, 1, site="town-a"), T0),
                 Status("kiosk-0003", status(True, 1, site="town-b"), T0), *beats])
    yield store
    store.close()


def web(store: FleetStore, hours: str = "03:00-05:00") -> TestClient:
    return client(store, WebSettings(clock=lambda: NOW, display_tz=dt.UTC,
                                     opening_hours=OpeningHours.parse(hours)))


def test_the_api_gives_each_terminal_and_site_its_share_of_the_hours_so_far(
        store: FleetStore) -> None:
    tokens = accounts(store)
    with web(store) as api:
        answer = api.get("/api/availability", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["day"], body["opening_hours"]) == ("2026-12-06", "03:00-05:00")
    shares = {t["tid"]: t["availability"] for t in body["terminals"]}
    assert shares == {"kiosk-0001": 1.0, "kiosk-0002": 0.5, "kiosk-0003": 0.0}
    assert {s["site"]: s["availability"] for s in body["sites"]} == {"town-a": 0.75,
                                                                      "town-b": 0.0}


def test_another_day_and_a_bad_day(store: FleetStore) -> None:
    tokens = accounts(store)
    with web(store) as api:
        yesterday = api.get("/api/availability?day=2026-12-05",
                            headers=bearer(tokens["viewer"])).json()
        bad = api.get("/api/availability?day=yesterday", headers=bearer(tokens["viewer"]))
        anonymous = api.get("/api/availability")
    assert {t["availability"] for t in yesterday["terminals"]} == {0.0}
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]
    assert anonymous.status_code == 401


def test_the_overview_and_the_terminal_page_show_it(store: FleetStore) -> None:
    accounts(store)
    with web(store) as page:
        login(page, "watcher")
        overview = page.get("/").text
        terminal = page.get("/terminals/kiosk-0002").text
    assert "Available today" in overview and "75.0 %" in overview and "0.0 %" in overview
    assert "50.0 % of the opening hours (03:00-05:00) so far" in terminal

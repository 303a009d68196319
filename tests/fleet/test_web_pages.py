"""The dashboard's pages as an operator sees them: the overview by site, the terminal list's
filters and search, one terminal with its chart, acknowledging an alert, the command form's
errors; Chinese site names as written and everything a terminal says escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import at, heartbeat, status
from starlette.testclient import TestClient
from test_web_support import CHINESE_SITE, NOW, accounts, client, csrf_of, fill, login

from fleet.ingest import Heartbeat, Status
from fleet.store import AlertState, FleetStore
from fleet.web.app import WebSettings
from fleet.web.dispatch import Broker
from simulator.broker import free_port


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    store = FleetStore(tmp_path / "fleet.db")
    fill(store)
    accounts(store)
    yield store
    store.close()


@pytest.fixture
def web(store: FleetStore) -> Iterator[TestClient]:
    settings = WebSettings(clock=lambda: NOW, broker=Broker("127.0.0.1", free_port()))
    with client(store, settings) as web:
        login(web, "op")
        yield web


def listed(html: str) -> list[str]:
    """The terminal ids of the list page's rows, in order."""
    return re.findall(r'<th scope="row"><a href="/terminals/([^"]+)">', html)


def test_the_overview_counts_by_site_in_chinese_too(web: TestClient) -> None:
    page = web.get("/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    assert CHINESE_SITE in html and "town-b" in html
    assert re.search(r"<strong>2</strong> online", html)
    assert re.search(r"<strong>1</strong> offline", html)
    assert re.search(r"<strong>1</strong> help calls waiting", html)
    assert "Residents waiting for help" in html and "elder mode" in html
    row = html[html.index(f">{CHINESE_SITE}</a></th>"):]
    cells = re.findall(r'<td class="num[^"]*">(\d+)', row[:row.index("</tr>")])
    # terminals, online, stale, offline, open alerts, acknowledged, paper, help calls (then
    # availability, tested in test_web_availability.py)
    assert cells[:8] == ["2", "2", "0", "0", "2", "0", "1", "1"]


def test_the_list_filters_by_site_and_state_and_searches_ids(web: TestClient) -> None:
    assert listed(web.get("/terminals").text) == [
        "kiosk-0001", "kiosk-0002", "kiosk-0003", "kiosk-0004"]
    assert listed(web.get("/terminals", params={"site": CHINESE_SITE}).text) == [
        "kiosk-0001", "kiosk-0002"]
    assert listed(web.get("/terminals?state=offline").text) == ["kiosk-0003"]
    assert listed(web.get("/terminals?site=town-b&state=stale").text) == ["kiosk-0004"]
    assert listed(web.get("/terminals?q=KIOSK-000").text) == [
        "kiosk-0001", "kiosk-0002", "kiosk-0003", "kiosk-0004"]
    assert listed(web.get("/terminals?q=0002").text) == ["kiosk-0002"]
    assert "No terminal matches." in web.get("/terminals?q=nothing").text
    odd = web.get("/terminals?state=asleep")
    assert odd.status_code == 200 and "There is no state" in odd.text
    assert len(listed(odd.text)) == 4


def test_one_terminal_with_devices_events_and_the_day_chart(web: TestClient) -> None:
    html = web.get("/terminals/kiosk-0001").text
    assert "paper_near_end" in html and "degraded" in html
    assert "help_requested" in html and "help_id=help-1" in html
    assert "<svg" in html and 'class="beat"' in html  # the heartbeat of 03:09
    assert "3 sessions today so far" in html
    assert web.get("/terminals/kiosk-9999").status_code == 404


def test_acknowledging_an_alert_from_the_page(web: TestClient, store: FleetStore) -> None:
    html = web.get("/alerts").text
    [first_id, *_] = re.findall(r'action="/alerts/(\d+)/ack"', html)
    answer = web.post(f"/alerts/{first_id}/ack", data={"csrf": csrf_of(html)})
    assert answer.status_code == 200 and answer.url.path == "/alerts"
    assert "acknowledged." in answer.text
    [acked] = store.alerts(AlertState.ACKNOWLEDGED)
    assert (acked.id, acked.acked_by) == (int(first_id), "op")
    assert f'action="/alerts/{first_id}/ack"' not in answer.text
    assert web.post("/alerts/999/ack", data={"csrf": csrf_of(html)}).status_code == 404


def test_what_a_terminal_says_is_escaped(store: FleetStore) -> None:
    store.apply([Status("kiosk-0005", status(True, 1, site="<script>alert(1)</script>"),
                        at(599)),
                 Heartbeat("kiosk-0005", heartbeat(1), at(599))])
    with client(store) as web:
        login(web, "op")
        for path in ("/", "/terminals", "/terminals/kiosk-0005"):
            html = web.get(path).text
            assert "<script>alert" not in html, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_the_command_form_says_what_is_wrong_and_that_the_broker_is_down(
        web: TestClient, store: FleetStore) -> None:
    token = csrf_of(web.get("/commands").text)
    form = {"csrf": token, "tid": "kiosk-0001", "name": "ping", "args": "{}", "ttl": "300"}
    for change, says in (({"tid": "kiosk-9999"}, "No terminal"),
                         ({"args": "{oops"}, "not JSON"),
                         ({"args": "[]"}, "must be a JSON object"),
                         ({"ttl": "soon"}, "ttl"),
                         ({"name": "format_disk"}, "unknown command")):
        answer = web.post("/commands", data={**form, **change})
        assert answer.status_code == 422 and says in answer.text, change
    down = web.post("/commands", data=form)
    assert down.status_code == 503
    assert "Not sent: cannot reach the broker" in down.text
    assert 'value="kiosk-0001"' in down.text  # the form keeps what was typed
    assert store.recent_commands() == []


def test_the_help_page_answers_only_while_the_broker_takes_it(web: TestClient,
                                                              store: FleetStore) -> None:
    html = web.get("/help").text
    assert 'action="/help/kiosk-0001/help-1/ack"' in html
    assert 'name="staff" value="op"' in html
    answer = web.post("/help/kiosk-0001/help-1/ack",
                      data={"csrf": csrf_of(html), "staff": "值班员 王", "minutes": "10"})
    assert answer.status_code == 503 and "cannot reach the broker" in answer.text
    assert "值班员 王" in answer.text  # kept in the form
    bad = web.post("/help/kiosk-0001/help-1/ack",
                   data={"csrf": csrf_of(html), "staff": "Li", "minutes": "lots"})
    assert bad.status_code == 422 and "minutes" in bad.text
    assert store.alerts(AlertState.ACKNOWLEDGED) == []


def test_static_files_and_security_headers(web: TestClient) -> None:
    css = web.get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    page = web.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"

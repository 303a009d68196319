"""The JSON API of DESIGN 13 key for key, its answers to a client's mistakes, and /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import at
from starlette.testclient import TestClient
from test_web_support import CHINESE_SITE, NOW, accounts, bearer, client, fill

from contracts.mqtt import AckPayload, CommandPayload
from fleet.ingest import Ack
from fleet.store import AlertState, FleetStore
from fleet.web.app import WebSettings
from fleet.web.dispatch import Broker
from simulator.broker import free_port

TERMINAL_KEYS = {"tid", "site", "state", "version", "last_seen", "devices", "alerts"}
ALERT_KEYS = {"id", "tid", "site", "cause", "severity", "state", "opened_at"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    store = FleetStore(tmp_path / "fleet.db")
    fill(store)
    yield store
    store.close()


@pytest.fixture
def tokens(store: FleetStore) -> dict[str, str]:
    return accounts(store)


@pytest.fixture
def api(store: FleetStore, tokens: dict[str, str]) -> Iterator[TestClient]:
    # A broker nobody listens on: what would be sent gets a 503, never a hang.
    settings = WebSettings(clock=lambda: NOW, broker=Broker("127.0.0.1", free_port()))
    with client(store, settings) as web:
        web.headers.update(bearer(tokens["operator"]))
        yield web


def test_terminals_each_with_liveness_devices_and_alerts(api: TestClient) -> None:
    answer = api.get("/api/terminals")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    found = {t["tid"]: t for t in answer.json()}
    assert sorted(found) == ["kiosk-0001", "kiosk-0002", "kiosk-0003", "kiosk-0004"]
    assert all(set(t) == TERMINAL_KEYS for t in found.values())
    first = found["kiosk-0001"]
    assert (first["site"], first["state"], first["version"], first["last_seen"]) == (
        CHINESE_SITE, "online", "1.0.0", "2026-12-06T03:09:50Z")
    assert first["devices"] == {"printer": {"state": "degraded", "reason": "paper_near_end"}}
    assert sorted(a["cause"] for a in first["alerts"]) == ["help_requested", "paper_near_end"]
    assert all(set(a) == ALERT_KEYS for a in first["alerts"])
    assert [found[t]["state"] for t in ("kiosk-0002", "kiosk-0003", "kiosk-0004")] == [
        "online", "offline", "stale"]
    assert "城关镇" in answer.content.decode("utf-8")  # UTF-8 as written, not \u escapes


def test_one_terminal_with_its_recent_events(api: TestClient) -> None:
    answer = api.get("/api/terminals/kiosk-0001").json()
    assert set(answer) == TERMINAL_KEYS | {"events"}
    assert [(e["seq"], e["type"]) for e in answer["events"]] == [
        (2, "paper_low"), (1, "help_requested")]
    assert answer["events"][1]["fields"] == {"help_id": "help-1", "screen": "menu",
                                             "elder_mode": True}
    missing = api.get("/api/terminals/kiosk-9999")
    assert missing.status_code == 404 and "kiosk-9999" in missing.json()["error"]


def test_alerts_by_state_and_acknowledging_one(api: TestClient, store: FleetStore) -> None:
    open_alerts = api.get("/api/alerts?state=open").json()
    assert sorted((a["tid"], a["cause"]) for a in open_alerts) == [
        ("kiosk-0001", "help_requested"), ("kiosk-0001", "paper_near_end"),
        ("kiosk-0003", "offline"), ("kiosk-0004", "stale")]
    assert all(set(a) == ALERT_KEYS and a["state"] == "open" for a in open_alerts)
    offline = next(a for a in open_alerts if a["cause"] == "offline")
    assert offline["severity"] == "critical" and offline["site"] == "town-b"
    acked = api.post(f"/api/alerts/{offline['id']}/ack")
    assert acked.status_code == 200
    assert acked.json() == {**offline, "state": "acknowledged"}
    assert store.alerts(AlertState.ACKNOWLEDGED)[0].acked_by == "token:script-operator"
    assert api.post(f"/api/alerts/{offline['id']}/ack").status_code == 200  # again: the same
    assert [a["id"] for a in api.get("/api/alerts?state=acknowledged").json()] == [offline["id"]]
    assert len(api.get("/api/alerts").json()) == 4
    assert api.post("/api/alerts/999/ack").status_code == 404
    assert api.post("/api/alerts/not-a-number/ack").status_code == 404
    bad = api.get("/api/alerts?state=forgotten")
    assert bad.status_code == 422 and "state" in bad.json()["error"]


def test_a_resolved_alert_cannot_be_acknowledged(api: TestClient, store: FleetStore) -> None:
    [paper] = [a for a in store.alerts(AlertState.OPEN) if a.cause == "paper_near_end"]
    store.sweep_alerts([], NOW)  # every condition gone
    answer = api.post(f"/api/alerts/{paper.id}/ack")
    assert answer.status_code == 409 and answer.json()["alert"]["state"] == "resolved"


def test_open_help_calls(api: TestClient) -> None:
    calls = api.get("/api/help?state=open").json()
    assert calls == [{
        "help_id": "help-1", "tid": "kiosk-0001", "site": CHINESE_SITE, "state": "open",
        "screen": "menu", "elder_mode": True, "requested_at": "2026-12-06T03:08:20Z",
        "acknowledged": None}]
    assert api.get("/api/help?state=acknowledged").json() == []
    assert api.get("/api/help?state=later").status_code == 422


def test_a_command_the_store_knows_nothing_of(api: TestClient, store: FleetStore) -> None:
    missing = api.get("/api/commands/fleet-nothing")
    assert missing.status_code == 404 and missing.json()["error"]
    command = CommandPayload(name="ping", args={}, expires_at=at(900), ts=at(600))
    store.record_command("req-1", "kiosk-0001", command)
    store.apply([Ack("kiosk-0001", "req-1", AckPayload(status="accepted", ts=at(601)), at(601)),
                 Ack("kiosk-0001", "req-1", AckPayload(status="succeeded", result={"pong": True},
                                                       ts=at(602)), at(602))])
    assert api.get("/api/commands/req-1").json() == {
        "request_id": "req-1", "tid": "kiosk-0001", "name": "ping", "args": {},
        "sent_at": "2026-12-06T03:10:00Z", "expires_at": "2026-12-06T03:15:00Z",
        "acks": [{"tid": "kiosk-0001", "status": "accepted", "error": None, "result": None,
                  "ts": "2026-12-06T03:10:01Z", "received": "2026-12-06T03:10:01Z"},
                 {"tid": "kiosk-0001", "status": "succeeded", "error": None,
                  "result": {"pong": True}, "ts": "2026-12-06T03:10:02Z",
                  "received": "2026-12-06T03:10:02Z"}]}


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"{not json", 400, "JSON object"),
    (b"[1, 2]", 400, "JSON object"),
    (b"\xff\xfe", 400, "JSON object"),
    (b"{}", 422, "name"),
    (b'{"name": 5}', 422, "name"),
    (b'{"name": "ping", "args": [1]}', 422, "args"),
    (b'{"name": "ping", "ttl_s": "soon"}', 422, "ttl_s"),
    (b'{"name": "ping", "ttl_s": true}', 422, "ttl_s"),
    (b'{"name": "ping", "ttl_s": 0}', 422, "ttl"),
    (b'{"name": "ping", "ttl_s": 700000}', 422, "ttl"),
    (b'{"name": "format_disk"}', 422, "unknown command"),
    (b'{"name": "ping", "colour": "red"}', 422, "unknown field"),
])
def test_a_bad_command_body_is_a_clear_client_error(api: TestClient, body: bytes, status: int,
                                                    says: str) -> None:
    answer = api.post("/api/terminals/kiosk-0001/commands", content=body,
                      headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


def test_a_command_to_an_unknown_terminal_is_404(api: TestClient) -> None:
    answer = api.post("/api/terminals/kiosk-9999/commands", json={"name": "ping"})
    assert answer.status_code == 404 and "kiosk-9999" in answer.json()["error"]


def test_a_broker_that_is_down_is_a_503_and_nothing_is_recorded(api: TestClient,
                                                                store: FleetStore) -> None:
    answer = api.post("/api/terminals/kiosk-0001/commands", json={"name": "ping"})
    assert answer.status_code == 503
    assert "cannot reach the broker" in answer.json()["error"]
    help_ack = api.post("/api/help/help-1/ack", json={"staff": "Li", "minutes": 5})
    assert help_ack.status_code == 503
    assert store.recent_commands() == []
    assert api.get("/api/help?state=open").json()[0]["state"] == "open"


@pytest.mark.parametrize(("body", "status"), [
    ({"staff": "Li"}, 422),
    ({"staff": "", "minutes": 5}, 422),
    ({"staff": "Li", "minutes": 0}, 422),
    ({"staff": "Li", "minutes": "5"}, 422),
    ({"staff": "call 13812345678", "minutes": 5}, 422),
    ({"staff": "Li", "minutes": 5, "extra": 1}, 422),
])
def test_a_bad_help_answer_is_422(api: TestClient, body: dict[str, object],
                                  status: int) -> None:
    assert api.post("/api/help/help-1/ack", json=body).status_code == status


def test_an_unknown_help_call_is_404(api: TestClient) -> None:
    answer = api.post("/api/help/help-404/ack", json={"staff": "Li", "minutes": 5})
    assert answer.status_code == 404


def test_a_body_too_big_is_413_and_unknown_paths_404_in_json(api: TestClient) -> None:
    big = api.post("/api/terminals/kiosk-0001/commands", content=b"{" + b" " * 70_000 + b"}",
                   headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]
    assert api.get("/api/nothing").json() == {"error": "not found"}
    assert api.delete("/api/terminals").status_code == 405


def test_metrics_from_the_store_at_scrape_time(api: TestClient, store: FleetStore) -> None:
    answer = api.get("/metrics", headers={"Authorization": ""})  # open by default
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    lines = set(answer.text.splitlines())
    for line in (
        'kiosk_terminals{state="online"} 2.0',
        'kiosk_terminals{state="stale"} 1.0',
        'kiosk_terminals{state="offline"} 1.0',
        f'kiosk_terminal_up{{site="{CHINESE_SITE}",tid="kiosk-0001"}} 1.0',
        'kiosk_terminal_up{site="town-b",tid="kiosk-0003"} 0.0',
        'kiosk_device_health{device="printer",health="degraded",tid="kiosk-0001"} 1.0',
        'kiosk_device_health{device="printer",health="ok",tid="kiosk-0001"} 0.0',
        'kiosk_device_health{device="printer",health="ok",tid="kiosk-0002"} 1.0',
        'kiosk_alerts_open{cause="offline"} 1.0',
        'kiosk_alerts_open{cause="help_requested"} 1.0',
        'kiosk_alerts_open{cause="tamper"} 0.0',
        'kiosk_messages_total{kind="heartbeat"} 3.0',
        'kiosk_messages_total{kind="event"} 2.0',
        'kiosk_messages_rejected_total{reason="duplicate"} 0.0',
    ):
        assert line in lines, line
    seen = next(line for line in lines if line.startswith(
        'kiosk_terminal_last_seen_timestamp_seconds{tid="kiosk-0001"}'))
    assert float(seen.split()[-1]) == at(590).timestamp()
    [offline] = [a for a in store.alerts(AlertState.OPEN) if a.cause == "offline"]
    api.post(f"/api/alerts/{offline.id}/ack")
    assert 'kiosk_alerts_open{cause="offline"} 0.0' in api.get("/metrics").text


def test_private_metrics_want_a_token(store: FleetStore, tokens: dict[str, str]) -> None:
    with client(store, WebSettings(clock=lambda: NOW, private_metrics=True)) as web:
        assert web.get("/metrics").status_code == 401
        assert web.get("/metrics", headers=bearer(tokens["viewer"])).status_code == 200

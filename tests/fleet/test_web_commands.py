"""Commands from the dashboard on a real mosquitto: one sent through the API is answered by a
real terminal agent and its acks (stored by the monitor) come back through the API; answering a
help call publishes help_ack with the help id, the staff's display name and the minutes."""

from __future__ import annotations

import datetime as dt
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from starlette.testclient import TestClient
from test_web_support import accounts, bearer, client, csrf_of, login

from contracts.mqtt import Counters, EventPayload, utc_now
from devices.base import DeviceState
from fleet.ingest import Event
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import AlertState, FleetStore
from fleet.sweeper import sweep
from fleet.web.app import WebSettings
from fleet.web.dispatch import Broker
from simulator.broker import Mosquitto
from terminal.mqtt_link import BrokerSettings
from terminal.telemetry import TelemetryAgent, TerminalSnapshot

pytestmark = pytest.mark.mosquitto

WAIT_S = 10.0


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as b:
        yield b


@pytest.fixture
def monitored(broker: Mosquitto, tmp_path: Path) -> Iterator[FleetStore]:
    """The store a running monitor writes to; the dashboard reads it through its own."""
    running = Monitor(MonitorSettings(host=broker.host, port=broker.port, batch_wait_s=0.05),
                      FleetStore(tmp_path / "fleet.db"))
    running.start()
    assert running.wait_connected(WAIT_S)
    store = FleetStore(tmp_path / "fleet.db")
    yield store
    running.stop()
    store.close()


@pytest.fixture
def web(broker: Mosquitto, monitored: FleetStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens = accounts(monitored)
    with client(monitored, WebSettings(broker=Broker(broker.host, broker.port))) as web:
        yield web, tokens


@pytest.fixture
def agent(broker: Mosquitto, tmp_path: Path) -> Iterator[TelemetryAgent]:
    terminal = TelemetryAgent(
        terminal_id="kiosk-0001", site="乡镇-a", version="1.0.0",
        broker=BrokerSettings(host="127.0.0.1", port=broker.port, keepalive_s=5,
                              reconnect_min_s=0.1, reconnect_max_s=0.5),
        state_dir=tmp_path / "kiosk-0001",
        snapshot=lambda: TerminalSnapshot(state="idle", devices={"printer": DeviceState.ok()},
                                          counters=Counters.zero()),
        interval_s=30.0)
    terminal.start()
    yield terminal
    terminal.stop()


def wait_for(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_command_through_the_api_is_answered_by_the_terminal(
        web: tuple[TestClient, dict[str, str]], agent: TelemetryAgent,
        monitored: FleetStore) -> None:
    api, tokens = web
    api.headers.update(bearer(tokens["operator"]))
    wait_for("the terminal's birth", lambda: api.get("/api/terminals/kiosk-0001")
             .status_code == 200)
    sent = api.post("/api/terminals/kiosk-0001/commands",
                    json={"name": "ping", "args": {}, "ttl_s": 60})
    assert sent.status_code == 200, sent.text
    request_id = sent.json()["request_id"]
    assert set(sent.json()) == {"request_id"}

    def acks() -> list[str]:
        return [a["status"] for a in api.get(f"/api/commands/{request_id}").json()["acks"]]

    wait_for("the final ack", lambda: "succeeded" in acks())
    command = api.get(f"/api/commands/{request_id}").json()
    assert (command["tid"], command["name"], command["args"]) == ("kiosk-0001", "ping", {})
    expires = dt.datetime.fromisoformat(command["expires_at"].replace("Z", "+00:00"))
    assert 50 < (expires - utc_now()).total_seconds() <= 60
    assert acks() == ["accepted", "succeeded"]
    assert command["acks"][-1]["result"] == {"pong": True}


def test_answering_a_help_call_sends_help_ack_to_the_terminal(
        broker: Mosquitto, web: tuple[TestClient, dict[str, str]],
        monitored: FleetStore) -> None:
    api, tokens = web
    now = utc_now()
    monitored.apply([Event("kiosk-0007", EventPayload(
        seq=1, type="help_requested", severity="critical", help_id="h-42", screen="form",
        elder_mode=False), now)])
    sweep(monitored, now)
    heard: queue.Queue[paho.MQTTMessage] = queue.Queue()
    listener = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                           protocol=MQTTProtocolVersion.MQTTv5)
    listener.on_message = lambda _c, _u, message: heard.put(message)
    listener.connect(broker.host, broker.port)
    listener.subscribe("kiosk/v1/kiosk-0007/cmd/+", qos=1)
    listener.loop_start()
    try:
        time.sleep(0.2)  # the subscription is in place before anything is published
        answer = api.post("/api/help/h-42/ack", json={"staff": "值班员 王", "minutes": 8},
                          headers=bearer(tokens["operator"]))
        assert answer.status_code == 200, answer.text
        message = heard.get(timeout=WAIT_S)
    finally:
        listener.loop_stop()
        listener.disconnect()
    payload = json.loads(message.payload)
    request_id = answer.json()["request_id"]
    assert message.topic == f"kiosk/v1/kiosk-0007/cmd/{request_id}"
    assert payload["name"] == "help_ack"
    assert payload["args"] == {"help_id": "h-42", "staff": "值班员 王", "minutes": 8}
    assert 0 < message.properties.MessageExpiryInterval <= 8 * 60  # type: ignore[union-attr]
    assert answer.json()["state"] == "acknowledged"
    assert answer.json()["acknowledged"]["staff"] == "值班员 王"
    assert api.get("/api/help?state=open", headers=bearer(tokens["operator"])).json() == []
    [alert] = monitored.alerts(AlertState.ACKNOWLEDGED)
    assert (alert.tid, alert.cause, alert.acked_by) == (
        "kiosk-0007", "help_requested", "token:script-operator")
    again = api.post("/api/help/h-42/ack", json={"staff": "Li", "minutes": 5},
                     headers=bearer(tokens["operator"]))
    assert again.status_code == 409


def test_the_help_page_sends_help_ack_and_says_so(
        web: tuple[TestClient, dict[str, str]], monitored: FleetStore) -> None:
    page, _ = web
    now = utc_now()
    monitored.apply([Event("kiosk-0008", EventPayload(
        seq=1, type="help_requested", severity="critical", help_id="h-7", screen="menu",
        elder_mode=True), now)])
    login(page, "op")
    html = page.get("/help").text
    done = page.post("/help/kiosk-0008/h-7/ack",
                     data={"csrf": csrf_of(html), "staff": "Li", "minutes": "12"})
    assert done.status_code == 200 and done.url.path == "/help"
    assert "kiosk-0008 told: Li comes within 12 min" in done.text
    [command] = monitored.recent_commands()
    assert (command.tid, command.name, command.args) == (
        "kiosk-0008", "help_ack", {"help_id": "h-7", "staff": "Li", "minutes": 12})

"""Operations link: events recorded before telemetry is up are kept and delivered, in order, to a
real mosquitto; counters count everything; a device fault becomes an event."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from devices.base import DeviceState
from flows.steps import RecordEvent
from simulator.broker import Mosquitto
from terminal.config import parse_config
from terminal.counters import DailyCounters
from terminal.operations import EARLY_KIND, OperationsLink, terminal_state
from terminal.outbox import Outbox

pytestmark = pytest.mark.mosquitto


def test_terminal_state_summary() -> None:
    ok, fault = DeviceState.ok(), DeviceState.fault("paper_out")
    assert terminal_state(True, {"printer": fault}) == "in_session"
    assert terminal_state(False, {"card_reader": DeviceState.fault("pcscd_down")}) == (
        "out_of_service")
    assert terminal_state(False, {"card_reader": ok, "printer": fault}) == "degraded"
    assert terminal_state(False, {"card_reader": ok, "printer": ok}) == "idle"
    # Staff at the cabinet: whatever else holds, that is what operations see.
    assert terminal_state(False, {"printer": fault}, maintenance=True) == "maintenance"


def test_the_paper_has_events_of_its_own(tmp_path: Path) -> None:
    config = parse_config({"terminal": {"state_dir": str(tmp_path)}, "mqtt": {"enabled": False}})
    recorded: list[RecordEvent] = []
    link = OperationsLink(config, outbox=Outbox(tmp_path / "outbox.sqlite"),
                          counters=DailyCounters(lambda: dt.date(2026, 12, 7)),
                          devices=lambda: {}, in_session=lambda: False)
    link.record = recorded.append  # type: ignore[method-assign]
    link.device_changed("printer", DeviceState.degraded("paper_low_estimated"))
    link.device_changed("printer", DeviceState.degraded("paper_near_end"))
    link.device_changed("printer", DeviceState.fault("paper_out"))
    link.device_changed("printer", DeviceState.fault("cover_open"))
    assert [str(e.type) for e in recorded] == [
        "device_fault", "paper_low", "device_fault", "paper_low", "device_fault", "paper_out",
        "device_fault"]


def test_events_before_start_arrive_in_order(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = parse_config({
        "terminal": {"id": "T-OPS-1", "state_dir": str(tmp_path)},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
    })
    received: list[dict[str, object]] = []
    arrived = threading.Condition()

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with arrived:
            received.append(json.loads(message.payload))
            arrived.notify_all()

    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ops-test")
    listener.on_message = on_message
    listener.connect(mosquitto.host, mosquitto.port)
    listener.subscribe("kiosk/v1/T-OPS-1/event", qos=1)
    listener.loop_start()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    counters = DailyCounters(lambda: dt.date(2026, 11, 21))
    link = OperationsLink(config, outbox=outbox, counters=counters,
                          devices=lambda: {}, in_session=lambda: False)
    try:
        link.record(RecordEvent("session_started"))
        link.device_changed("printer", DeviceState.fault("paper_out"))
        link.record(RecordEvent("session_ended", fields={"reason": "done"}))
        assert counters.snapshot()["sessions"] == 1, "counted at once, agent or not"
        link.start()
        with arrived:
            assert arrived.wait_for(lambda: len(received) >= 4, timeout=10), received
        assert [e["type"] for e in received[:4]] == [
            "session_started", "device_fault", "paper_out", "session_ended"]
        assert received[1]["reason"] == "paper_out"
    finally:
        link.stop()
        listener.loop_stop()
        listener.disconnect()
        outbox.close()


def test_early_events_survive_a_crash_before_telemetry_was_up(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = parse_config({
        "terminal": {"id": "T-OPS-2", "state_dir": str(tmp_path)},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
    })
    counters = DailyCounters(lambda: dt.date(2026, 11, 21))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    first = OperationsLink(config, outbox=outbox, counters=counters,
                           devices=lambda: {}, in_session=lambda: False)
    first.record(RecordEvent("session_started"))
    first.record(RecordEvent("card_left_in_reader", "warning"))
    outbox.close()  # the power goes: the link never started its agent

    outbox = Outbox(tmp_path / "outbox.sqlite")
    assert outbox.count(EARLY_KIND) == 2
    second = OperationsLink(config, outbox=outbox, counters=counters,
                            devices=lambda: {}, in_session=lambda: False)
    try:
        second.start()
        deadline = time.monotonic() + 10
        while outbox.count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outbox.count() == 0, "the stored events must be handed over and delivered"
    finally:
        second.stop()
        outbox.close()


def test_without_mqtt_nothing_is_kept_for_later(tmp_path: Path) -> None:
    config = parse_config({"terminal": {"state_dir": str(tmp_path)}, "mqtt": {"enabled": False}})
    counters = DailyCounters(lambda: dt.date(2026, 11, 21))
    link = OperationsLink(config, outbox=Outbox(tmp_path / "o.sqlite"), counters=counters,
                          devices=lambda: {}, in_session=lambda: False)
    for _ in range(5):
        link.record(RecordEvent("receipt_printed"))
    link.start()
    link.stop()
    assert counters.snapshot()["receipts"] == 5
    assert Outbox(tmp_path / "o.sqlite").count() == 0


def test_early_events_are_screened_before_they_rest_on_disk(tmp_path: Path) -> None:
    # Found by review: events recorded before telemetry was up were stored unscreened, so a
    # personal field reached the disk (and was only dropped later, when the agent sent it).
    config = parse_config({"terminal": {"id": "T-OPS-3", "state_dir": str(tmp_path)}})
    outbox = Outbox(tmp_path / "outbox.sqlite")
    link = OperationsLink(config, outbox=outbox, counters=DailyCounters(dt.date.today),
                          devices=lambda: {}, in_session=lambda: False)
    link.record(RecordEvent("card_read_failed", "warning",
                            {"reason": "pin_required", "holder_name": "张三",
                             "note": "110105194912310021"}))
    (item,) = outbox.pending(EARLY_KIND)
    stored = json.loads(item.payload_json)
    assert stored["fields"] == {"reason": "pin_required", "dropped_fields": 2}
    assert "张三" not in item.payload_json and "110105194912310021" not in item.payload_json
    outbox.close()

"""The cabinet's parts as the terminal wires them: the ID card reader's reads become engine events,
the co-processor's reports become operations events and the heartbeat's cabinet row, its ping is
the self-test's, and its watchdog hears only from the UI's main loop."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.base import DeviceError, Health
from flows.steps import Event, IdCardPresented, RecordEvent
from simulator.vcontroller import VirtualController
from simulator.vsam import VirtualSam
from terminal.cabinet_parts import CabinetParts
from terminal.config import parse_config


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class Seen:
    def __init__(self) -> None:
        self.posted: list[Event] = []
        self.recorded: list[RecordEvent] = []
        self.maintenance = False

    def types(self) -> list[str]:
        return [str(e.type) for e in self.recorded]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[VirtualController]:
    with VirtualController(directory=tmp_path) as controller:
        yield controller


@pytest.fixture
def sam(tmp_path: Path) -> Iterator[VirtualSam]:
    module = VirtualSam(directory=tmp_path)
    module.start()
    try:
        yield module
    finally:
        module.close()


def cabinet(seen: Seen, *, idcard: str = "", controller: str = "",
            watchdog_s: int = 60, grace_s: int = 180, **thermal: float) -> CabinetParts:
    sections: dict[str, dict[str, object]] = {}
    if idcard:
        sections["idcard"] = {"kind": "serial", "port": idcard}
    if controller:
        sections["controller"] = {"kind": "serial", "port": controller,
                                  "watchdog_timeout_s": watchdog_s, "grace_s": grace_s,
                                  **thermal}
    return CabinetParts(parse_config(sections), post=seen.posted.append,
                        record=seen.recorded.append, in_maintenance=lambda: seen.maintenance)


def test_nothing_fitted_nothing_polled() -> None:
    parts = cabinet(Seen())
    assert parts.devices() == {}
    parts.start()
    parts.kick()  # harmless without a board
    with pytest.raises(DeviceError):
        parts.ping()
    parts.stop()


def test_an_id_card_read_becomes_one_engine_event_and_a_refusal_its_reason(
    sam: VirtualSam,
) -> None:
    seen = Seen()
    parts = cabinet(seen, idcard=sam.path)
    parts.start()
    try:
        wait_for(lambda: parts.devices()["id_reader"]().health is Health.OK)
        sam.place("11010519491231002X", "欧阳娜娜", valid_until=dt.date(2036, 1, 1))
        wait_for(lambda: seen.posted)
        [event] = seen.posted
        assert isinstance(event, IdCardPresented) and event.holder is not None
        assert event.holder.name == "欧阳娜娜" and "欧阳娜娜" not in repr(event)
        sam.remove()
        time.sleep(0.6)
        sam.place("11010519491231002X", "欧阳娜娜", card_type="residence_permit")
        wait_for(lambda: len(seen.posted) == 2)
        refused = seen.posted[1]
        assert isinstance(refused, IdCardPresented)
        assert refused.holder is None and refused.reason == "residence_permit"
    finally:
        parts.stop()


def test_the_door_heat_and_reset_reach_operations(board: VirtualController) -> None:
    seen = Seen()
    parts = cabinet(seen, controller=board.path)
    parts.start()
    try:
        wait_for(lambda: parts.devices()["controller"]().health is Health.OK)
        assert parts.cabinet_state().health is Health.OK
        board.door(True)
        wait_for(lambda: "door_opened" in seen.types())
        opened = next(e for e in seen.recorded if e.type == "door_opened")
        assert opened.severity == "critical" and opened.fields["in_maintenance"] is False
        assert parts.cabinet_state().reason == "door_open"
        board.door(False)
        wait_for(lambda: "door_closed" in seen.types())
        seen.maintenance = True  # staff open it: worth knowing, not an alarm
        board.door(True)
        wait_for(lambda: seen.types().count("door_opened") == 2)
        assert seen.recorded[-1].severity == "info"
        board.door(False)
        board.tamper(True)
        wait_for(lambda: "tamper" in seen.types())
        assert parts.cabinet_state().reason == "tamper"
        board.tamper(False)
        board.temperature(70.0)
        wait_for(lambda: "temperature_high" in seen.types())
        hot = next(e for e in seen.recorded if e.type == "temperature_high")
        assert hot.fields["fan_on"] is True and hot.fields["celsius"] >= 60
        reset = next(e for e in seen.recorded if e.type == "controller_reset")
        assert reset.severity == "info"  # a board found at start after a power-on
        answer = parts.ping()
        assert isinstance(answer, dict) and "token" in answer
    finally:
        parts.stop()


def test_only_the_main_loop_keeps_the_watchdog_quiet(board: VirtualController) -> None:
    seen = Seen()
    parts = cabinet(seen, controller=board.path, watchdog_s=5, grace_s=0)
    parts.start()
    loop_alive = threading.Event()
    loop_alive.set()

    def main_loop() -> None:  # stands for Kivy's Clock interval calling kick()
        while loop_alive.is_set():
            parts.kick()
            time.sleep(0.5)

    ticker = threading.Thread(target=main_loop, daemon=True)
    ticker.start()
    try:
        wait_for(lambda: parts.devices()["controller"]().health is Health.OK)
        time.sleep(7)
        assert board.power_cycles == 0  # kicked all along
        loop_alive.clear()  # the UI freezes; the driver's own thread runs on
        wait_for(lambda: board.power_cycles == 1, timeout=12)
    finally:
        loop_alive.clear()
        parts.stop()


def test_the_configured_thresholds_reach_the_board(board: VirtualController) -> None:
    seen = Seen()
    parts = cabinet(seen, controller=board.path, fan_on_c=35.0, fan_off_c=30.0,
                    temperature_high_c=50.0)
    parts.start()
    try:
        wait_for(lambda: parts.devices()["controller"]().health is Health.OK)
        time.sleep(0.5)  # the thresholds go to the board right after the handshake
        board.temperature(52.0)  # below the firmware's own 60 °C, above ours
        wait_for(lambda: "temperature_high" in seen.types())
        assert board.fan_on
    finally:
        parts.stop()


def test_the_thermal_settings_must_make_sense() -> None:
    from terminal.config import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="fan_off_c < fan_on_c < temperature_high_c"):
        parse_config({"controller": {"fan_on_c": 50.0, "temperature_high_c": 45.0}})

"""The production driver against the real firmware files running in a virtual board over a pty."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from contracts.controller import MESSAGES, render_firmware_dictionary
from devices.base import DeviceUnavailable, Health
from devices.controller.driver import (
    BoardReset,
    ControllerDriver,
    ControllerEvent,
    DoorChanged,
    FanChanged,
    TamperChanged,
    TemperatureHigh,
    TemperatureNormal,
)
from devices.controller.protocol import BoardRefused
from simulator.vcontroller import VirtualController


def wait_for(condition: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Rig:
    def __init__(self, board: VirtualController, driver: ControllerDriver) -> None:
        self.board = board
        self.driver = driver
        self.events: list[ControllerEvent] = []

    def start(self) -> Rig:
        self.driver.start(self.events.append)
        wait_for(lambda: self.driver.state().health is Health.OK)
        return self

    def kinds(self) -> list[type]:
        return [type(event) for event in self.events]


@pytest.fixture
def board() -> Iterator[VirtualController]:
    with VirtualController() as controller:
        yield controller


def make_driver(board: VirtualController, **settings: int | float) -> ControllerDriver:
    options: dict[str, int | float] = {
        "answer_timeout_s": 0.2,
        "reopen_s": 0.2,
        "watchdog_timeout_s": 60,
        "grace_s": 60,
        "power_off_s": 1,
        "status_every_s": 0.5,
    }
    options.update(settings)
    return ControllerDriver(board.path, **options)  # type: ignore[arg-type]


@pytest.fixture
def rig(board: VirtualController) -> Iterator[Rig]:
    driver = make_driver(board)
    rig = Rig(board, driver).start()
    yield rig
    driver.stop()


def test_handshake_then_status_and_first_contact(rig: Rig) -> None:
    # hello(our hash) -> hello_answer(same hash, "1.0.0"); set_watchdog; set_light; get_status.
    status = rig.driver.status()
    assert status is not None
    assert status.firmware_version == "1.0.0"
    assert (status.door_open, status.tamper, status.fan_on) == (False, False, False)
    assert status.temperature_c == pytest.approx(25.0, abs=0.2)
    assert (status.watchdog_timeout_s, status.grace_s, status.light) == (60, 60, "ok")
    assert rig.events[0] == BoardReset("power_on", 0)


def test_request_answer_and_refusal(rig: Rig) -> None:
    assert rig.driver.request("ping", token=0xC0FFEE) == {"token": 0xC0FFEE}
    rig.driver.set_light("maintenance")
    wait_for(lambda: (s := rig.driver.status()) is not None and s.light == "maintenance")
    with pytest.raises(BoardRefused) as refused:
        rig.driver.request("set_thermal", fan_on_cc=3000, fan_off_cc=4000, alarm_cc=6000)
    assert refused.value.reason == "bad_value"
    with pytest.raises(ValueError):
        rig.driver.request("hello", dictionary_hash=1)
    with pytest.raises(ValueError):
        rig.driver.set_light("disco")


def test_door_and_tamper_events(rig: Rig) -> None:
    rig.board.door(True)
    wait_for(lambda: DoorChanged(True) in rig.events)
    rig.board.tamper(True)
    wait_for(lambda: TamperChanged(True) in rig.events)
    rig.board.door(False)
    wait_for(lambda: DoorChanged(False) in rig.events)
    status = rig.driver.status()
    assert status is not None and not status.door_open and status.tamper


def test_fan_hysteresis_and_temperature_alarm(rig: Rig) -> None:
    # Fan on at 45 °C, off below 40 °C; alarm from 60 °C until below 55 °C.
    rig.board.temperature(47)
    wait_for(lambda: FanChanged(True) in rig.events)
    assert rig.board.fan_on
    rig.board.temperature(42)  # between the thresholds: stays on
    time.sleep(0.8)
    assert rig.kinds().count(FanChanged) == 1 and rig.board.fan_on
    rig.board.temperature(38)
    wait_for(lambda: FanChanged(False) in rig.events)
    rig.board.temperature(65)
    wait_for(lambda: any(isinstance(e, TemperatureHigh) for e in rig.events))
    high = next(e for e in rig.events if isinstance(e, TemperatureHigh))
    assert high.celsius >= 60 and high.fan_on
    rig.board.temperature(57)  # inside the alarm's band: still high
    time.sleep(0.6)
    assert TemperatureNormal not in rig.kinds()
    rig.board.temperature(30)
    wait_for(lambda: TemperatureNormal in rig.kinds())


def test_watchdog_quiet_while_kicked_fires_when_kicks_stop(board: VirtualController) -> None:
    # grace 1 s, timeout 1 s: kicked for 2.5 s nothing happens; then the "UI" freezes (kick() no
    # longer called, the driver thread lives on) and the relay cuts the power.
    driver = make_driver(board, watchdog_timeout_s=1, grace_s=1)
    rig = Rig(board, driver).start()
    try:
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            driver.kick()
            time.sleep(0.05)
        assert board.power_cycles == 0
        assert board.power_events.get(timeout=3.0) == 1
        assert not board.host_powered
        wait_for(lambda: BoardReset("kick_timeout", 1) in rig.events)
        wait_for(lambda: board.host_powered)  # power back after power_off_s, grace re-armed
        wait_for(lambda: driver.state().health is Health.OK)
    finally:
        driver.stop()


def test_watchdog_never_fires_within_the_grace_period(board: VirtualController) -> None:
    # grace 2 s, timeout 1 s, never kicked: nothing before 2 s; the cut comes at grace + timeout.
    driver = make_driver(board, watchdog_timeout_s=1, grace_s=2)
    Rig(board, driver).start()
    try:
        time.sleep(1.8)
        assert board.power_cycles == 0
        assert board.power_events.get(timeout=3.0) == 1
    finally:
        driver.stop()


def test_board_reset_mid_session_reconnects_and_rehandshakes(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devices.controller.driver")
    first = rig.driver.status()
    assert first is not None
    rig.board.reset()
    wait_for(lambda: (s := rig.driver.status()) is not None and s.boot_id != first.boot_id)
    # Between the two sessions the state said why (the boot event: resyncing; silence:
    # no_answer), and the board's restart was reported as an event.
    said = [record.getMessage() for record in caplog.records]
    assert "controller degraded (resyncing)" in said or "controller fault (no_answer)" in said
    assert rig.driver.state().health is Health.OK
    assert BoardReset("power_on", 0) in rig.events[1:]
    assert rig.driver.request("ping", token=1) == {"token": 1}


def test_garbage_on_the_uart_is_dropped(rig: Rig) -> None:
    # A stray start byte with a plausible length, then noise: answers get through all the same.
    rig.board.send_garbage(b"\xa5\x40" + bytes(range(0x41, 0x70)) + b"\x00\xa5\xa5")
    for token in range(5):
        assert rig.driver.request("ping", token=token) == {"token": token}
    wait_for(lambda: rig.driver.state().health is Health.OK)


def test_board_of_another_dictionary_is_refused(board: VirtualController, tmp_path: Path) -> None:
    # The same firmware flashed with a dictionary whose door event has another field name.
    other = tuple(
        replace(spec, fields=(replace(spec.fields[0], name="ajar"),))
        if spec.name == "door"
        else spec
        for spec in MESSAGES
    )
    (tmp_path / "dictionary.py").write_text(render_firmware_dictionary(other), encoding="utf-8")
    with VirtualController(dictionary=tmp_path) as foreign:
        driver = make_driver(foreign)
        driver.start(lambda event: None)
        try:
            wait_for(lambda: driver.state().reason == "dictionary_mismatch")
            assert driver.state().health is Health.FAULT
            assert driver.status() is None
            with pytest.raises(DeviceUnavailable) as caught:
                driver.request("ping", token=1)
            assert caught.value.reason == "dictionary_mismatch"
        finally:
            driver.stop()


def test_unplugged_port_goes_offline_and_comes_back(rig: Rig) -> None:
    rig.board.unplug()
    wait_for(lambda: rig.driver.state().reason == "offline")
    with pytest.raises(DeviceUnavailable):
        rig.driver.request("ping", token=1)
    rig.board.replug()
    wait_for(lambda: rig.driver.state().health is Health.OK, timeout=5)
    assert rig.driver.request("ping", token=2) == {"token": 2}


def test_absent_port_and_stop() -> None:
    driver = ControllerDriver("/nonexistent/controller", reopen_s=0.1)
    driver.start(lambda event: None)
    assert driver.state().reason == "absent"
    driver.stop()
    assert driver.state().reason == "offline"

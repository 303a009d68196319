"""Firmware logic on a fake clock: debounce, fan and alarm hysteresis, host watchdog, light."""

from __future__ import annotations

import pytest

from devices.controller.firmware import config
from devices.controller.firmware.debounce import Debouncer
from devices.controller.firmware.light import PATTERNS, Light
from devices.controller.firmware.thermal import Average, Thermal, centi_celsius
from devices.controller.firmware.watchdog import CUT, IDLE, RESTORE, HostWatchdog
from simulator.micropython_machine import utime
from simulator.vcontroller import adc_for_celsius


def test_debounce_ignores_bounces_and_takes_a_level_that_holds() -> None:
    switch = Debouncer(0, settle_ms=30)
    # A reed contact bouncing for 12 ms, then settled at 1.
    samples = [(0, 1), (2, 0), (5, 1), (9, 0), (12, 1), (20, 1), (40, 1), (41, 1), (42, 1)]
    changes = [now for now, raw in samples if switch.update(raw, now)]
    assert changes == [42]  # 30 ms after the last bounce at 12 ms
    assert switch.level == 1
    # A 20 ms glitch back to 0 is not a change.
    assert not any(switch.update(raw, now) for now, raw in [(100, 0), (120, 1), (200, 1)])
    assert switch.level == 1


def make_thermal() -> Thermal:
    return Thermal(config.FAN_ON_CC, config.FAN_OFF_CC, config.ALARM_CC, config.ALARM_BAND_CC)


def test_fan_hysteresis_on_at_45_off_below_40() -> None:
    thermal = make_thermal()
    assert thermal.update(3000) == (False, False)  # first reading: sets the state, no news
    readings = [4400, 4500, 4300, 4001, 4000, 3999, 4100, 4499, 4500]
    fan = []
    for reading in readings:
        changed, _ = thermal.update(reading)
        fan.append((thermal.fan_on, changed))
    assert fan == [
        (False, False),
        (True, True),
        (True, False),
        (True, False),
        (True, False),  # 40.00 °C is not below 40
        (False, True),
        (False, False),
        (False, False),
        (True, True),
    ]


def test_alarm_hysteresis_and_first_reading_when_already_hot() -> None:
    thermal = make_thermal()
    assert thermal.update(6100) == (True, True)  # booted into a hot cabinet: that is news
    assert thermal.high and thermal.fan_on
    assert thermal.update(5600) == (False, False)  # inside the 5 °C band
    assert thermal.update(5499) == (False, True)
    assert not thermal.high and thermal.fan_on


def test_thermal_configure_checks_its_thresholds() -> None:
    thermal = make_thermal()
    assert not thermal.configure(4000, 4000, 6000)  # off must be below on
    assert not thermal.configure(5000, 4000, 4500)  # alarm at or above on
    assert not thermal.configure(13000, 4000, 13000)  # beyond what the sensor reads
    assert thermal.configure(3500, 3000, 5000)
    assert (thermal.fan_on_cc, thermal.fan_off_cc, thermal.alarm_cc) == (3500, 3000, 5000)


def test_sensor_conversion_matches_the_datasheet_and_the_simulator() -> None:
    def convert(raw: int) -> int:
        return centi_celsius(
            raw, config.ADC_VREF_UV, config.SENSOR_UV_AT_27C, config.SENSOR_UV_PER_C
        )

    assert convert(round(0.706 / 3.3 * 65535)) == pytest.approx(2700, abs=10)
    for celsius in (-10.0, 25.0, 45.0, 60.0, 85.0):
        assert convert(adc_for_celsius(celsius)) == pytest.approx(celsius * 100, abs=10)
    average = Average(4)
    assert [average.add(x) for x in (100, 200, 300, 400, 500)] == [100, 150, 200, 250, 350]


def test_watchdog_never_cuts_within_grace_and_measures_timeout_from_its_end() -> None:
    dog = HostWatchdog(timeout_ms=1000, grace_ms=3000, power_off_ms=500, now_ms=0)
    assert all(dog.update(t) == IDLE for t in range(0, 4000, 10))  # grace 3 s + timeout 1 s
    assert dog.grace_left_ms(1000) == 2000
    assert dog.update(4000) == CUT
    assert (dog.power_cycles, dog.last_cause, dog.cutting) == (1, "kick_timeout", True)
    dog.kick(4100)  # the host is off: a kick now means nothing
    assert dog.update(4499) == IDLE
    assert dog.update(4500) == RESTORE
    # Re-armed: a new grace from the moment the power came back.
    assert dog.grace_left_ms(4500) == 3000
    assert dog.update(8499) == IDLE
    assert dog.update(8500) == CUT
    assert dog.power_cycles == 2


def test_watchdog_kicks_hold_it_off() -> None:
    dog = HostWatchdog(timeout_ms=1000, grace_ms=0, power_off_ms=500, now_ms=0)
    for now in range(0, 10_000, 500):
        dog.kick(now)
        assert dog.update(now + 499) == IDLE
    assert dog.update(9500 + 999) == IDLE
    assert dog.update(9500 + 1000) == CUT


def test_watchdog_reconfigured_by_the_host() -> None:
    dog = HostWatchdog(60_000, 180_000, 5000, now_ms=0)
    dog.configure(timeout_ms=1000, grace_ms=1000, power_off_ms=1000)
    assert dog.deadline_ms() == 2000


def test_light_patterns_are_told_apart_by_rhythm() -> None:
    light = Light("ok")
    assert [light.level(t) for t in (0, 500, 999)] == [1, 1, 1]
    assert light.set("fault", now_ms=1000)
    assert [light.level(1000 + t) for t in (0, 99, 100, 199, 200)] == [1, 1, 0, 0, 1]
    assert light.set("maintenance", now_ms=0)
    assert [light.level(t) for t in (50, 150, 300, 400, 999)] == [1, 0, 1, 0, 0]
    assert not light.set("disco", now_ms=0)
    assert light.pattern == "maintenance"
    assert set(PATTERNS) == {"off", "ok", "attention", "fault", "maintenance"}


def test_ticks_diff_survives_the_wrap() -> None:
    # The simulator starts ticks 5 s before they wrap: the firmware's Clock must use ticks_diff.
    before = utime.TICKS_PERIOD - 10
    after = utime.ticks_add(before, 25)
    assert after == 15
    assert utime.ticks_diff(after, before) == 25
    assert utime.ticks_diff(before, after) == -25

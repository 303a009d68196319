"""The device monitor caches each device's state and reports changes once, not on every poll."""

import threading

from devices.base import DeviceState
from terminal.device_monitor import DeviceMonitor


def test_changes_are_reported_once_and_probe_errors_read_as_faults() -> None:
    printer_state = [DeviceState.ok()]
    changes: list[tuple[str, DeviceState]] = []

    def broken_probe() -> DeviceState:
        raise RuntimeError("driver bug")

    monitor = DeviceMonitor(
        {"printer": lambda: printer_state[0], "camera": broken_probe},
        on_change=lambda name, state: changes.append((name, state)),
    )
    assert not monitor.polled.is_set()
    monitor.poll_once()
    assert monitor.polled.is_set()
    monitor.poll_once()
    assert changes == [("printer", DeviceState.ok()), ("camera", DeviceState.fault("probe_error"))]
    printer_state[0] = DeviceState.fault("paper_out")
    monitor.poll_once()
    assert changes[-1] == ("printer", DeviceState.fault("paper_out"))
    assert monitor.states()["printer"] == DeviceState.fault("paper_out")


def test_poll_soon_wakes_the_thread_before_the_interval() -> None:
    polled = threading.Event()
    calls = [0]

    def probe() -> DeviceState:
        calls[0] += 1
        if calls[0] >= 2:
            polled.set()
        return DeviceState.ok()

    monitor = DeviceMonitor({"card": probe}, interval_s=60)
    monitor.start()
    try:
        monitor.poll_soon()
        assert polled.wait(5), "a second poll should follow poll_soon() long before 60 s"
    finally:
        monitor.stop()

"""The device monitor caches each device's state and reports changes once, not on every poll."""


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


def test_a_state_a_job_learnt_is_reported_without_asking_the_device_again() -> None:
    asked = [0]

    def probe() -> DeviceState:
        asked[0] += 1
        return DeviceState.ok()

    changes: list[tuple[str, DeviceState]] = []
    monitor = DeviceMonitor({"printer": probe}, interval_s=60,
                            on_change=lambda name, state: changes.append((name, state)))
    monitor.poll_once()
    monitor.report("printer", DeviceState.fault("paper_out"))
    monitor.report("printer", DeviceState.fault("paper_out"))
    assert monitor.states()["printer"] == DeviceState.fault("paper_out")
    assert changes == [("printer", DeviceState.ok()), ("printer", DeviceState.fault("paper_out"))]
    assert asked[0] == 1

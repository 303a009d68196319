"""What staff need of the terminal: the badge list, the paper roll, the maintenance desk, commands.

Built by the composition root. The badge list and the paper roll exist from the start (the engine
needs the badges, the printer's state needs the roll); the maintenance desk and the staff commands
are built after the first screen, off its path (``build_desk``, ``register_commands``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devices.base import DeviceState, Receipt
from flows.maintenance_report import SELF_TEST_DEVICES
from terminal.config import Config
from terminal.paper_roll import PaperRoll
from terminal.staff_badges import StaffBadges

if TYPE_CHECKING:
    from terminal.maintenance import MaintenanceDesk
    from terminal.telemetry import TelemetryAgent


class StaffParts:
    """The badge list and the paper roll; builds the desk and registers the staff commands."""

    def __init__(self, config: Config, state_dir: Path) -> None:
        self._config = config
        self.badges = StaffBadges(state_dir, config.staff.badges)
        self.roll = PaperRoll(state_dir / "paper_roll.json", config.printer.roll_capacity,
                              low_at=config.printer.paper_low_at)

    def printer_state(self, state: DeviceState) -> DeviceState:
        """The printer's own state with the roll's estimate folded in (paper_low_estimated)."""
        return self.roll.with_estimate(state)

    def build_desk(
        self,
        *,
        states: Mapping[str, Callable[[], DeviceState]],
        printer_status: Callable[[], DeviceState],
        controller_ping: Callable[[], object] | None,
        counters: Callable[[], Mapping[str, object]],
        devices: Callable[[], Mapping[str, DeviceState]],
        on_refilled: Callable[[], None],
        request_restart: Callable[[], None],
        catalogue_version: str,
        catalogue_file: Path,
    ) -> MaintenanceDesk:
        """The desk, with a probe for each device this terminal has (``states``: the card reader,
        ID reader, scanner and camera that are fitted), the printer, the co-processor, the
        network, the hub and (when MQTT is on) the broker."""
        # Imported here: the desk's probes (sockets, ioctl) are needed only once staff come.
        from terminal.maintenance import (  # noqa: PLC0415
            MaintenanceDesk,
            Probe,
            call_probe,
            content_version,
            http_probe,
            network_probe,
            printer_probe,
            state_probe,
            tcp_probe,
        )

        config = self._config
        # Only the self-test's devices: the monitor also watches storage, content, the queue.
        probes: dict[str, Probe] = {name: state_probe(name, fn) for name, fn in states.items()
                                    if name in SELF_TEST_DEVICES}
        probes["printer"] = printer_probe(printer_status, self.roll)
        probes["network"] = network_probe()
        probes["hub"] = http_probe(config.hub.url, ca_file=config.hub.ca_file)
        if config.mqtt.enabled:
            probes["broker"] = tcp_probe(config.mqtt.host, config.mqtt.port)
        if controller_ping is not None:
            probes["controller"] = call_probe("controller", controller_ping)
        return MaintenanceDesk(
            terminal_id=config.terminal.terminal_id,
            site=config.terminal.site,
            probes=probes,
            roll=self.roll,
            printer_status=printer_status,
            counters=counters,
            devices=devices,
            on_refilled=on_refilled,
            request_restart=request_restart,
            content_version=lambda: content_version(catalogue_version, catalogue_file),
        )

    def register_commands(
        self,
        agent: TelemetryAgent,
        *,
        serving: Callable[[], bool],
        apply_badges: Callable[[frozenset[str]], None],
        restart: Callable[[], None],
        test_page: Callable[[], Receipt],
        print_receipt: Callable[[Receipt], None],
    ) -> None:
        """``set_staff_badges``, ``restart_app`` and ``test_print`` (on the telemetry thread)."""
        from terminal.staff_commands import (  # noqa: PLC0415
            NoArgs,
            SetStaffBadgesArgs,
            print_test_page_handler,
            restart_app_handler,
            set_staff_badges_handler,
        )

        agent.register_command("set_staff_badges", SetStaffBadgesArgs,
                               set_staff_badges_handler(self.badges, apply_badges))
        agent.register_command("restart_app", NoArgs, restart_app_handler(serving, restart))
        agent.register_command("test_print", NoArgs,
                               print_test_page_handler(serving, test_page, print_receipt))

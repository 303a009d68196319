"""What the maintenance menu shows: a device self-test's results and the terminal's status.

Staff see these after presenting a listed badge. Nothing in them is personal: devices, counters,
versions and addresses of the terminal itself. The terminal's maintenance desk
(terminal.maintenance) fills them in; the maintenance flow (flows.maintenance) lays them out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from devices.base import DeviceState


class MaintenanceTask(enum.StrEnum):
    """What a ``Maintain`` effect asks the terminal to do."""

    SELF_TEST = "self_test"  # -> SelfTestReport
    STATUS = "status"  # -> TerminalStatus
    PAPER_REFILLED = "paper_refilled"  # -> None: the paper roll's counter starts again
    RESTART = "restart"  # -> None: the application restarts a moment later


class CheckResult(enum.StrEnum):
    """One device's self-test verdict; colour is never the only signal, so each has a word."""

    PASSED = "passed"
    WARNING = "warning"  # usable, but something needs attention (paper near end)
    FAILED = "failed"
    NOT_FITTED = "not_fitted"  # this terminal has no such device configured


# The order staff read them in, as the issue lists them.
SELF_TEST_DEVICES: tuple[str, ...] = (
    "card_reader", "id_reader", "scanner", "camera", "printer", "controller", "network", "hub",
    "broker",
)


@dataclass(frozen=True)
class DeviceCheck:
    """``device`` (one of SELF_TEST_DEVICES), its verdict, a stable reason code and, when there
    is one, a short non-personal detail such as ``12 ms``."""

    device: str
    result: CheckResult
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class SelfTestReport:
    checks: tuple[DeviceCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.result in (CheckResult.PASSED, CheckResult.NOT_FITTED) for c in self.checks)

    @property
    def failed(self) -> bool:
        """Some device cannot be used (a warning leaves it usable)."""
        return any(c.result is CheckResult.FAILED for c in self.checks)


@dataclass(frozen=True)
class PrinterDetail:
    """The printer's own report (DLE EOT) and the paper roll's counter since it was refilled."""

    state: DeviceState
    paper_near_end: bool | None  # None: the printer did not answer
    paper_out: bool | None
    cover_open: bool | None
    receipts_since_refill: int
    roll_capacity: int  # receipts a full roll holds (config); 0: not counted


@dataclass(frozen=True)
class TerminalStatus:
    """Everything the status pages show; ``counters`` is the heartbeat's ``counters``."""

    terminal_id: str
    site: str
    software_version: str
    content_version: str
    addresses: tuple[str, ...]  # this terminal's IP addresses, "eth0 192.168.1.20" style
    printer: PrinterDetail
    counters: Mapping[str, object] = field(default_factory=dict)
    devices: Mapping[str, DeviceState] = field(default_factory=dict)

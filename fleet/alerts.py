"""What needs someone's attention at a terminal now: alert rules over what it last said; pure.

A rule turns a terminal's state (liveness, devices, figures from its last heartbeat) and its recent
events into conditions, each a cause with a severity. The store keeps one alert per terminal and
cause while its condition holds (opened, acknowledged by an operator, resolved once the condition
is gone), so a printer out of paper for an hour is one alert, not 120 heartbeats' worth.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fleet.liveness import Liveness


class Cause(enum.StrEnum):
    OFFLINE = "offline"
    STALE = "stale"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    PRINTER_FAULT = "printer_fault"
    CARD_READER_FAULT = "card_reader_fault"
    DISK_LOW = "disk_low"
    TEMPERATURE_HIGH = "temperature_high"
    OUTBOX_BACKLOG = "outbox_backlog"
    ERRAND_FAILURES = "errand_failures"
    HELP_REQUESTED = "help_requested"
    CARD_LEFT = "card_left_in_reader"
    CONTENT_INVALID = "content_invalid"
    DOOR_OPENED = "door_opened"
    TAMPER = "tamper"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# Printer reasons with an alert of their own (what a technician brings or does differs).
_PRINTER_CAUSES = {
    "paper_near_end": (Cause.PAPER_NEAR_END, Severity.WARNING),
    # The terminal's own estimate from its roll counter, for printers with no near-end sensor.
    "paper_low_estimated": (Cause.PAPER_NEAR_END, Severity.WARNING),
    "paper_out": (Cause.PAPER_OUT, Severity.CRITICAL),
    "cover_open": (Cause.COVER_OPEN, Severity.CRITICAL),
}
# Events that stand for a condition for a while after they came (no event says it is over).
_EVENT_CAUSES = {
    "card_left_in_reader": (Cause.CARD_LEFT, Severity.WARNING),
    "door_opened": (Cause.DOOR_OPENED, Severity.CRITICAL),
    "tamper": (Cause.TAMPER, Severity.CRITICAL),
    "temperature_high": (Cause.TEMPERATURE_HIGH, Severity.WARNING),
}


@dataclass(frozen=True)
class AlertRules:
    """Thresholds; the defaults suit a township service centre's terminal."""

    offline_after_s: float = 300.0  # a restart or a short network cut is not worth a call
    stale_after_s: float = 300.0
    disk_low_mb: int = 500
    temperature_high_c: float = 75.0
    outbox_backlog: int = 200  # events waiting: a link that accepts heartbeats but not events
    errand_failures: int = 3  # errand_failed events ...
    errand_failures_window_s: float = 3600.0  # ... within this long
    event_holds_s: float = 1800.0  # how long a door, tamper or forgotten-card event stays an alert
    help_holds_s: float = 1800.0  # an unanswered help call


DEFAULT_RULES = AlertRules()


@dataclass(frozen=True)
class TerminalFacts:
    """What the rules read of one terminal (from the store)."""

    tid: str
    liveness: Liveness
    last_seen: dt.datetime | None
    devices: dict[str, dict[str, str]]
    system: dict[str, Any]
    outbox: int | None


@dataclass(frozen=True)
class RecentEvent:
    type: str
    received: dt.datetime
    fields: dict[str, Any]


@dataclass(frozen=True)
class Condition:
    """A cause holding at a terminal now; ``detail`` a short code (a device reason, a count)."""

    tid: str
    cause: Cause
    severity: Severity
    detail: str = ""


Hold = Callable[..., None]  # hold(cause, severity, detail="")


def conditions(facts: TerminalFacts, events: Iterable[RecentEvent], now: dt.datetime,
               rules: AlertRules = DEFAULT_RULES) -> list[Condition]:
    """Every condition holding at this terminal at ``now``, one per cause at most."""
    found: dict[Cause, Condition] = {}

    def hold(cause: Cause, severity: Severity, detail: str = "") -> None:
        found.setdefault(cause, Condition(facts.tid, cause, severity, detail))

    quiet_s = None if facts.last_seen is None else (now - facts.last_seen).total_seconds()
    if facts.liveness is Liveness.OFFLINE and (quiet_s is None or quiet_s >= rules.offline_after_s):
        hold(Cause.OFFLINE, Severity.CRITICAL)
    if facts.liveness is Liveness.STALE and quiet_s is not None and quiet_s >= rules.stale_after_s:
        hold(Cause.STALE, Severity.WARNING)
    if facts.liveness is not Liveness.OFFLINE:
        # What a terminal said before it went away is old news; its offline alert says enough.
        _device_conditions(facts, rules, hold)
    _event_conditions(list(events), now, rules, hold)
    return list(found.values())


def _device_conditions(facts: TerminalFacts, rules: AlertRules, hold: Hold) -> None:
    printer = facts.devices.get("printer", {})
    reason, state = printer.get("reason", ""), printer.get("state", "ok")
    if reason in _PRINTER_CAUSES:
        hold(*_PRINTER_CAUSES[reason])
    elif state == "fault":
        hold(Cause.PRINTER_FAULT, Severity.CRITICAL, reason)
    reader = facts.devices.get("card_reader", {})
    if reader.get("state", "ok") != "ok":
        hold(Cause.CARD_READER_FAULT, Severity.CRITICAL, reader.get("reason", ""))
    content = facts.devices.get("content", {})
    if content.get("state", "ok") != "ok":
        hold(Cause.CONTENT_INVALID, Severity.WARNING, content.get("reason", ""))
    storage = facts.devices.get("storage", {})
    disk_free = facts.system.get("disk_free_mb")
    if storage.get("reason") == "disk_full" or (
            isinstance(disk_free, int) and disk_free < rules.disk_low_mb):
        hold(Cause.DISK_LOW, Severity.CRITICAL if storage.get("reason") == "disk_full"
             else Severity.WARNING, f"{disk_free} MB free" if disk_free is not None else "")
    temp = facts.system.get("temp_c")
    if isinstance(temp, (int, float)) and temp >= rules.temperature_high_c:
        hold(Cause.TEMPERATURE_HIGH, Severity.WARNING, f"{temp:.0f} C")
    if facts.outbox is not None and facts.outbox >= rules.outbox_backlog:
        hold(Cause.OUTBOX_BACKLOG, Severity.WARNING, f"{facts.outbox} events waiting")


def _event_conditions(events: list[RecentEvent], now: dt.datetime, rules: AlertRules,
                      hold: Hold) -> None:
    def within(event: RecentEvent, seconds: float) -> bool:
        return (now - event.received).total_seconds() <= seconds

    failures = [e for e in events if e.type == "errand_failed"
                and within(e, rules.errand_failures_window_s)]
    if len(failures) >= rules.errand_failures:
        hold(Cause.ERRAND_FAILURES, Severity.WARNING, f"{len(failures)} in the last hour")
    for event in sorted(events, key=lambda e: e.received, reverse=True):
        if event.type in _EVENT_CAUSES and within(event, rules.event_holds_s):
            if event.type == "door_opened" and event.fields.get("in_maintenance") is True:
                continue  # staff opened it from the maintenance menu: no break-in
            hold(*_EVENT_CAUSES[event.type])
    cancelled = {e.fields.get("help_id") for e in events if e.type == "help_cancelled"}
    for event in events:
        if (event.type == "help_requested" and within(event, rules.help_holds_s)
                and event.fields.get("help_id") not in cancelled):
            hold(Cause.HELP_REQUESTED, Severity.CRITICAL, str(event.fields.get("help_id", "")))

"""Contract v1 messages as a terminal sends them, for the fleet tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from contracts.mqtt import (
    Counters,
    DeviceReport,
    EventPayload,
    HeartbeatPayload,
    StatusPayload,
    SystemFigures,
)

T0 = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def status(online: bool, bdseq: int, boot: str = "boot-a", version: str = "1.0.0",
           site: str = "site-a") -> StatusPayload:
    return StatusPayload(online=online, bdseq=bdseq, boot_id=boot, version=version, site=site,
                         started_at=T0)


def heartbeat(seq: int = 1, interval_s: float = 30.0, *, uptime_s: float | None = None,
              sessions: int = 0, printer: str = "ok", reason: str = "") -> HeartbeatPayload:
    counters = Counters(sessions=sessions, completed_errands=0, receipts=0, ratings={})
    return HeartbeatPayload(
        seq=seq, interval_s=interval_s,
        uptime_s=uptime_s if uptime_s is not None else seq * interval_s,
        state="idle", version="1.0.0",
        devices={"printer": DeviceReport(state=printer, reason=reason)},
        system=SystemFigures(cpu_pct=3.0, mem_pct=40.0, disk_free_mb=900, temp_c=None),
        outbox=0, counters=counters)


def event(seq: int, kind: str = "paper_low", severity: str = "warning",
          **fields: Any) -> EventPayload:
    return EventPayload(seq=seq, type=kind, severity=severity, **fields)

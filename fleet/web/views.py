"""What the API answers and the pages show, made from the store's views; pure.

The JSON shapes are DESIGN 13's, key for key: scripts and acceptance checks read them. Times are
ISO 8601 UTC with a ``Z``, as in the MQTT contract.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.alerts import DEFAULT_RULES, Cause
from fleet.liveness import Liveness
from fleet.store import (
    AckRecord,
    AlertState,
    AlertView,
    CommandView,
    EventView,
    HelpRequestRecord,
    TerminalView,
)

# Printer reasons an operations team sends someone with paper for.
PAPER_REASONS = frozenset({"paper_near_end", "paper_out", "paper_low", "paper_low_estimated"})
PAPER_CAUSES = frozenset({Cause.PAPER_NEAR_END, Cause.PAPER_OUT})
ACTIVE_ALERT_STATES = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED})
# How far back the help page looks; a call stays open for the alert rules' window.
HELP_SHOWN_FOR = dt.timedelta(days=1)
HELP_OPEN_FOR = dt.timedelta(seconds=DEFAULT_RULES.help_holds_s)


def iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_json(alert: AlertView) -> dict[str, Any]:
    return {"id": alert.id, "tid": alert.tid, "site": alert.site, "cause": alert.cause,
            "severity": alert.severity, "state": str(alert.state),
            "opened_at": iso(alert.opened_at)}


def terminal_json(view: TerminalView, alerts: Sequence[AlertView]) -> dict[str, Any]:
    """One terminal for ``GET /api/terminals``; ``alerts``: its alerts not resolved."""
    return {
        "tid": view.tid, "site": view.site, "state": str(view.liveness), "version": view.version,
        "last_seen": iso(view.last_seen),
        "devices": {name: {"state": d.get("state", ""), "reason": d.get("reason", "")}
                    for name, d in sorted(view.devices.items())},
        "alerts": [alert_json(a) for a in alerts],
    }


def event_json(event: EventView) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "severity": event.severity,
            "ts": iso(event.ts), "received": iso(event.received), "fields": event.fields}


def ack_json(ack: AckRecord) -> dict[str, Any]:
    return {"tid": ack.tid, "status": ack.status, "error": ack.error, "result": ack.result,
            "ts": iso(ack.ts), "received": iso(ack.received)}


def command_json(command: CommandView, acks: Sequence[AckRecord]) -> dict[str, Any]:
    return {"request_id": command.request_id, "tid": command.tid, "name": command.name,
            "args": command.args, "sent_at": iso(command.sent_at),
            "expires_at": iso(command.expires_at), "acks": [ack_json(a) for a in acks]}


def alerts_by_terminal(alerts: Iterable[AlertView]) -> dict[str, list[AlertView]]:
    """Alerts not resolved, per terminal, oldest first."""
    found: dict[str, list[AlertView]] = {}
    for alert in sorted(alerts, key=lambda a: (a.opened_at, a.id)):
        if alert.state in ACTIVE_ALERT_STATES:
            found.setdefault(alert.tid, []).append(alert)
    return found


# --- help calls ------------------------------------------------------------------------------


class HelpState(enum.StrEnum):
    OPEN = "open"  # nobody has answered yet
    ACKNOWLEDGED = "acknowledged"  # an operator sent help_ack
    CANCELLED = "cancelled"  # the resident cancelled it at the terminal
    EXPIRED = "expired"  # unanswered for longer than the alert rules hold one


@dataclass(frozen=True)
class HelpCall:
    request: HelpRequestRecord
    state: HelpState


def help_calls(requests: Iterable[HelpRequestRecord], now: dt.datetime) -> list[HelpCall]:
    """The help calls of the day with their state; open ones first, oldest first (the one
    waiting longest is the one to answer next), the rest newest first."""
    calls = []
    for request in requests:
        if request.answer is not None:
            state = HelpState.ACKNOWLEDGED
        elif request.cancelled:
            state = HelpState.CANCELLED
        elif now - request.requested_at > HELP_OPEN_FOR:
            state = HelpState.EXPIRED
        else:
            state = HelpState.OPEN
        calls.append(HelpCall(request, state))
    waiting = sorted((c for c in calls if c.state is HelpState.OPEN),
                     key=lambda c: c.request.requested_at)
    done = sorted((c for c in calls if c.state is not HelpState.OPEN),
                  key=lambda c: c.request.requested_at, reverse=True)
    return [*waiting, *done]


def help_json(call: HelpCall) -> dict[str, Any]:
    request, answer = call.request, call.request.answer
    return {
        "help_id": request.help_id, "tid": request.tid, "site": request.site,
        "state": str(call.state), "screen": request.screen, "elder_mode": request.elder_mode,
        "requested_at": iso(request.requested_at),
        "acknowledged": None if answer is None else {
            "staff": answer.staff, "minutes": answer.minutes, "request_id": answer.request_id,
            "by": answer.acked_by, "at": iso(answer.acked_at)},
    }


# --- the overview ----------------------------------------------------------------------------


@dataclass
class SiteSummary:
    site: str
    terminals: int = 0
    online: int = 0
    stale: int = 0
    offline: int = 0
    open_alerts: int = 0  # not yet acknowledged
    acknowledged_alerts: int = 0
    critical_alerts: int = 0  # open or acknowledged
    paper_warnings: int = 0  # terminals whose printer is low on or out of paper
    help_open: int = 0

    @property
    def needs_attention(self) -> bool:
        return bool(self.offline or self.open_alerts or self.help_open or self.paper_warnings)


NO_SITE = "(no site yet)"


def site_summaries(terminals: Iterable[TerminalView], alerts: Iterable[AlertView],
                   calls: Iterable[HelpCall]) -> list[SiteSummary]:
    """One summary per site, by name; terminals that never said their site under NO_SITE."""
    sites: dict[str, SiteSummary] = {}
    site_of: dict[str, str] = {}
    for view in terminals:
        name = view.site or NO_SITE
        site_of[view.tid] = name
        summary = sites.setdefault(name, SiteSummary(name))
        summary.terminals += 1
        counts = {Liveness.ONLINE: "online", Liveness.STALE: "stale", Liveness.OFFLINE: "offline"}
        setattr(summary, counts[view.liveness], getattr(summary, counts[view.liveness]) + 1)
        if view.devices.get("printer", {}).get("reason", "") in PAPER_REASONS:
            summary.paper_warnings += 1
    for alert in alerts:
        summary = sites.get(site_of.get(alert.tid, alert.site or NO_SITE)) or sites.setdefault(
            alert.site or NO_SITE, SiteSummary(alert.site or NO_SITE))
        if alert.state is AlertState.OPEN:
            summary.open_alerts += 1
        elif alert.state is AlertState.ACKNOWLEDGED:
            summary.acknowledged_alerts += 1
        if alert.state in ACTIVE_ALERT_STATES and alert.severity == "critical":
            summary.critical_alerts += 1
    for call in calls:
        if call.state is HelpState.OPEN:
            name = site_of.get(call.request.tid, call.request.site or NO_SITE)
            sites.setdefault(name, SiteSummary(name)).help_open += 1
    return sorted(sites.values(), key=lambda s: (s.site == NO_SITE, s.site))


def liveness_counts(terminals: Iterable[TerminalView]) -> dict[str, int]:
    counted = Counter(str(v.liveness) for v in terminals)
    return {str(state): counted.get(str(state), 0) for state in Liveness}


def filter_terminals(terminals: Iterable[TerminalView], *, site: str | None,
                     state: str | None, search: str | None) -> list[TerminalView]:
    """The list page's filters: a site exactly, a liveness, and part of a terminal id (any case)."""
    needle = (search or "").strip().lower()
    return [v for v in terminals
            if (not site or (v.site or NO_SITE) == site)
            and (not state or str(v.liveness) == state)
            and (not needle or needle in v.tid.lower())]

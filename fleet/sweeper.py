"""The alert sweep: the rules over every terminal, once per fleet, under the store's lease.

Several monitor instances share one store; each tries to take the lease every few seconds and
only its holder sweeps, so an alert is opened once, not once per instance. If the holder dies,
its lease runs out and another instance takes over within ``LEASE_TTL_S``.
"""

from __future__ import annotations

import datetime as dt
import logging

from fleet.alerts import DEFAULT_RULES, AlertRules, conditions
from fleet.store import FleetStore, SweepResult

log = logging.getLogger(__name__)

LEASE = "alert-sweep"
SWEEP_EVERY_S = 5.0
LEASE_TTL_S = 15.0  # three missed sweeps: another instance takes over


def sweep(store: FleetStore, now: dt.datetime, rules: AlertRules = DEFAULT_RULES) -> SweepResult:
    """Open and resolve alerts from what every terminal last said and its recent events."""
    window = max(rules.errand_failures_window_s, rules.event_holds_s, rules.help_holds_s)
    facts = store.alert_facts(now, now - dt.timedelta(seconds=window))
    holding = [c for terminal, events in facts for c in conditions(terminal, events, now, rules)]
    result = store.sweep_alerts(holding, now)
    for alert in result.opened:
        log.warning("alert %d opened: %s at %s (%s)%s", alert.id, alert.cause, alert.tid,
                    alert.severity, f": {alert.detail}" if alert.detail else "")
    for alert in result.resolved:
        log.info("alert %d resolved: %s at %s", alert.id, alert.cause, alert.tid)
    return result


def sweep_if_holder(store: FleetStore, holder: str, now: dt.datetime,
                    rules: AlertRules = DEFAULT_RULES) -> SweepResult | None:
    """Sweep when this instance holds the lease (taking or renewing it); None otherwise."""
    if not store.take_lease(LEASE, holder, now, LEASE_TTL_S):
        return None
    return sweep(store, now, rules)

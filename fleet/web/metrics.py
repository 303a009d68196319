"""``GET /metrics``: the fleet in Prometheus' text format, read from the store at scrape time.

A registry of its own (never the process-wide default), with one collector that asks the store
on every scrape: nothing is cached in this process, so several dashboard instances report alike.
``kiosk_messages_total`` and ``kiosk_messages_rejected_total`` count what reached the store
(heartbeats and events counted once, acks kept, repeats refused by the store); refusals that
happen before the store (bad topic, not the contract, rate limit) are in the monitor's log only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from contracts.mqtt import DeviceHealth
from fleet.alerts import Cause
from fleet.liveness import Liveness
from fleet.store import AlertState, AlertView, TerminalView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTHS: tuple[str, ...] = get_args(DeviceHealth)


@dataclass(frozen=True)
class FleetFigures:
    """What one scrape reports, read from the store in one go."""

    terminals: list[TerminalView]
    alerts: list[AlertView]
    messages: dict[str, int]
    rejected: dict[str, int]


class FleetCollector:
    """Turns ``FleetFigures`` (from ``read`` at every scrape) into the metric families."""

    def __init__(self, read: Callable[[], FleetFigures]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        figures = self._read()
        by_state = Counter(str(v.liveness) for v in figures.terminals)
        terminals = GaugeMetricFamily("kiosk_terminals", "Terminals by liveness.",
                                      labels=["state"])
        for state in Liveness:
            terminals.add_metric([str(state)], by_state.get(str(state), 0))
        yield terminals
        up = GaugeMetricFamily("kiosk_terminal_up", "1 when the terminal is online, 0 otherwise.",
                               labels=["tid", "site"])
        seen = GaugeMetricFamily("kiosk_terminal_last_seen_timestamp_seconds",
                                 "When the terminal was last heard (its heartbeat or status).",
                                 labels=["tid"])
        health = GaugeMetricFamily("kiosk_device_health",
                                   "1 for each device's current health, 0 for the others.",
                                   labels=["tid", "device", "health"])
        for view in figures.terminals:
            up.add_metric([view.tid, view.site or ""], int(view.liveness is Liveness.ONLINE))
            if view.last_seen is not None:
                seen.add_metric([view.tid], view.last_seen.timestamp())
            for device, report in sorted(view.devices.items()):
                for value in HEALTHS:
                    health.add_metric([view.tid, device, value],
                                      int(report.get("state") == value))
        yield up
        yield seen
        yield health
        open_by_cause = Counter(a.cause for a in figures.alerts if a.state is AlertState.OPEN)
        alerts = GaugeMetricFamily("kiosk_alerts_open", "Alerts open (not yet acknowledged).",
                                   labels=["cause"])
        for cause in sorted({*map(str, Cause), *open_by_cause}):
            alerts.add_metric([cause], open_by_cause.get(cause, 0))
        yield alerts
        messages = CounterMetricFamily("kiosk_messages", "Messages the store took, by kind.",
                                       labels=["kind"])
        for kind, count in sorted(figures.messages.items()):
            messages.add_metric([kind], count)
        yield messages
        rejected = CounterMetricFamily("kiosk_messages_rejected",
                                       "Messages the store refused, by reason.",
                                       labels=["reason"])
        for reason, count in sorted(figures.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected


def fleet_registry(read: Callable[[], FleetFigures]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(read))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)

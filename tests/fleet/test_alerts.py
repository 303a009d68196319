"""Alert rules and the alert life cycle: one alert per terminal and cause while its condition
holds, acknowledged by an operator, resolved when the condition is gone; the sweep runs under a
lease, so two monitor instances open each alert once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fleet_support import at, event, heartbeat, status

from fleet.alerts import AlertRules, Cause, RecentEvent, Severity, TerminalFacts, conditions
from fleet.ingest import Event, Heartbeat, Status
from fleet.liveness import Liveness
from fleet.store import AlertState, FleetStore
from fleet.sweeper import LEASE, LEASE_TTL_S, sweep, sweep_if_holder


def facts(*, liveness: Liveness = Liveness.ONLINE, quiet_s: float = 0.0,
          devices: dict[str, dict[str, str]] | None = None, disk_free_mb: int | None = 900,
          temp_c: float | None = 45.0, outbox: int | None = 0) -> TerminalFacts:
    return TerminalFacts("kiosk-0001", liveness, at(1000 - quiet_s), devices or {},
                         {"disk_free_mb": disk_free_mb, "temp_c": temp_c}, outbox)


def causes(terminal: TerminalFacts, events: list[RecentEvent] | None = None) -> set[Cause]:
    return {c.cause for c in conditions(terminal, events or [], at(1000))}


def test_a_healthy_terminal_holds_nothing() -> None:
    assert causes(facts()) == set()


def test_offline_and_stale_only_after_their_thresholds() -> None:
    assert causes(facts(liveness=Liveness.OFFLINE, quiet_s=299)) == set()
    assert causes(facts(liveness=Liveness.OFFLINE, quiet_s=300)) == {Cause.OFFLINE}
    assert causes(facts(liveness=Liveness.STALE, quiet_s=400)) == {Cause.STALE}


def test_an_offline_terminal_s_old_device_states_raise_nothing_more() -> None:
    out = {"printer": {"state": "fault", "reason": "paper_out"}}
    assert causes(facts(liveness=Liveness.OFFLINE, quiet_s=600, devices=out)) == {Cause.OFFLINE}


@pytest.mark.parametrize(("printer", "cause", "severity"), [
    ({"state": "degraded", "reason": "paper_near_end"}, Cause.PAPER_NEAR_END, Severity.WARNING),
    ({"state": "degraded", "reason": "paper_low_estimated"}, Cause.PAPER_NEAR_END,
     Severity.WARNING),
    ({"state": "fault", "reason": "paper_out"}, Cause.PAPER_OUT, Severity.CRITICAL),
    ({"state": "fault", "reason": "cover_open"}, Cause.COVER_OPEN, Severity.CRITICAL),
    ({"state": "fault", "reason": "cutter_error"}, Cause.PRINTER_FAULT, Severity.CRITICAL),
])
def test_printer_states_each_have_their_alert(printer: dict[str, str], cause: Cause,
                                              severity: Severity) -> None:
    [condition] = conditions(facts(devices={"printer": printer}), [], at(1000))
    assert (condition.cause, condition.severity) == (cause, severity)


def test_reader_disk_temperature_and_backlog() -> None:
    terminal = facts(devices={"card_reader": {"state": "fault", "reason": "no_reader"}},
                     disk_free_mb=120, temp_c=81.0, outbox=250)
    assert causes(terminal) == {Cause.CARD_READER_FAULT, Cause.DISK_LOW,
                                Cause.TEMPERATURE_HIGH, Cause.OUTBOX_BACKLOG}


def test_repeated_errand_failures_within_the_hour() -> None:
    failed = [RecentEvent("errand_failed", at(1000 - 60 * n), {}) for n in range(3)]
    assert causes(facts(), failed[:2]) == set()
    assert causes(facts(), failed) == {Cause.ERRAND_FAILURES}
    old = [RecentEvent("errand_failed", at(1000 - 3700 - n), {}) for n in range(5)]
    assert causes(facts(), old) == set()


def test_a_help_call_holds_until_cancelled_or_it_has_waited_too_long() -> None:
    asked = RecentEvent("help_requested", at(900), {"help_id": "h1", "screen": "x"})
    assert causes(facts(), [asked]) == {Cause.HELP_REQUESTED}
    cancelled = RecentEvent("help_cancelled", at(950), {"help_id": "h1"})
    assert causes(facts(), [asked, cancelled]) == set()
    rules = AlertRules(help_holds_s=60)
    assert conditions(facts(), [asked], at(1000), rules) == []


def test_a_forgotten_card_or_an_opened_door_holds_for_a_while() -> None:
    left = RecentEvent("card_left_in_reader", at(1000 - 60), {})
    door = RecentEvent("door_opened", at(1000 - 60), {})
    assert causes(facts(), [left, door]) == {Cause.CARD_LEFT, Cause.DOOR_OPENED}
    long_ago = RecentEvent("door_opened", at(1000 - 3600), {})
    assert causes(facts(), [long_ago]) == set()
    # Staff at the maintenance menu open the door on purpose: the terminal says so.
    staff = RecentEvent("door_opened", at(1000 - 60), {"in_maintenance": True})
    assert causes(facts(), [staff]) == set()


# --- the life cycle in the store -----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> FleetStore:
    return FleetStore(tmp_path / "fleet.db")


def paper(store: FleetStore, seq: int, reason: str, when: dt.datetime) -> None:
    state = "ok" if not reason else "fault"
    store.apply([Heartbeat("kiosk-0001", heartbeat(seq, printer=state, reason=reason), when)])


def test_one_alert_while_the_condition_holds_then_resolved(store: FleetStore) -> None:
    store.apply([Status("kiosk-0001", status(True, 1, site="town-a"), at(0))])
    paper(store, 1, "paper_out", at(1))
    first = sweep(store, at(2))
    assert [(a.cause, a.site, a.state) for a in first.opened] == [
        ("paper_out", "town-a", AlertState.OPEN)]
    paper(store, 2, "paper_out", at(31))
    assert sweep(store, at(32)).opened == []  # still the same alert
    paper(store, 3, "", at(61))
    resolved = sweep(store, at(62)).resolved
    assert [(a.cause, a.state) for a in resolved] == [("paper_out", AlertState.RESOLVED)]
    paper(store, 4, "paper_out", at(91))
    assert len(sweep(store, at(92)).opened) == 1  # a new occurrence, a new alert
    assert [a.state for a in store.alerts()] == [AlertState.OPEN, AlertState.RESOLVED]


def test_an_acknowledged_alert_stays_acknowledged_until_resolved(store: FleetStore) -> None:
    paper(store, 1, "cover_open", at(1))
    [alert] = sweep(store, at(2)).opened
    acked = store.acknowledge_alert(alert.id, "operator-1", at(3))
    assert acked is not None and acked.state is AlertState.ACKNOWLEDGED
    assert acked.acked_by == "operator-1"
    paper(store, 2, "cover_open", at(31))
    sweep(store, at(32))
    assert [a.state for a in store.alerts()] == [AlertState.ACKNOWLEDGED]
    assert store.acknowledge_alert(9999, "operator-1", at(33)) is None


def test_help_requested_events_raise_a_help_alert(store: FleetStore) -> None:
    store.apply([Status("kiosk-0001", status(True, 1), at(9)),
                 Event("kiosk-0001", event(5, "help_requested", "warning", help_id="h-7",
                                            screen="home", elder_mode=True), at(10))])
    [alert] = sweep(store, at(11)).opened
    assert (alert.cause, alert.severity, alert.detail) == ("help_requested", "critical", "h-7")
    assert store.alerts(AlertState.OPEN) == [alert]


def test_only_the_lease_holder_sweeps_and_another_takes_over_when_it_dies(
        store: FleetStore) -> None:
    paper(store, 1, "paper_out", at(1))
    assert sweep_if_holder(store, "monitor-1", at(2)) is not None
    assert sweep_if_holder(store, "monitor-2", at(3)) is None  # monitor-1's lease runs
    assert store.take_lease(LEASE, "monitor-1", at(4), LEASE_TTL_S)  # renewed
    # monitor-1 dies: nothing renews its lease, and after it runs out monitor-2 sweeps.
    later = at(4 + LEASE_TTL_S + 1)
    assert sweep_if_holder(store, "monitor-2", later) is not None
    assert len(store.alerts()) == 1  # opened once, not once per instance

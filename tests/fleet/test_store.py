"""The fleet store: what each terminal last said, every heartbeat and event counted once, a late
Will ignored, the schema created and refused when newer than the code; each on SQLite and on
PostgreSQL (PostgreSQL's own cases, several instances at once, are in test_pg_store.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_support import at, event, heartbeat, status

from contracts.mqtt import AckPayload
from fleet.ingest import Ack, Event, Heartbeat, Status
from fleet.liveness import Liveness
from fleet.store import SCHEMA_VERSION, FleetStore, StoreError


@pytest.fixture
def store(store_target: Path | str) -> Iterator[FleetStore]:
    """On SQLite and on PostgreSQL alike (``store_target`` in conftest.py)."""
    opened = FleetStore(store_target)
    yield opened
    opened.close()


def test_a_birth_and_heartbeats_show_the_terminal_online_with_its_figures(
        store: FleetStore) -> None:
    store.apply([Status("kiosk-0001", status(True, 1, site="town-a"), at(0)),
                 Heartbeat("kiosk-0001", heartbeat(1, printer="degraded", reason="paper_low"),
                           at(1))])
    [view] = store.terminals(at(2))
    assert (view.tid, view.site, view.liveness, view.heartbeats) == (
        "kiosk-0001", "town-a", Liveness.ONLINE, 1)
    assert view.devices == {"printer": {"state": "degraded", "reason": "paper_low"}}
    assert view.last_seen == at(1)
    assert store.terminal("kiosk-0001", at(200)).liveness is Liveness.STALE  # type: ignore[union-attr]


def test_a_repeated_heartbeat_or_event_is_counted_once(store: FleetStore) -> None:
    beats = [Heartbeat("kiosk-0001", heartbeat(seq), at(seq)) for seq in (1, 2, 3)]
    events = [Event("kiosk-0001", event(7), at(4)), Event("kiosk-0001", event(8), at(5))]
    first = store.apply([*beats, *events])
    again = store.apply([beats[1], events[0]])  # QoS 1 redelivery, another instance's batch
    assert (first.heartbeats, first.events, first.duplicates) == (3, 2, 0)
    assert (again.heartbeats, again.events, again.duplicates) == (0, 0, 2)
    view = store.terminal("kiosk-0001", at(6))
    assert view is not None and (view.heartbeats, view.events) == (3, 2)
    assert [e.seq for e in store.events("kiosk-0001")] == [8, 7]


def test_heartbeats_out_of_order_across_batches_each_count(store: FleetStore) -> None:
    store.apply([Heartbeat("kiosk-0001", heartbeat(seq), at(seq)) for seq in (1, 4, 5)])
    late = store.apply([Heartbeat("kiosk-0001", heartbeat(seq), at(6)) for seq in (2, 3)])
    assert late.heartbeats == 2
    view = store.terminal("kiosk-0001", at(7))
    assert view is not None and view.heartbeats == 5


def test_a_new_boot_counts_its_heartbeats_from_zero_again(store: FleetStore) -> None:
    store.apply([Status("kiosk-0001", status(True, 1, boot="first"), at(0)),
                 *[Heartbeat("kiosk-0001", heartbeat(seq), at(seq)) for seq in range(1, 4)]])
    result = store.apply([Status("kiosk-0001", status(True, 2, boot="second"), at(10)),
                          Heartbeat("kiosk-0001", heartbeat(1), at(11))])
    assert result.heartbeats == 1


def test_a_restart_whose_birth_is_elsewhere_is_told_by_its_uptime(store: FleetStore) -> None:
    store.apply([Heartbeat("kiosk-0001", heartbeat(seq), at(seq)) for seq in range(1, 100)])
    # The same terminal after a restart: seq 1 again, uptime 30 s instead of ~3,000.
    result = store.apply([Heartbeat("kiosk-0001", heartbeat(1), at(200))])
    assert result.heartbeats == 1 and result.too_old == 0


def test_a_late_will_changes_neither_liveness_nor_version(store: FleetStore) -> None:
    store.apply([Status("kiosk-0001", status(True, 4, version="1.0.0"), at(0)),
                 Status("kiosk-0001", status(True, 5, version="1.1.0"), at(1)),
                 Status("kiosk-0001", status(False, 4, version="1.0.0"), at(2))])
    view = store.terminal("kiosk-0001", at(3))
    assert view is not None and (view.liveness, view.version) == (Liveness.ONLINE, "1.1.0")
    store.apply([Status("kiosk-0001", status(False, 5, version="1.1.0"), at(4))])
    assert store.terminal("kiosk-0001", at(5)).liveness is Liveness.OFFLINE  # type: ignore[union-attr]


def test_acks_are_kept_in_arrival_order(store: FleetStore) -> None:
    store.apply([Ack("kiosk-0001", "req-1", AckPayload(status="accepted"), at(0)),
                 Ack("kiosk-0001", "req-1", AckPayload(status="succeeded"), at(1))])
    assert store.acks("req-1") == [("kiosk-0001", "accepted", None),
                                   ("kiosk-0001", "succeeded", None)]


def test_activity_buckets_count_heartbeats_for_the_chart(store: FleetStore) -> None:
    store.apply([Heartbeat("kiosk-0001", heartbeat(seq, sessions=seq), at(seq * 30))
                 for seq in range(1, 21)])
    buckets = store.activity("kiosk-0001", at(0))
    assert sum(beats for _, beats, _ in buckets) == 20
    assert buckets[-1][2] == 20  # today's sessions so far, as the last heartbeat said


def test_prune_forgets_what_is_older_than_the_kept_days(store: FleetStore) -> None:
    store.apply([Event("kiosk-0001", event(1), at(0)), Event("kiosk-0001", event(2), at(100))])
    assert store.prune(at(50)) >= 1
    assert [e.seq for e in store.events("kiosk-0001")] == [2]


def test_a_failed_batch_leaves_nothing_half_written(store: FleetStore) -> None:
    class Broken(Heartbeat):
        pass

    good = Heartbeat("kiosk-0001", heartbeat(1), at(0))
    with pytest.raises(AttributeError):
        store.apply([good, Broken("kiosk-0001", None, at(1))])  # type: ignore[arg-type]
    assert store.terminals(at(2)) == []
    store.apply([good])  # the same connection goes on (PostgreSQL: its staging table made again)
    assert [v.heartbeats for v in store.terminals(at(2))] == [1]


def test_the_schema_is_made_once_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    FleetStore(tmp_path / "fleet.db").close()
    FleetStore(tmp_path / "fleet.db").close()  # opening again migrates nothing
    db = sqlite3.connect(tmp_path / "fleet.db")
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="upgrade the fleet tools"):
        FleetStore(tmp_path / "fleet.db")

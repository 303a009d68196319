"""PostgreSQL as several monitor instances share it: two connections applying overlapping
batches of the same terminals at once count every heartbeat and event exactly once; instances
starting together migrate once; the alert lease has one holder across connections; a server
that goes away and comes back costs nothing but time (the store reconnects, the monitor holds
its batch and retries)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from fleet_support import at, event, heartbeat, status
from test_monitor import WAIT_S, publish, start_monitor, terminal_client

from contracts.mqtt import encode, event_topic, heartbeat_topic, utc_now
from fleet.db_cluster import ThrowawayCluster, binaries
from fleet.ingest import Event, Heartbeat, Seen, Status
from fleet.store import SCHEMA_VERSION, FleetStore, StoreError
from fleet.sweeper import LEASE, LEASE_TTL_S
from simulator.broker import Mosquitto

pytestmark = pytest.mark.postgres

TERMINALS = 40
BEATS = 120  # per terminal
EVENTS = 30  # per terminal


def fleet_messages(seed: int) -> tuple[list[Seen], int]:
    """Every terminal's birth, heartbeats and events in time order, as a broker would deal them
    out, with some QoS 1 redeliveries mixed in; (messages, redeliveries)."""
    rng = random.Random(seed)
    tids = [f"kiosk-{n:04d}" for n in range(TERMINALS)]
    messages: list[Seen] = [Status(tid, status(True, 1, site=f"site-{n % 3}"), at(0))
                            for n, tid in enumerate(tids)]
    for seq in range(1, BEATS + 1):
        for tid in tids:
            messages.append(Heartbeat(tid, heartbeat(seq, sessions=seq), at(seq)))
            if seq <= EVENTS:
                messages.append(Event(tid, event(seq), at(seq)))
    repeats = 0
    for index in sorted(rng.sample(range(len(messages)), 200), reverse=True):
        if isinstance(messages[index], Heartbeat | Event):
            messages.insert(min(index + rng.randint(1, 20), len(messages)), messages[index])
            repeats += 1
    return messages, repeats


def test_two_instances_at_once_count_every_heartbeat_and_event_once(pg_url: str) -> None:
    messages, repeats = fleet_messages(seed=3)
    streams = [messages[0::2], messages[1::2]]  # round-robin, as $share deals them
    batch = 50  # ~30 terminals each, mostly the same in both: they want the same rows
    rounds = max(len(s) for s in streams) // batch + 1
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    totals = [[0, 0, 0], [0, 0, 0]]

    def instance(n: int) -> None:
        store = FleetStore(pg_url)
        try:
            for r in range(rounds):
                barrier.wait(WAIT_S)  # in step: neither runs a window (64 seqs) ahead
                part = streams[n][r * batch:(r + 1) * batch]
                if part:
                    result = store.apply(part)
                    totals[n][0] += result.heartbeats
                    totals[n][1] += result.events
                    totals[n][2] += result.duplicates
        except BaseException as e:
            errors.append(e)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=instance, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors  # a deadlock would be PostgreSQL's error here
    assert sum(t[0] for t in totals) == TERMINALS * BEATS
    assert sum(t[1] for t in totals) == TERMINALS * EVENTS
    assert sum(t[2] for t in totals) == repeats
    assert all(t[0] > 0 for t in totals)  # both instances did take a share
    reader = FleetStore(pg_url)
    views = reader.terminals(at(BEATS + 1))
    assert {(v.heartbeats, v.events) for v in views} == {(BEATS, EVENTS)}
    assert len(views) == TERMINALS and {v.site for v in views} == {"site-0", "site-1", "site-2"}
    for tid in ("kiosk-0000", "kiosk-0039"):
        buckets = reader.activity(tid, at(0))
        assert sum(beats for _, beats, _ in buckets) == BEATS
        assert buckets[-1][2] == BEATS  # the sessions of the newest heartbeat: no update lost
        assert [e.seq for e in reader.events(tid, limit=EVENTS + 5)] == list(
            range(EVENTS, 0, -1))
    reader.close()


def test_instances_starting_together_migrate_once(pg_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(WAIT_S)
            FleetStore(pg_url).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    FleetStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="upgrade the fleet tools"):
        FleetStore(pg_url)


def test_the_lease_has_one_holder_across_connections(pg_url: str) -> None:
    one, two = FleetStore(pg_url), FleetStore(pg_url)
    assert one.take_lease(LEASE, "monitor-1", at(0), LEASE_TTL_S)
    assert not two.take_lease(LEASE, "monitor-2", at(1), LEASE_TTL_S)
    assert one.take_lease(LEASE, "monitor-1", at(5), LEASE_TTL_S)  # renewed to 20
    assert not two.take_lease(LEASE, "monitor-2", at(19), LEASE_TTL_S)
    assert two.take_lease(LEASE, "monitor-2", at(21), LEASE_TTL_S)  # monitor-1 went quiet
    assert not one.take_lease(LEASE, "monitor-1", at(22), LEASE_TTL_S)
    one.close()
    two.close()
    # Eight instances asking at the same moment for a lease run out: exactly one gets it.
    stores = [FleetStore(pg_url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    taken: list[bool] = []

    def ask(n: int) -> None:
        barrier.wait(WAIT_S)
        taken.append(stores[n].take_lease(LEASE, f"monitor-{n + 3}", at(100), LEASE_TTL_S))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken) == [False] * 7 + [True]
    for store in stores:
        store.close()


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[ThrowawayCluster]:
    """A server of its own, to stop and start again without disturbing the other tests."""
    if binaries() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    cluster = ThrowawayCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_the_store_reconnects_after_the_server_went_away(own_cluster: ThrowawayCluster) -> None:
    url = own_cluster.create_database("reconnect")
    store = FleetStore(url)
    store.apply([Heartbeat("kiosk-0001", heartbeat(1), at(1))])
    own_cluster.stop_server("fast")  # the server goes down: the connection drops
    try:
        with pytest.raises(psycopg.OperationalError):
            store.apply([Heartbeat("kiosk-0001", heartbeat(2), at(2))])
        with pytest.raises(psycopg.OperationalError):
            store.terminal("kiosk-0001", at(3))
    finally:
        own_cluster.start_server()
    store.apply([Heartbeat("kiosk-0001", heartbeat(2), at(2))])  # the same batch, again
    view = store.terminal("kiosk-0001", at(3))
    assert view is not None and view.heartbeats == 2
    store.close()


def test_the_monitor_holds_its_batch_while_postgresql_is_away(
        own_cluster: ThrowawayCluster) -> None:
    url = own_cluster.create_database("outage")
    with Mosquitto() as broker:
        monitor = start_monitor(broker, url, retry_s=0.1)  # type: ignore[arg-type]
        reader = FleetStore(url)
        terminal = terminal_client(broker, "kiosk-0007")
        try:
            for seq in range(1, 6):
                publish(terminal, event_topic("kiosk-0007"), encode(event(seq)))
                publish(terminal, heartbeat_topic("kiosk-0007"), encode(heartbeat(seq)), qos=0)
            assert monitor.wait_idle(WAIT_S)
            own_cluster.stop_server("fast")
            try:
                for seq in range(6, 16):
                    publish(terminal, event_topic("kiosk-0007"), encode(event(seq)))
                    publish(terminal, heartbeat_topic("kiosk-0007"), encode(heartbeat(seq)),
                            qos=0)
                deadline = time.monotonic() + WAIT_S
                while monitor.counts.write_failures < 2:
                    assert time.monotonic() < deadline, "the monitor never tried to write"
                    time.sleep(0.05)
            finally:
                own_cluster.start_server()
            deadline = time.monotonic() + WAIT_S
            while True:
                view = reader.terminal("kiosk-0007", utc_now())
                if view is not None and (view.heartbeats, view.events) == (15, 15):
                    break
                assert time.monotonic() < deadline, f"stored {view}"
                time.sleep(0.05)
            assert reader.message_totals()[1] == {"duplicate": 0}
        finally:
            terminal.disconnect()
            monitor.stop()
            reader.close()

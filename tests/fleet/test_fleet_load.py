"""The virtual fleet (`kiosk-sim fleet`) against the monitor on a real mosquitto: every heartbeat
and event it sends is stored exactly once, births and goodbyes and cut cables show as they should,
and a virtual terminal answers commands as a real one does."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from contracts.mqtt import utc_now
from fleet.commands import CommandSender, build_commands
from fleet.liveness import Liveness
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import FleetStore
from simulator.broker import Mosquitto
from simulator.fleet_load import FleetLoad, LoadOptions, parse_faults

WAIT_S = 15.0


@pytest.fixture
def broker() -> Mosquitto:
    with Mosquitto() as b:
        yield b


def start_monitor(broker: Mosquitto, path: Path, client_id: str = "monitor-1") -> Monitor:
    monitor = Monitor(MonitorSettings(host=broker.host, port=broker.port, client_id=client_id,
                                      batch_wait_s=0.05, rate_per_s=50, burst=200),
                      FleetStore(path))
    monitor.start()
    assert monitor.wait_connected(WAIT_S)
    return monitor


def stored_totals(store: FleetStore) -> tuple[int, int]:
    views = store.terminals(utc_now())
    return sum(v.heartbeats for v in views), sum(v.events for v in views)


def test_every_heartbeat_and_event_of_a_faulty_fleet_is_stored_once(broker: Mosquitto,
                                                                    tmp_path: Path) -> None:
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    store = FleetStore(tmp_path / "fleet.db")
    load = FleetLoad(LoadOptions(
        terminals=40, port=broker.port, interval_s=0.5, seed=7, paper_back_s=(0.5, 1.0),
        offline_for_s=(0.5, 1.5),
        faults=parse_faults("paper_out=2000,errand_failed=2000,help=1000,abrupt=300,"
                            "restart=300")))
    try:
        sent = asyncio.run(load.run(duration_s=6.0))
        assert sent.heartbeat_total > 300 and sent.event_total > 20
        assert sent.wills_armed > 0 and sent.births > 40  # cut cables and restarts came back
        deadline = time.monotonic() + WAIT_S
        while stored_totals(store) != (sent.heartbeat_total, sent.event_total):
            assert time.monotonic() < deadline, (
                f"stored {stored_totals(store)}, sent "
                f"{(sent.heartbeat_total, sent.event_total)}")
            time.sleep(0.1)
        per_terminal = {v.tid: (v.heartbeats, v.events) for v in store.terminals(utc_now())}
        assert per_terminal == {t.tid: (sent.heartbeats[t.tid], sent.events[t.tid])
                                for t in load.terminals}
        # After the run every terminal said goodbye itself: offline, none stale or online.
        assert {v.liveness for v in store.terminals(utc_now())} == {Liveness.OFFLINE}
        _, rejected = monitor.counts.snapshot()
        assert rejected == {}, rejected
    finally:
        monitor.stop()


def test_a_cut_cable_shows_offline_through_the_will(broker: Mosquitto, tmp_path: Path) -> None:
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    store = FleetStore(tmp_path / "fleet.db")
    load = FleetLoad(LoadOptions(terminals=3, port=broker.port, interval_s=0.5, seed=1))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(load.run(),), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while len([v for v in store.terminals(utc_now())
                   if v.liveness is Liveness.ONLINE]) < 3:
            assert time.monotonic() < deadline, "the fleet did not come online"
            time.sleep(0.05)
        victim = load.terminals[0]
        loop.call_soon_threadsafe(victim.cut)
        while store.terminal(victim.tid, utc_now()).liveness is not Liveness.OFFLINE:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the Will did not mark it offline"
            time.sleep(0.05)
        others = [store.terminal(t.tid, utc_now()) for t in load.terminals[1:]]
        assert all(v is not None and v.liveness is Liveness.ONLINE for v in others)
    finally:
        loop.call_soon_threadsafe(load.stop)
        runner.join(WAIT_S)
        monitor.stop()


def test_a_silent_terminal_shows_offline_once_the_broker_s_keepalive_check_gives_up(
        broker: Mosquitto, tmp_path: Path) -> None:
    # Power lost: no FIN, so only the broker's keepalive check sends the Will. mosquitto 2.0 gives
    # up between 1.5 x keepalive and 6 s later than that (bench.fleet.keepalive_window): at a 2 s
    # keepalive, 3-9 s after the last packet (a heartbeat, at most 0.5 s before the silence).
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    store = FleetStore(tmp_path / "fleet.db")
    load = FleetLoad(LoadOptions(terminals=3, port=broker.port, interval_s=0.5, seed=2,
                                 keepalive_s=2))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(load.run(),), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while len([v for v in store.terminals(utc_now())
                   if v.liveness is Liveness.ONLINE]) < 3:
            assert time.monotonic() < deadline, "the fleet did not come online"
            time.sleep(0.05)
        victim = load.terminals[0]
        assert load._sockets is not None
        loop.call_soon_threadsafe(victim.fall_silent, load._sockets)
        silent_at = time.monotonic()
        while store.terminal(victim.tid, utc_now()).liveness is not Liveness.OFFLINE:  # type: ignore[union-attr]
            assert time.monotonic() - silent_at < 9.0 + 1.0, "no Will within the window"
            time.sleep(0.05)
        took = time.monotonic() - silent_at
        assert took >= 3.0 - 0.5, f"offline after {took:.1f} s: sooner than the keepalive allows"
        others = [store.terminal(t.tid, utc_now()) for t in load.terminals[1:]]
        assert all(v is not None and v.liveness is Liveness.ONLINE for v in others)
        assert load.sent.silences == 1
    finally:
        loop.call_soon_threadsafe(load.stop)
        runner.join(WAIT_S)
        monitor.stop()


def test_a_virtual_terminal_answers_commands(broker: Mosquitto) -> None:
    load = FleetLoad(LoadOptions(terminals=2, port=broker.port, interval_s=1.0, seed=3))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(load.run(),), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not all(t.online for t in load.terminals):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        commands = [*build_commands([load.terminals[0].tid], "ping"),
                    *build_commands([load.terminals[1].tid], "set_heartbeat_interval",
                                    {"interval_s": 1})]
        with CommandSender(broker.host, broker.port) as sender:
            sender.send(commands)
            assert sender.log.wait_final([c.request_id for c in commands], WAIT_S)
        ping, interval = (sender.log.acks[c.request_id] for c in commands)
        assert [a.status for a in ping] == ["accepted", "succeeded"]
        assert ping[-1].result == {"pong": True}
        assert [a.status for a in interval] == ["rejected"]  # 1 s is below the terminals' 5
    finally:
        loop.call_soon_threadsafe(load.stop)
        runner.join(WAIT_S)


def test_unknown_faults_are_refused() -> None:
    with pytest.raises(Exception, match="unknown fault"):
        parse_faults("meteor=1")
    assert parse_faults("paper_out=2, help") == {"paper_out": 2.0, "help": 1.0}

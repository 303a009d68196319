"""Three ``kiosk-fleet monitor`` processes on one PostgreSQL database and one shared
subscription, a virtual fleet of 200 terminals on mosquitto set up as in production (outgoing QoS
upgraded to the subscription's), one monitor killed (SIGKILL) half way and started again with the
same client id, as systemd would: every event and every heartbeat stored exactly once (none lost
with the killed instance: the broker held them for its session), every terminal online while it
runs and offline after its goodbye; the short version of ``python -m bench.fleet --db
postgresql``'s scale run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.mqtt import utc_now
from fleet.liveness import Liveness
from fleet.store import FleetStore
from simulator.broker import Mosquitto
from simulator.fleet_load import FleetLoad, LoadOptions

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

REPO = Path(__file__).resolve().parents[2]
TERMINALS = 200
RUN_S = 14.0
INTERVAL_S = 1.0  # 200 heartbeats a second: a 30 s fleet of 6,000, compressed


class MonitorProcesses:
    def __init__(self, broker: Mosquitto, url: str, logs: Path) -> None:
        self.broker, self.url, self.logs = broker, url, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, client_id: str) -> None:
        log_path = self.logs / f"{client_id}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "fleet", "monitor", "--broker",
                 f"127.0.0.1:{self.broker.port}", "--db", self.url, "--client-id", client_id,
                 "--group", "pgtest"],
                stdout=log, stderr=log, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        self.running[client_id] = process
        deadline = time.monotonic() + 20.0
        while b"connected to the broker" not in log_path.read_bytes():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"{client_id} did not connect"
            time.sleep(0.05)
        time.sleep(0.3)  # its SUBSCRIBE follows the CONNACK

    def kill(self, client_id: str) -> None:
        self.running[client_id].send_signal(signal.SIGKILL)
        self.running[client_id].wait(10)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def three(pg_url: str, tmp_path: Path) -> Iterator[tuple[Mosquitto, MonitorProcesses]]:
    FleetStore(pg_url).close()  # the schema first, so the three start on it
    with Mosquitto(max_queued_messages=0, upgrade_outgoing_qos=True) as broker:
        group = MonitorProcesses(broker, pg_url, tmp_path)
        try:
            for n in (1, 2, 3):
                group.start(f"pg-monitor-{n}")
            yield broker, group
        finally:
            group.stop_all()


def test_three_instances_one_killed_and_restarted_store_every_message_once(
        three: tuple[Mosquitto, MonitorProcesses], pg_url: str) -> None:
    broker, group = three
    load = FleetLoad(LoadOptions(terminals=TERMINALS, port=broker.port, interval_s=INTERVAL_S,
                                 seed=5, faults={"errand_failed": 600.0, "help": 300.0}))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(load.run(RUN_S),),
                              daemon=True)
    runner.start()
    reader = FleetStore(pg_url)
    try:
        time.sleep(RUN_S / 2)
        group.kill("pg-monitor-1")
        time.sleep(1.0)
        group.start("pg-monitor-1")  # same client id: its session, and the events held for it
        time.sleep(2.0)
        views = reader.terminals(utc_now())
        assert len(views) == TERMINALS
        assert {v.liveness for v in views} == {Liveness.ONLINE}, "a terminal mis-marked"
        runner.join(RUN_S + 30)
        sent = load.sent
        assert sent.event_total > 100 and sent.heartbeat_total > 2000

        def totals() -> tuple[int, int]:
            beats, events = 0, 0
            for view in reader.terminals(utc_now()):
                beats, events = beats + view.heartbeats, events + view.events
            return beats, events

        deadline = time.monotonic() + 20
        while totals() != (sent.heartbeat_total, sent.event_total) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        views = reader.terminals(utc_now())
        # Each event and each heartbeat exactly once, per terminal: those the killed instance
        # held unstored and those the broker dealt to its session while it was away waited for
        # it at the broker (QoS 1 on their way to the monitor), none was lost.
        assert {v.tid: v.events for v in views} == {t.tid: sent.events[t.tid]
                                                   for t in load.terminals}
        assert {v.tid: v.heartbeats for v in views} == {t.tid: sent.heartbeats[t.tid]
                                                       for t in load.terminals}, \
            ("heartbeats lost or counted twice", sent.heartbeat_total - totals()[0])
        deadline = time.monotonic() + 10
        while {v.liveness for v in reader.terminals(utc_now())} != {Liveness.OFFLINE}:
            assert time.monotonic() < deadline, "every terminal said goodbye: all offline"
            time.sleep(0.2)
    finally:
        if runner.is_alive():
            loop.call_soon_threadsafe(load.stop)
            runner.join(10)
        reader.close()

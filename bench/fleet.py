"""Fleet side: how fast the monitor takes messages in, against a raw subscriber in the same run,
with 1 and 3 instances; a large virtual fleet counted exactly; how soon a dead terminal shows.

    .venv/bin/python -m bench.fleet [--db sqlite|postgresql] [--terminals 2000] [--per 10]
                                    [--fleet 10000] [--fleet-s 90] [--keepalive 5]

``--db postgresql`` runs ingest and scale on PostgreSQL: a throwaway cluster the bench starts
itself (``initdb`` in a temporary directory, fsync on, a Unix socket), a database per run.

1. Ingest. ``terminals x per`` heartbeats (pre-encoded, contract v1) are published as fast as one
   client can on a fresh mosquitto, and timed until the last one is in: for a raw paho subscriber
   that only counts them (the baseline), for one ``kiosk-fleet monitor`` process (stored and
   committed, read back from its store), and for three on the same shared subscription and
   store. The broker upgrades outgoing QoS as production's does: the monitors take the
   heartbeats at QoS 1 and acknowledge each after its commit, the raw subscriber (a QoS 0
   subscription) at QoS 0. Goal: one monitor at least 0.6 times the raw subscriber's rate.
   Medians of ``--repeat``.
2. Scale. ``--fleet`` virtual terminals (``kiosk-sim fleet``, one process) at a 30 s interval for
   ``--fleet-s`` seconds against 1 monitor, then against 3 of which one is killed (SIGKILL) half way
   and started again 3 s later (as systemd would), on a broker that upgrades outgoing QoS as
   production's does (deploy/mosquitto/kiosk.conf): every event and every heartbeat must be
   stored exactly once (the heartbeats the killed instance held unstored, and those mosquitto
   dealt to its session while it was away, wait for it at the broker), and no terminal
   mis-marked: once every birth is stored, all stay online until their goodbye, bar any the
   broker dropped (a reconnect: a second birth), and all are offline after it.
3. Detection. A terminal whose connection is cut (TCP FIN): from then until the store says
   offline. Six that fall silent one second apart (no FIN, power lost): from the last packet the
   broker had from each until the store says offline, against mosquitto 2.0's window (its
   keepalive sweep runs every 6 s: ``keepalive_window``). Heartbeat staleness is 3 x interval by
   rule (read time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.harness import REPO
from contracts.mqtt import (
    Counters,
    DeviceReport,
    HeartbeatPayload,
    StatusPayload,
    SystemFigures,
    encode,
    heartbeat_topic,
    status_topic,
    utc_now,
)
from fleet.db import connect
from fleet.db_cluster import ThrowawayCluster, throwaway_cluster
from fleet.liveness import Liveness
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import FleetStore
from simulator.broker import Mosquitto
from simulator.fleet_load import FleetLoad, LoadOptions, raise_open_file_limit

RATIO_GOAL = 0.6
INGEST_TIMEOUT_S = 300.0


@dataclass
class Monitors:
    """``kiosk-fleet monitor`` processes sharing one store and one subscription group."""

    broker: Mosquitto
    db: Path | str
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]
    group: str = "fleet"

    def start(self, client_id: str) -> None:
        log = (self.logs / f"{client_id}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "fleet", "monitor", "--broker",
             f"127.0.0.1:{self.broker.port}", "--db", str(self.db), "--client-id", client_id,
             # A group per run: the sessions of an earlier run's stopped monitors live on in the
             # broker (an hour's expiry), and a shared subscription deals messages to them too.
             "--group", self.group],
            stdout=log, stderr=log, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        self.processes[client_id] = process
        deadline = time.monotonic() + 20.0
        while b"connected to the broker" not in (self.logs / f"{client_id}.log").read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"monitor {client_id} did not start; see {log.name}")
            time.sleep(0.05)
        time.sleep(0.3)  # its SUBSCRIBE follows the CONNACK

    def kill(self, client_id: str) -> None:
        self.processes[client_id].send_signal(signal.SIGKILL)
        self.processes[client_id].wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            if process.poll() is None:
                process.kill()
        self.processes.clear()


@dataclass
class Backend:
    """Where each run's store goes: a SQLite file in the work directory, or a new database in
    the bench's own PostgreSQL cluster."""

    workdir: Path
    cluster: ThrowawayCluster | None = None

    @property
    def name(self) -> str:
        return "sqlite" if self.cluster is None else "postgresql"

    def store(self, name: str) -> Path | str:
        if self.cluster is None:
            return self.workdir / f"{name}.db"
        return self.cluster.create_database(name)


@contextlib.contextmanager
def monitors(broker: Mosquitto, backend: Backend, name: str, count: int) -> Iterator[Monitors]:
    group = Monitors(broker, backend.store(name), backend.workdir, {}, group=name)
    try:
        for n in range(1, count + 1):
            group.start(f"{name}-{n}")
        yield group
    finally:
        group.stop_all()


def query(db: Path | str, sql: str) -> tuple[int, ...]:
    """One row of integers from the store, on a connection of its own (as the dashboard's)."""
    conn = connect(db)
    try:
        return tuple(int(v) for v in conn.execute(sql).fetchone())
    finally:
        conn.close()


def stored(db: Path | str) -> tuple[int, int]:
    """(heartbeats, events) the store holds, read as the dashboard would, cheaply."""
    beats, events = query(db, "SELECT COALESCE(SUM(heartbeats), 0), COALESCE(SUM(events), 0)"
                              " FROM terminals")
    return beats, events


def heartbeats(terminals: int, per: int, prefix: str) -> list[tuple[str, bytes]]:
    devices = {"printer": DeviceReport(state="ok"), "card_reader": DeviceReport(state="ok")}
    system = SystemFigures(cpu_pct=5.0, mem_pct=40.0, disk_free_mb=5000, temp_c=45.0)
    return [(heartbeat_topic(f"{prefix}-{t:05d}"), encode(HeartbeatPayload(
        seq=seq, interval_s=30.0, uptime_s=30.0 * seq, state="idle", version="1.0.0",
        devices=devices, system=system, outbox=0, counters=Counters.zero())))
        for seq in range(1, per + 1) for t in range(terminals)]


def blast(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> float:
    """Publish ``messages`` at QoS 0 as fast as one client can; the monotonic start time."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    started = time.monotonic()
    for topic, payload in messages:
        client.publish(topic, payload, qos=0)
    deadline = time.monotonic() + 60
    while client.want_write() and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    return started


def raw_rate(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> float:
    """Messages a second a paho subscriber that only counts them takes in."""
    got = 0
    done = threading.Event()

    def count(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got
        got += 1
        if got == len(messages):
            done.set()

    subscribed = threading.Event()
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = count
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe("$share/raw/kiosk/v1/+/heartbeat", qos=0)
    subscribed.wait(10)
    started = blast(broker, messages)
    done.wait(INGEST_TIMEOUT_S)
    took = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return got / took


def monitor_rate(broker: Mosquitto, backend: Backend, name: str, instances: int,
                 messages: list[tuple[str, bytes]]) -> float:
    with monitors(broker, backend, name, instances) as group:
        started = blast(broker, messages)
        deadline = started + INGEST_TIMEOUT_S
        while stored(group.db)[0] < len(messages) and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - started
        return stored(group.db)[0] / took


def ingest(backend: Backend, terminals: int, per: int, repeat: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {"raw": [], "monitor x1": [], "monitor x3": []}
    # No cap: the figure is speed, not drops. QoS upgraded as in production (deploy/mosquitto):
    # the monitor takes heartbeats at QoS 1 and acknowledges them after its commit; the raw
    # subscriber's subscription is QoS 0, so it gets them at QoS 0 and acknowledges nothing.
    with Mosquitto(max_queued_messages=0, upgrade_outgoing_qos=True) as broker:
        for run in range(repeat):
            messages = heartbeats(terminals, per, f"I{run}")
            rates["raw"].append(raw_rate(broker, messages))
            rates["monitor x1"].append(monitor_rate(broker, backend, f"one{run}", 1, messages))
            rates["monitor x3"].append(monitor_rate(broker, backend, f"three{run}", 3, messages))
    return {name: statistics.median(values) for name, values in rates.items()}


def scale(backend: Backend, terminals: int, seconds: float, instances: int,
          kill_one: bool) -> dict[str, object]:
    name = f"fleet{instances}"
    with Mosquitto(max_queued_messages=0, upgrade_outgoing_qos=True) as broker, \
            monitors(broker, backend, name, instances) as group:
        load = FleetLoad(LoadOptions(terminals=terminals, port=broker.port, interval_s=30.0,
                                     seed=11, faults={"errand_failed": 6.0, "help": 2.0}))
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_until_complete,
                                  args=(load.run(duration_s=seconds),), daemon=True)
        runner.start()
        online_low = terminals
        victim = f"{name}-1"
        killed_at = None
        started = time.monotonic()
        up_at: float | None = None  # the fleet connected (its run's duration counts from here)
        all_online_at: float | None = None  # every birth stored: from here none may drop
        while runner.is_alive():
            time.sleep(1.0)
            if load.up.is_set():
                up_at = up_at or time.monotonic()
                # Online as the rule reads it: a birth and no offline status since.
                (online,) = query(group.db, "SELECT COUNT(*) FROM terminals WHERE online = 1")
                if all_online_at is None and online == terminals:
                    all_online_at = time.monotonic()
                elif all_online_at is not None and time.monotonic() - up_at < seconds - 2:
                    online_low = min(online_low, int(online))  # before the goodbyes
            if kill_one and killed_at is None and up_at is not None \
                    and time.monotonic() - up_at > seconds / 2:
                group.kill(victim)
                killed_at = time.monotonic()
                time.sleep(3.0)
                group.start(victim)  # as systemd restarts it: same client id, same session
        runner.join()
        sent = load.sent
        deadline = time.monotonic() + 60
        while stored(group.db) != (sent.heartbeat_total, sent.event_total) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        beats, events = stored(group.db)
        # After the run every terminal said goodbye (a retained offline status), taken by every
        # instance: all offline, and as many rows as terminals.
        deadline = time.monotonic() + 30
        while (states := query(group.db, "SELECT COUNT(*), COALESCE(SUM(online), 0)"
                                         " FROM terminals"))[1] > 0 \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        (repeats,) = query(group.db, "SELECT COALESCE(SUM(duplicates), 0) FROM terminals")
    return {"terminals": terminals, "instances": instances, "killed": kill_one,
            "s until every birth stored": None if all_online_at is None
            else round(all_online_at - started, 1),
            "heartbeats sent": sent.heartbeat_total, "heartbeats stored": beats,
            "events sent": sent.event_total, "events stored": events,
            "repeats refused": repeats,
            "lowest online after that": online_low if all_online_at is not None else 0,
            # A connection the broker dropped (the one-process fleet too busy to ping in time)
            # comes back with a new birth: such a terminal was offline for real for a while.
            "reconnects": sent.births - terminals,
            "rows": states[0], "online after goodbye": states[1]}


def keepalive_window(keepalive_s: int) -> tuple[int, int]:
    """(earliest, latest) seconds after a terminal's last packet at which mosquitto 2.0 gives up
    on it and publishes its Will.

    mosquitto 2.0 (src/keepalive.c, every 2.0.x release) counts whole seconds and looks at its
    clients' keepalives only every 6 s (``last_keepalive_check + 5 < now``); it drops a client once
    more than ``keepalive * 3 / 2`` whole seconds (integer division) passed since its last packet.
    So the drop comes between ``keepalive*3//2`` and ``keepalive*3//2 + 6`` s after that packet.
    (Its development branch, 2.1, checks every second.)
    """
    return keepalive_s * 3 // 2, keepalive_s * 3 // 2 + 6


def detection(keepalive_s: int, silent: int = 6) -> dict[str, object]:
    """Seconds from a cut (FIN) until the store says offline, and for ``silent`` terminals that
    fall silent (no FIN: power lost) from the last packet the broker had from each until then.

    The silent ones go quiet one second apart, so that they meet mosquitto's 6 s keepalive sweep
    at different points of it. The monitor runs with its production settings (its batch wait
    included).
    """
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
        db = Path(tmp) / "detect.db"
        monitor = Monitor(MonitorSettings(host=broker.host, port=broker.port,
                                          sweep_every_s=3600), FleetStore(db))
        monitor.start()
        monitor.wait_connected(10)
        reader = FleetStore(db)

        def connect(tid: str) -> paho.Client:
            client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=tid,
                                 protocol=MQTTProtocolVersion.MQTTv5)
            offline = StatusPayload(online=False, bdseq=1, boot_id="b", version="1",
                                    site="bench", started_at=utc_now())
            client.will_set(status_topic(tid), encode(offline), qos=1, retain=True)
            client.connect(broker.host, broker.port, keepalive=keepalive_s)
            client.loop_start()
            client.publish(status_topic(tid), encode(offline.model_copy(update={"online": True})),
                           qos=1, retain=True).wait_for_publish(5)
            return client

        def liveness(tid: str) -> Liveness | None:
            view = reader.terminal(tid, utc_now())
            return None if view is None else view.liveness

        # The cut: offline as soon as the broker sees the FIN.
        client = connect("D-cut")
        while liveness("D-cut") is not Liveness.ONLINE:
            time.sleep(0.01)
        client.loop_stop()
        sock = client.socket()
        began = time.monotonic()
        if isinstance(sock, socket.socket):
            sock.close()
        while liveness("D-cut") is not Liveness.OFFLINE and time.monotonic() - began < 10:
            time.sleep(0.01)
        cut = time.monotonic() - began

        # The silent ones: the birth (acknowledged) is the last packet each sends; paho's thread
        # is stopped right after, so nothing else (no PINGREQ) reaches the broker. The clock
        # starts at that last packet, not when the thread has stopped (up to 1 s later).
        last_packet: dict[str, float] = {}
        # Kept referenced: a paho client collected closes its socket (a FIN, and the Will at once).
        clients = []
        for n in range(silent):
            tid = f"D-silent-{n}"
            clients.append(client := connect(tid))
            last_packet[tid] = time.monotonic()
            client.loop_stop()
            time.sleep(max(0.0, last_packet[tid] + 1.0 - time.monotonic()))
        took: dict[str, float] = {}
        limit = time.monotonic() + 4 * keepalive_s + 15
        while len(took) < silent and time.monotonic() < limit:
            for tid, since in last_packet.items():
                if tid not in took and liveness(tid) is Liveness.OFFLINE:
                    took[tid] = time.monotonic() - since
            time.sleep(0.01)
        for client in clients:
            if isinstance(sock := client.socket(), socket.socket):
                sock.close()
        monitor.stop()
    silences = sorted(took.values())
    return {"cut": cut, "silent": silences, "missed": silent - len(silences)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=2000, help="ingest: terminal ids")
    parser.add_argument("--per", type=int, default=10, help="ingest: heartbeats per terminal")
    parser.add_argument("--repeat", type=int, default=3, help="ingest: runs (median)")
    parser.add_argument("--fleet", type=int, default=10000, help="scale: virtual terminals")
    parser.add_argument("--fleet-s", type=float, default=90.0, help="scale: seconds per run")
    parser.add_argument("--keepalive", type=int, default=5, help="detection: MQTT keepalive")
    parser.add_argument("--only", default="ingest,scale,detection")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the store of ingest and scale (postgresql: a throwaway cluster)")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    raise_open_file_limit(args.fleet * 2 + 512)
    status = 0
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-fleet-") as tmp, \
            contextlib.ExitStack() as stack:
        backend = Backend(Path(tmp))
        if args.db == "postgresql" and chosen & {"ingest", "scale"}:
            backend.cluster = stack.enter_context(throwaway_cluster(durable=True))
        print(f"store: {backend.name}")
        if "ingest" in chosen:
            rates = ingest(backend, args.terminals, args.per, args.repeat)
            ratio = rates["monitor x1"] / rates["raw"]
            print(f"ingest of {args.terminals * args.per} heartbeats ({args.terminals} "
                  f"terminals), median of {args.repeat}:")
            for name, rate in rates.items():
                print(f"  {name:12s} {rate:8.0f} messages/s")
            verdict = "PASS" if ratio >= RATIO_GOAL else "FAIL"
            print(f"  one monitor / raw subscriber = {ratio:.2f} (goal >= {RATIO_GOAL})  "
                  f"{verdict}; three / one = {rates['monitor x3'] / rates['monitor x1']:.2f}")
            status |= verdict != "PASS"
        if "scale" in chosen:
            for instances, kill in ((1, False), (3, True)):
                result = scale(backend, args.fleet, args.fleet_s, instances, kill)
                exact = (result["events sent"] == result["events stored"]
                         and result["heartbeats sent"] == result["heartbeats stored"]
                         and result["online after goodbye"] == 0
                         and result["rows"] == args.fleet
                         and int(result["lowest online after that"])  # type: ignore[call-overload]
                         >= args.fleet - int(result["reconnects"]))  # type: ignore[call-overload]
                print("scale: " + ", ".join(f"{k} {v}" for k, v in result.items())
                      + f"  events and heartbeats exact, states right: {exact}")
                status |= not exact
        if "detection" in chosen:
            figures = detection(args.keepalive)
            silences: list[float] = figures["silent"]  # type: ignore[assignment]
            earliest, latest = keepalive_window(args.keepalive)
            # The monitor's part (reading the Will, one commit) is allowed half a second.
            within = bool(silences) and not figures["missed"] and max(silences) <= latest + 0.5
            print(f"detection (keepalive {args.keepalive} s): cut connection -> offline "
                  f"{figures['cut']:.2f} s; silent terminal, from its last packet -> offline: "
                  f"median {statistics.median(silences) if silences else float('nan'):.1f} s, "
                  f"{min(silences, default=float('nan')):.1f}-"
                  f"{max(silences, default=float('nan')):.1f} s over {len(silences)} "
                  f"(mosquitto 2.0 drops it {earliest}-{latest} s after that packet: "
                  f"{'within' if within else 'OUTSIDE'}); stale = 3 x interval after the last "
                  "heartbeat, by rule")
            status |= not within
    return status


if __name__ == "__main__":
    sys.exit(main())

"""The monitor against a real mosquitto: terminals speaking MQTT 5 and 3.1.1 are stored, a Will
marks one offline, broken messages are refused and counted, a flood is rate-limited, two
instances split the heartbeats on a shared subscription, and a store that fails for a while
loses nothing."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fleet_support import event, heartbeat, status
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts.mqtt import encode, event_topic, heartbeat_topic, status_topic, utc_now
from fleet.ingest import Event, Seen
from fleet.liveness import Liveness
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import BatchResult, FleetStore
from simulator.broker import Mosquitto

WAIT_S = 10.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as b:
        yield b


def terminal_client(broker: Mosquitto, tid: str, *, v5: bool = True,
                    will_bdseq: int | None = None) -> paho.Client:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=tid,
                         protocol=MQTTProtocolVersion.MQTTv5 if v5 else
                         MQTTProtocolVersion.MQTTv311)
    if will_bdseq is not None:
        client.will_set(status_topic(tid), encode(status(False, will_bdseq)), qos=1, retain=True)
    client.connect(broker.host, broker.port, keepalive=5)
    client.loop_start()
    return client


def publish(client: paho.Client, topic: str, payload: bytes, *, qos: int = 1,
            retain: bool = False) -> None:
    client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT_S)


def start_monitor(broker: Mosquitto, path: Path, client_id: str = "monitor-1", *,
                  writer: FleetStore | None = None, **settings: object) -> Monitor:
    """A monitor writing to the store at ``path`` through a connection of its own (tests read
    through another, as the dashboard does: one SQLite connection is one thread's)."""
    settings = {"batch_wait_s": 0.05, **settings}
    monitor = Monitor(MonitorSettings(host=broker.host, port=broker.port, client_id=client_id,
                                      **settings),  # type: ignore[arg-type]
                      writer or FleetStore(path))
    monitor.start()
    assert monitor.wait_connected(WAIT_S), "the monitor did not connect and subscribe"
    return monitor


def counted(store: FleetStore, tid: str) -> tuple[int, int]:
    """(heartbeats, events) the store counted for ``tid``; (-1, -1) before it knows it."""
    view = store.terminal(tid, utc_now())
    return (-1, -1) if view is None else (view.heartbeats, view.events)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_terminal_s_birth_heartbeats_and_events_are_stored(broker: Mosquitto, tmp_path: Path,
                                                             v5: bool) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    try:
        terminal = terminal_client(broker, "kiosk-0001", v5=v5)
        publish(terminal, status_topic("kiosk-0001"), encode(status(True, 1)), retain=True)
        for seq in range(1, 6):
            publish(terminal, heartbeat_topic("kiosk-0001"), encode(heartbeat(seq)), qos=0)
        publish(terminal, event_topic("kiosk-0001"), encode(event(1)))
        until(lambda: counted(store, "kiosk-0001") == (5, 1), "five heartbeats and an event")
        view = store.terminal("kiosk-0001", utc_now())
        assert view is not None and view.liveness is Liveness.ONLINE
        terminal.disconnect()
    finally:
        monitor.stop()


def test_a_retained_birth_is_read_by_a_monitor_started_later(broker: Mosquitto,
                                                            tmp_path: Path) -> None:
    terminal = terminal_client(broker, "kiosk-0002")
    publish(terminal, status_topic("kiosk-0002"), encode(status(True, 3)), retain=True)
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    try:
        until(lambda: store.terminal("kiosk-0002", utc_now()) is not None, "the retained birth")
    finally:
        monitor.stop()
        terminal.disconnect()


def test_an_abrupt_disconnect_brings_the_will_and_the_terminal_goes_offline(
        broker: Mosquitto, tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    try:
        terminal = terminal_client(broker, "kiosk-0003", will_bdseq=7)
        publish(terminal, status_topic("kiosk-0003"), encode(status(True, 7)), retain=True)
        until(lambda: (v := store.terminal("kiosk-0003", utc_now())) is not None
              and v.liveness is Liveness.ONLINE, "online")
        terminal.loop_stop()
        sock = terminal.socket()
        assert isinstance(sock, socket.socket)
        sock.close()  # the cable cut: no DISCONNECT, the broker sends the Will
        until(lambda: store.terminal("kiosk-0003", utc_now()).liveness  # type: ignore[union-attr]
              is Liveness.OFFLINE, "the Will")
    finally:
        monitor.stop()


def test_broken_messages_are_refused_counted_and_the_rest_still_stored(
        broker: Mosquitto, tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    try:
        sender = terminal_client(broker, "kiosk-0004")
        publish(sender, heartbeat_topic("kiosk-0004"), b"{not json", qos=0)
        publish(sender, event_topic("kiosk-0004"), b'{"v": 2, "ts": "x"}')
        publish(sender, "kiosk/v1/bad id/heartbeat", encode(heartbeat(1)), qos=0)
        publish(sender, heartbeat_topic("kiosk-0004"), encode(heartbeat(1)), qos=0)
        until(lambda: counted(store, "kiosk-0004")[0] == 1, "the good heartbeat")
        _, rejected = monitor.counts.snapshot()
        assert rejected.get("contract") == 2
        sender.disconnect()
    finally:
        monitor.stop()


def test_a_flood_from_one_terminal_is_rate_limited(broker: Mosquitto, tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", rate_per_s=1.0, burst=10)
    try:
        flooder = terminal_client(broker, "kiosk-0005")
        for seq in range(1, 101):
            flooder.publish(heartbeat_topic("kiosk-0005"), encode(heartbeat(seq)), qos=0)
        publish(flooder, event_topic("kiosk-0005"), encode(event(1)))
        until(lambda: sum(monitor.counts.snapshot()[0].values()) >= 101, "the flood to arrive")
        assert monitor.wait_idle(WAIT_S)
        _, rejected = monitor.counts.snapshot()
        view = store.terminal("kiosk-0005", utc_now())
        assert view is not None
        assert view.heartbeats + view.events + rejected["rate_limited"] == 101
        assert view.heartbeats + view.events <= 15  # the burst, and a token or two refilled
        flooder.disconnect()
    finally:
        monitor.stop()


def test_two_instances_split_the_heartbeats_and_each_sees_every_status(
        broker: Mosquitto, tmp_path: Path) -> None:
    stores = [FleetStore(tmp_path / f"fleet-{n}.db") for n in (1, 2)]
    monitors = [start_monitor(broker, tmp_path / f"fleet-{n}.db", f"monitor-{n}")
                for n in (1, 2)]
    try:
        terminals = [terminal_client(broker, f"kiosk-{n:04d}") for n in range(10, 20)]
        for n, client in enumerate(terminals, 10):
            publish(client, status_topic(f"kiosk-{n:04d}"), encode(status(True, 1)), retain=True)
            for seq in range(1, 11):
                publish(client, heartbeat_topic(f"kiosk-{n:04d}"), encode(heartbeat(seq)), qos=0)

        def total() -> int:
            return sum(v.heartbeats for s in stores for v in s.terminals(utc_now()))

        until(lambda: total() == 100, "all hundred heartbeats, once")
        counts = [sum(v.heartbeats for v in s.terminals(utc_now())) for s in stores]
        assert all(count > 0 for count in counts), f"one instance took them all: {counts}"
        for store in stores:  # statuses are not shared: both know every terminal
            assert len(store.terminals(utc_now())) == 10
        for client in terminals:
            client.disconnect()
    finally:
        for monitor in monitors:
            monitor.stop()


class FlakyStore(FleetStore):
    """A store whose database is away for its first ``failures`` batches."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def apply(self, batch: list[Seen]) -> BatchResult:  # type: ignore[override]
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database unreachable")
        return super().apply(batch)


def test_a_store_that_fails_for_a_while_loses_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", retry_s=0.05,
                            writer=FlakyStore(tmp_path / "fleet.db", failures=3))
    try:
        terminal = terminal_client(broker, "kiosk-0006")
        for seq in range(1, 21):
            publish(terminal, event_topic("kiosk-0006"), encode(event(seq)))
        until(lambda: counted(store, "kiosk-0006")[1] == 20,
              "all twenty events after the store came back")
        assert monitor.counts.write_failures == 3
        terminal.disconnect()
    finally:
        monitor.stop()


def test_stale_follows_the_heartbeat_interval(broker: Mosquitto, tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db")
    try:
        terminal = terminal_client(broker, "kiosk-0007")
        publish(terminal, status_topic("kiosk-0007"), encode(status(True, 1)), retain=True)
        publish(terminal, heartbeat_topic("kiosk-0007"), encode(heartbeat(1, interval_s=0.2)),
                qos=0)
        until(lambda: counted(store, "kiosk-0007")[0] == 1, "the heartbeat")
        view = store.terminal("kiosk-0007", utc_now() + dt.timedelta(seconds=1))
        assert view is not None and view.liveness is Liveness.STALE
        terminal.disconnect()
    finally:
        monitor.stop()


def test_the_monitor_opens_an_alert_for_a_printer_out_of_paper(broker: Mosquitto,
                                                                tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", sweep_every_s=0.1)
    try:
        terminal = terminal_client(broker, "kiosk-0008")
        publish(terminal, status_topic("kiosk-0008"), encode(status(True, 1)), retain=True)
        publish(terminal, heartbeat_topic("kiosk-0008"),
                encode(heartbeat(1, printer="fault", reason="paper_out")), qos=0)
        until(lambda: [a.cause for a in store.alerts()] == ["paper_out"], "the paper alert")
        terminal.disconnect()
    finally:
        monitor.stop()


def test_a_broker_restart_is_ridden_out_and_nothing_sent_after_it_is_lost(tmp_path: Path) -> None:
    with Mosquitto(persistent=True) as broker:
        store = FleetStore(tmp_path / "fleet.db")
        monitor = start_monitor(broker, tmp_path / "fleet.db", reconnect_max_s=1)
        try:
            broker.restart()  # the monitor's connection drops; paho reconnects by itself
            assert monitor.wait_connected(WAIT_S), "the monitor did not come back"
            terminal = terminal_client(broker, "kiosk-0009")
            for seq in range(1, 6):
                publish(terminal, event_topic("kiosk-0009"), encode(event(seq)))
            until(lambda: counted(store, "kiosk-0009")[1] == 5, "the events sent after the restart")
            terminal.disconnect()
        finally:
            monitor.stop()


def test_events_sent_while_the_only_monitor_is_down_wait_for_it(broker: Mosquitto,
                                                                 tmp_path: Path) -> None:
    # Its session outlives it (session expiry): a restarted monitor with the same client id
    # gets the QoS 1 events queued meanwhile, as systemd restarting it after a crash would.
    store = FleetStore(tmp_path / "fleet.db")
    first = start_monitor(broker, tmp_path / "fleet.db", "monitor-a")
    first.stop()
    terminal = terminal_client(broker, "kiosk-0010")
    for seq in range(1, 8):
        publish(terminal, event_topic("kiosk-0010"), encode(event(seq)))
    again = start_monitor(broker, tmp_path / "fleet.db", "monitor-a")
    try:
        until(lambda: counted(store, "kiosk-0010")[1] == 7,
              "the events queued while the monitor was down")
        terminal.disconnect()
    finally:
        again.stop()


def test_the_lease_holder_prunes_what_is_older_than_the_kept_days(broker: Mosquitto,
                                                                  tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    old = utc_now() - dt.timedelta(days=40)
    store.apply([Event("kiosk-0011", event(1), old), Event("kiosk-0011", event(2), utc_now())])
    monitor = start_monitor(broker, tmp_path / "fleet.db", sweep_every_s=0.1, keep_days=30)
    try:
        until(lambda: [e.seq for e in store.events("kiosk-0011")] == [2], "the old event pruned")
    finally:
        monitor.stop()


class RecordingStore(FleetStore):
    """A store that remembers the size of every batch it is given."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sizes: list[int] = []

    def apply(self, batch: list[Seen]) -> BatchResult:  # type: ignore[override]
        self.sizes.append(len(batch))
        return super().apply(batch)


def test_heartbeats_are_held_by_the_broker_until_stored(tmp_path: Path) -> None:
    # As production's broker (upgrade_outgoing_qos): a QoS 0 heartbeat goes to the monitor at
    # its subscription's QoS 1 and is acknowledged only after its commit. A monitor that could
    # not store them before it went leaves them to its session, and its successor with the same
    # client id stores every one (as a killed instance restarted by systemd would).
    with Mosquitto(upgrade_outgoing_qos=True) as broker:
        store = FleetStore(tmp_path / "fleet.db")
        first = start_monitor(broker, tmp_path / "fleet.db", "monitor-q", retry_s=0.05,
                              writer=FlakyStore(tmp_path / "fleet.db", failures=1_000_000))
        terminal = terminal_client(broker, "kiosk-0012")
        for seq in range(1, 31):
            publish(terminal, heartbeat_topic("kiosk-0012"), encode(heartbeat(seq)), qos=0)
        until(lambda: first.counts.write_failures > 0, "the first failed write")
        first.stop(timeout_s=0.2)  # gives up on its batch: nothing of it acknowledged
        assert counted(store, "kiosk-0012") == (-1, -1)
        for seq in range(31, 41):  # dealt to its session while it is away
            publish(terminal, heartbeat_topic("kiosk-0012"), encode(heartbeat(seq)), qos=0)
        again = start_monitor(broker, tmp_path / "fleet.db", "monitor-q")
        try:
            until(lambda: counted(store, "kiosk-0012")[0] == 40, "all forty heartbeats")
            assert again.wait_idle(WAIT_S)
            assert counted(store, "kiosk-0012")[0] == 40  # and none twice
        finally:
            again.stop()
            terminal.disconnect()


def test_more_than_twenty_messages_may_wait_for_one_commit(broker: Mosquitto,
                                                          tmp_path: Path) -> None:
    # The monitor's Receive Maximum: without it mosquitto keeps at most 20 QoS 1 messages
    # unacknowledged on their way to a client, and a monitor acknowledging after its commit
    # would store 20 a batch.
    writer = RecordingStore(tmp_path / "fleet.db")
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", writer=writer, batch_wait_s=1.0,
                            burst=100)
    try:
        terminal = terminal_client(broker, "kiosk-0013")
        for seq in range(1, 61):
            terminal.publish(event_topic("kiosk-0013"), encode(event(seq)), qos=1)
        until(lambda: counted(store, "kiosk-0013")[1] == 60, "the sixty events")
        assert max(writer.sizes) > 20, writer.sizes
        terminal.disconnect()
    finally:
        monitor.stop()


def test_a_will_is_stored_without_waiting_for_the_batch(broker: Mosquitto,
                                                        tmp_path: Path) -> None:
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", batch_wait_s=30.0)
    try:
        terminal = terminal_client(broker, "kiosk-0014", will_bdseq=2)
        publish(terminal, status_topic("kiosk-0014"), encode(status(True, 2)), retain=True)
        until(lambda: (v := store.terminal("kiosk-0014", utc_now())) is not None
              and v.liveness is Liveness.ONLINE, "online, long before a 30 s batch wait")
        terminal.loop_stop()
        sock = terminal.socket()
        assert isinstance(sock, socket.socket)
        sock.close()
        until(lambda: store.terminal("kiosk-0014", utc_now()).liveness  # type: ignore[union-attr]
              is Liveness.OFFLINE, "the Will, stored at once")
    finally:
        monitor.stop()


def test_messages_left_in_the_read_buffer_are_not_forgotten(broker: Mosquitto,
                                                            tmp_path: Path) -> None:
    # A read takes up to 64 KiB; a burst of reads stops at a batch's worth. What is left in the
    # buffer must be read at once, not when the socket next has data (a PINGRESP, 30 s on).
    store = FleetStore(tmp_path / "fleet.db")
    monitor = start_monitor(broker, tmp_path / "fleet.db", batch_size=5, burst=1000)
    try:
        terminal = terminal_client(broker, "kiosk-0015")
        for seq in range(1, 201):
            terminal.publish(heartbeat_topic("kiosk-0015"), encode(heartbeat(seq)), qos=0)
        until(lambda: counted(store, "kiosk-0015")[0] == 200, "all 200 heartbeats")
        terminal.disconnect()
    finally:
        monitor.stop()


def test_a_retired_instance_s_share_is_stored_and_its_session_ended(broker: Mosquitto,
                                                                    tmp_path: Path) -> None:
    # mosquitto deals a stopped member's persistent session its share of a shared subscription
    # until the session expires. Retiring takes that session, stores what waited in it, and
    # ends it: nothing is lost and from then on the instances that stay get everything.
    store = FleetStore(tmp_path / "fleet.db")
    stays = start_monitor(broker, tmp_path / "fleet.db", "monitor-stays")
    leaving = start_monitor(broker, tmp_path / "fleet.db", "monitor-leaving")
    leaving.stop()
    terminal = terminal_client(broker, "kiosk-0012")
    try:
        for seq in range(1, 21):
            publish(terminal, event_topic("kiosk-0012"), encode(event(seq)))
        time.sleep(0.5)
        assert 0 <= counted(store, "kiosk-0012")[1] < 20, "nothing was dealt to the stopped one"
        retiring = start_monitor(broker, tmp_path / "fleet.db", "monitor-leaving", retire=True,
                                 retire_quiet_s=0.3)
        assert retiring.wait_retired(WAIT_S), "the retiring instance did not finish"
        retiring.stop()
        until(lambda: counted(store, "kiosk-0012")[1] == 20, "the retired instance's share")
        assert not session_kept(broker, "monitor-leaving")
        for seq in range(21, 41):
            publish(terminal, event_topic("kiosk-0012"), encode(event(seq)))
        until(lambda: counted(store, "kiosk-0012")[1] == 40, "every event after the retiring")
    finally:
        terminal.disconnect()
        stays.stop()


def session_kept(broker: Mosquitto, client_id: str) -> bool:
    """Whether the broker still has a session for ``client_id`` (asked without ending it)."""
    present: list[bool] = []
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.on_connect = lambda _c, _u, flags, _r, _p: present.append(flags.session_present)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600  # a session found is kept as it was
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        until(lambda: bool(present), "the CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def test_retiring_an_id_the_broker_has_no_session_of_ends_at_once(broker: Mosquitto,
                                                                   tmp_path: Path) -> None:
    retiring = start_monitor(broker, tmp_path / "fleet.db", "monitor-never-ran", retire=True,
                             retire_quiet_s=0.1)
    try:
        assert retiring.wait_retired(WAIT_S)
    finally:
        retiring.stop()


def test_kiosk_fleet_monitor_retire_says_what_it_did(broker: Mosquitto, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleet", "monitor", "--broker", f"{broker.host}:{broker.port}",
         "--db", str(tmp_path / "fleet.db"), "--client-id", "monitor-gone", "--retire"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "monitor-gone: retired; 0 message(s) that waited for it stored" in done.stdout

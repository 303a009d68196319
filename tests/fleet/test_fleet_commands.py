"""Commands from the fleet side to real terminal agents on mosquitto: one request id per
terminal, the broker-enforced expiry, the acks as they arrive, the store remembering both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fleet_support import T0

from contracts.mqtt import Counters, utc_now
from devices.base import DeviceState
from fleet.cli import main
from fleet.commands import CommandError, build_commands, expiry_properties
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import FleetStore
from simulator.broker import Mosquitto, free_port
from terminal.mqtt_link import BrokerSettings
from terminal.telemetry import TelemetryAgent, TerminalSnapshot

WAIT_S = 10.0


def snapshot() -> TerminalSnapshot:
    return TerminalSnapshot(state="idle", devices={"printer": DeviceState.ok()},
                            counters=Counters.zero())


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as b:
        yield b


@pytest.fixture
def agents(broker: Mosquitto, tmp_path: Path) -> Iterator[Callable[[str, str], TelemetryAgent]]:
    started: list[TelemetryAgent] = []

    def start(tid: str, site: str = "site-a") -> TelemetryAgent:
        agent = TelemetryAgent(
            terminal_id=tid, site=site, version="1.0.0",
            broker=BrokerSettings(host="127.0.0.1", port=broker.port, keepalive_s=5,
                                  reconnect_min_s=0.1, reconnect_max_s=0.5),
            state_dir=tmp_path / tid, snapshot=snapshot, interval_s=30.0)
        agent.start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def monitor(broker: Mosquitto, tmp_path: Path) -> Iterator[FleetStore]:
    store = FleetStore(tmp_path / "fleet.db")  # the tests read through their own connection
    running = Monitor(MonitorSettings(host=broker.host, port=broker.port, batch_wait_s=0.05),
                      FleetStore(tmp_path / "fleet.db"))
    running.start()
    assert running.wait_connected(WAIT_S)
    yield store
    running.stop()
    store.close()


def test_each_terminal_gets_its_own_request_id_and_the_expiry() -> None:
    commands = build_commands(["kiosk-0001", "kiosk-0002"], "ping", ttl_s=90, now=T0)
    assert len({c.request_id for c in commands}) == 2
    assert all(c.payload.expires_at == T0 + dt.timedelta(seconds=90) for c in commands)
    properties = expiry_properties(commands[0], now=T0 + dt.timedelta(seconds=30))
    assert properties.MessageExpiryInterval == 60


@pytest.mark.parametrize(("name", "ttl_s", "problem"), [
    ("format_disk", 60, "unknown command"),
    ("ping", 0, "ttl"),
    ("ping", 8 * 86400, "ttl"),
])
def test_what_no_terminal_would_run_is_refused_before_sending(name: str, ttl_s: float,
                                                              problem: str) -> None:
    with pytest.raises(CommandError, match=problem):
        build_commands(["kiosk-0001"], name, ttl_s=ttl_s)


def wait_known(store: FleetStore, count: int) -> None:
    deadline = utc_now() + dt.timedelta(seconds=WAIT_S)
    while len(store.terminals(utc_now())) < count:
        assert utc_now() < deadline, "the monitor did not see the terminals' births"


def test_kiosk_fleet_cmd_shows_the_acks_and_the_store_keeps_them(
        broker: Mosquitto, agents: Callable[[str, str], TelemetryAgent], monitor: FleetStore,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agents("kiosk-0001", "site-a")
    wait_known(monitor, 1)
    code = main(["cmd", "kiosk-0001", "ping", "--broker", f"127.0.0.1:{broker.port}",
                 "--db", str(tmp_path / "fleet.db"), "--wait", str(WAIT_S)])
    out = capsys.readouterr().out
    assert code == 0, out
    request_id = out.split()[1]
    assert f"kiosk-0001 {request_id} accepted" in out
    assert f"kiosk-0001 {request_id} succeeded" in out and '"pong": true' in out
    deadline = utc_now() + dt.timedelta(seconds=WAIT_S)
    while (view := monitor.command(request_id)) is None or len(view.acks) < 2:
        assert utc_now() < deadline, "the monitor did not store the acks"
    assert view.name == "ping" and view.tid == "kiosk-0001"
    assert [status for status, _ in view.acks] == ["accepted", "succeeded"]


def test_a_command_to_a_site_fans_out_one_per_terminal(
        broker: Mosquitto, agents: Callable[[str, str], TelemetryAgent], monitor: FleetStore,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for tid, site in (("kiosk-0001", "site-a"), ("kiosk-0002", "site-a"),
                      ("kiosk-0003", "site-b")):
        agents(tid, site)
    wait_known(monitor, 3)
    code = main(["cmd", "site", "ping", "--site", "site-a", "--broker",
                 f"127.0.0.1:{broker.port}", "--db", str(tmp_path / "fleet.db")])
    out = capsys.readouterr().out
    assert code == 0, out
    succeeded = [line.split() for line in out.splitlines() if line.endswith("succeeded")
                 or " succeeded " in line]
    assert sorted(tid for tid, *_ in succeeded) == ["kiosk-0001", "kiosk-0002"]
    assert len({request_id for _, request_id, *_ in succeeded}) == 2


def test_a_terminal_that_does_not_answer_is_named_and_the_exit_code_says_so(
        broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cmd", "kiosk-0404", "ping", "--wait", "0.5", "--broker",
                 f"127.0.0.1:{broker.port}", "--db", str(tmp_path / "fleet.db")])
    captured = capsys.readouterr()
    assert code == 1
    assert "no final ack within" in captured.err and "kiosk-0404" in captured.err


def test_no_broker_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cmd", "kiosk-0001", "ping", "--broker", f"127.0.0.1:{free_port()}",
                 "--db", str(tmp_path / "fleet.db")])
    assert code == 2
    assert "cannot reach the broker" in capsys.readouterr().err

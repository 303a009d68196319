"""TelemetryAgent against a real mosquitto: status, Will and bdseq, heartbeats, outbox, commands.

A paho client in the test takes the fleet's seat (``Recorder``) and checks what the broker really
delivers. Nothing on the agent's side is faked: the "terminal" below is just the snapshot source
the agent reads, and the broker-down fault stops and restarts the real mosquitto.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from mqtt_support import (
    TID,
    Recorder,
    acks_until_final,
    command_payload,
    eventually,
    fast_settings,
    heartbeat_with_seq,
    parsed,
    send_command,
    status_is,
)
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contracts.mqtt import (
    AckPayload,
    Counters,
    EventPayload,
    HeartbeatPayload,
    StatusPayload,
    ack_topic,
    command_topic,
    event_topic,
    heartbeat_topic,
    parse_payload,
    parse_topic,
    status_topic,
    utc_now,
)
from devices.base import DeviceState
from simulator.broker import Mosquitto, free_port
from terminal.mqtt_link import BrokerSettings, OutageLog, spread_backoff
from terminal.telemetry import (
    INTERRUPTED,
    CommandError,
    NoArgs,
    TelemetryAgent,
    TerminalSnapshot,
)

pytestmark = pytest.mark.mosquitto

REPO = Path(__file__).resolve().parents[2]


# --- the agent's side ----------------------------------------------------------------------------


class Terminal:
    """What the terminal would hand the agent: its state, device states and counters."""

    def __init__(self) -> None:
        self.state = "idle"
        self.devices = {"printer": DeviceState.ok(), "card_reader": DeviceState.ok()}
        self.counters = Counters(sessions=2, completed_errands=1, receipts=1, ratings={"5": 1})

    def snapshot(self) -> TerminalSnapshot:
        return TerminalSnapshot(state=self.state, devices=dict(self.devices),  # type: ignore[arg-type]
                                counters=self.counters)


AgentFactory = Callable[..., TelemetryAgent]


@pytest.fixture
def terminal() -> Terminal:
    return Terminal()


@pytest.fixture
def make_agent(tmp_path: Path, mosquitto: Mosquitto, terminal: Terminal) -> Iterator[AgentFactory]:
    agents: list[TelemetryAgent] = []

    def make(*, state_dir: Path | None = None, interval_s: float = 30.0,
             port: int | None = None) -> TelemetryAgent:
        agent = TelemetryAgent(
            terminal_id=TID,
            site="test-site",
            version="1.2.3",
            broker=fast_settings(port or mosquitto.port),
            state_dir=state_dir or tmp_path / "state",
            snapshot=terminal.snapshot,
            interval_s=interval_s,
        )
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop(timeout_s=2)


@pytest.fixture
def recorder(mosquitto: Mosquitto) -> Iterator[Recorder]:
    rec = Recorder(mosquitto.port, client_id="fleet-test")
    yield rec
    rec.close()


# --- status, Will, bdseq -------------------------------------------------------------------------


def test_birth_is_retained_with_bdseq(mosquitto: Mosquitto, make_agent: AgentFactory) -> None:
    # Agent connects and publishes its birth; a subscriber arriving later still gets it, retained.
    agent = make_agent()
    agent.start()
    eventually(lambda: agent.connected, what="agent connected")
    late = Recorder(mosquitto.port)
    try:
        _, message = late.wait_for(status_is(online=True))
    finally:
        late.close()
    assert message.retain
    birth = parse_payload(StatusPayload, message.payload)
    assert birth.bdseq == 1
    assert birth.boot_id == agent.boot_id
    assert (birth.version, birth.site) == ("1.2.3", "test-site")
    assert birth.started_at == agent.started_at


CHILD = """
import sys, time
from pathlib import Path
from contracts.mqtt import Counters
from terminal.mqtt_link import BrokerSettings
from terminal.outbox import Outbox
from terminal.telemetry import TelemetryAgent, TerminalSnapshot
agent = TelemetryAgent(
    terminal_id=sys.argv[1], site="test-site", version="1.2.3",
    broker=BrokerSettings("127.0.0.1", int(sys.argv[2]), reconnect_min_s=0.1, reconnect_max_s=0.5),
    state_dir=Path(sys.argv[3]),
    snapshot=lambda: TerminalSnapshot("idle", {}, Counters.zero()),
)
agent.start()
time.sleep(60)
"""


def test_will_carries_the_bdseq_of_its_own_connection(
    mosquitto: Mosquitto, recorder: Recorder, tmp_path: Path
) -> None:
    # A terminal process connects (bdseq 1), the broker restarts and it reconnects (bdseq 2), then
    # the process is killed outright: the broker publishes the Will registered for connection 2,
    # i.e. online false with bdseq 2, not the stale Will of connection 1.
    log_file = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, TID, str(mosquitto.port), str(tmp_path / "state")],
        cwd=REPO, stdout=log_file, stderr=log_file,
    )
    try:
        i, _ = recorder.wait_for(status_is(online=True, bdseq=1), timeout=10)
        mosquitto.restart()
        i, message = recorder.wait_for(status_is(online=True, bdseq=2), after=i + 1)
        birth = parse_payload(StatusPayload, message.payload)
        assert not [m for m in recorder.messages[i:] if status_is(online=False)(m)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(5)
        _, message = recorder.wait_for(status_is(online=False), after=i + 1)
    finally:
        child.kill()
        child.wait(5)
        log_file.close()
    will = parse_payload(StatusPayload, message.payload)
    assert will.bdseq == birth.bdseq == 2
    assert will.boot_id == birth.boot_id
    late = Recorder(mosquitto.port)
    try:
        _, retained = late.wait_for(lambda m: m.topic == status_topic(TID))
    finally:
        late.close()
    assert retained.retain
    assert parse_payload(StatusPayload, retained.payload).online is False


def test_bdseq_grows_across_restarts_with_the_same_state_dir(
    recorder: Recorder, make_agent: AgentFactory, tmp_path: Path
) -> None:
    first = make_agent()
    first.start()
    i, _ = recorder.wait_for(status_is(online=True, bdseq=1))
    first.stop()
    second = make_agent()
    second.start()
    _, message = recorder.wait_for(status_is(online=True), after=i + 1)
    birth = parse_payload(StatusPayload, message.payload)
    assert birth.bdseq == 2
    assert birth.boot_id == second.boot_id != first.boot_id
    second.stop()
    # bdseq lives in the state dir: another dir starts over.
    third = make_agent(state_dir=tmp_path / "other-state")
    third.start()
    recorder.wait_for(status_is(online=True, bdseq=1), after=i + 1)


def test_clean_stop_says_offline_itself(
    mosquitto: Mosquitto, recorder: Recorder, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    agent.start()
    i, _ = recorder.wait_for(status_is(online=True, bdseq=1))
    stopped_at = utc_now()
    agent.stop()
    _, message = recorder.wait_for(status_is(online=False), after=i + 1)
    goodbye = parse_payload(StatusPayload, message.payload)
    assert goodbye.bdseq == 1
    # Made at stop time, so it is the agent's own goodbye, not the Will (built at connect time).
    assert goodbye.ts >= stopped_at
    late = Recorder(mosquitto.port)
    try:
        _, retained = late.wait_for(lambda m: m.topic == status_topic(TID))
    finally:
        late.close()
    assert parse_payload(StatusPayload, retained.payload).online is False


# --- heartbeats ----------------------------------------------------------------------------------


def test_heartbeats_count_up_and_report_devices(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    agent = make_agent(interval_s=0.2)
    agent.start()
    recorder.wait_for(heartbeat_with_seq(4))
    beats = parsed(HeartbeatPayload, recorder.all(heartbeat_topic(TID)))[:4]
    assert [b.seq for b in beats] == [1, 2, 3, 4]
    assert not any(m.retain for m in recorder.all(heartbeat_topic(TID)))
    last = beats[-1]
    assert last.interval_s == 0.2
    assert last.state == "idle"
    assert last.version == "1.2.3"
    assert {name: d.state for name, d in last.devices.items()} == {
        "printer": "ok", "card_reader": "ok"
    }
    assert last.counters.sessions == 2
    assert last.counters.ratings == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    assert last.outbox == 0
    assert last.system.mem_pct is not None
    assert last.system.disk_free_mb is not None and last.system.disk_free_mb > 0
    assert beats[0].uptime_s < beats[-1].uptime_s
    # Paced by the interval, not sent back to back.
    assert (beats[3].ts - beats[1].ts).total_seconds() >= 0.3


def test_a_device_fault_shows_in_the_next_heartbeat(
    recorder: Recorder, make_agent: AgentFactory, terminal: Terminal
) -> None:
    # The interval is 30 s, so the second heartbeat within seconds is heartbeat_now's doing.
    agent = make_agent(interval_s=30)
    agent.start()
    _, message = recorder.wait_for(heartbeat_with_seq(1))
    assert parse_payload(HeartbeatPayload, message.payload).devices["printer"].state == "ok"
    terminal.devices["printer"] = DeviceState.fault("paper_out")
    terminal.state = "degraded"
    agent.heartbeat_now()
    _, message = recorder.wait_for(heartbeat_with_seq(2), timeout=2)
    beat = parse_payload(HeartbeatPayload, message.payload)
    assert beat.state == "degraded"
    assert (beat.devices["printer"].state, beat.devices["printer"].reason) == ("fault", "paper_out")
    assert beat.devices["card_reader"].state == "ok"


# --- events and the broker-down fault ------------------------------------------------------------


def test_events_recorded_while_the_broker_is_down_arrive_in_order(
    mosquitto: Mosquitto, recorder: Recorder, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    agent.start()
    first = agent.record_event("app_started", "info")
    assert first is not None
    recorder.wait_for(lambda m: m.topic == event_topic(TID))
    eventually(lambda: agent.outbox.count("event") == 0, what="first event acknowledged")
    recorder.sync()

    mosquitto.stop()
    eventually(lambda: not agent.connected, what="agent noticed the broker is gone")
    durations = []
    for n in range(5):
        started = time.perf_counter()
        agent.record_event("door_opened", "warning", door="cabinet", n=n)
        agent.heartbeat_now()
        durations.append(time.perf_counter() - started)
    assert max(durations) < 0.05, durations
    assert agent.outbox.count("event") == 5  # kept, not lost and not yet sent

    mosquitto.start()  # same port
    recorder.wait_for(lambda m: m.topic == event_topic(TID)
                      and parse_payload(EventPayload, m.payload).fields.get("n") == 4, timeout=10)
    events = parsed(EventPayload, recorder.all(event_topic(TID)))
    assert [e.seq for e in events] == [first, first + 1, first + 2, first + 3, first + 4, first + 5]
    assert [e.fields.get("n") for e in events[1:]] == [0, 1, 2, 3, 4]
    assert all(e.type == "door_opened" and e.severity == "warning" for e in events[1:])
    eventually(lambda: agent.outbox.count("event") == 0, what="outbox drained after PUBACKs")


def test_a_dead_broker_never_blocks_the_terminal(tmp_path: Path, terminal: Terminal) -> None:
    # No broker on the port at all: every call returns at once; the agent connects by itself
    # when a broker appears there, and failed TCP attempts use up no bdseq.
    port = free_port()

    def agent_for(state: str) -> TelemetryAgent:
        return TelemetryAgent(terminal_id=TID, site="s", version="1", broker=fast_settings(port),
                              state_dir=tmp_path / state, snapshot=terminal.snapshot)

    started = time.perf_counter()
    lonely = agent_for("lonely")
    lonely.start()
    lonely.record_event("app_started", "info")
    lonely.heartbeat_now()
    assert time.perf_counter() - started < 0.5
    started = time.perf_counter()
    lonely.stop(timeout_s=2)
    assert time.perf_counter() - started < 2.5

    agent = agent_for("state")
    agent.start()
    agent.record_event("app_started", "info")
    assert not agent.connected
    with Mosquitto(port=port) as broker:
        assert broker.port == port
        eventually(lambda: agent.connected, what="agent connected once the broker came up")
        eventually(lambda: agent.outbox.count("event") == 0, what="queued event delivered")
        assert agent.bdseq == 1
        agent.stop(timeout_s=2)


def test_a_broker_outage_is_logged_once_then_summarised_and_the_return_at_info(
    tmp_path: Path, terminal: Terminal, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by trying it: every reconnect attempt logged an ERROR line that read like a
    # traceback, and the terminal came back about 30 s after the broker did.
    agent = TelemetryAgent(terminal_id=TID, site="s", version="1",
                           broker=fast_settings(mosquitto.port), state_dir=tmp_path / "s",
                           snapshot=terminal.snapshot)
    agent.start()
    eventually(lambda: agent.connected, what="connected")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        mosquitto.stop()
        eventually(lambda: not agent.connected, what="outage noticed")
        time.sleep(2.0)  # a dozen reconnect attempts at fast_settings' pace
        mosquitto.start()
        came_back = time.monotonic()
        eventually(lambda: agent.connected, timeout=5, what="reconnected")
        back_after = time.monotonic() - came_back
    agent.stop(timeout_s=2)
    records = [r for r in caplog.records if r.name.startswith("terminal.mqtt_link")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0], warnings
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any("offline" in m and "failed attempts" in m for m in infos), infos
    # Back within the cap on the backoff (0.5 s here) and one connect, not doubled without end.
    assert back_after < 0.5 + 1.5


def test_the_default_backoff_brings_a_terminal_back_within_ten_seconds() -> None:
    settings = BrokerSettings(host="broker.example")
    # paho waits at most reconnect_max_s between attempts; an attempt to a broker that is up
    # again takes one round trip, bounded by connect_timeout_s at worst.
    assert settings.reconnect_max_s + 1.0 <= 10.0


def test_each_terminal_backs_off_in_steps_of_its_own_within_the_cap() -> None:
    rng = random.Random(7)
    spreads = [spread_backoff(1.0, 8.0, rng) for _ in range(500)]
    assert all(1.0 <= first < 2.0 and 6.0 <= cap <= 8.0 for first, cap in spreads)
    # After a broker restart a fleet's first knocks spread over a whole second, and its knocks
    # at the cap over two, instead of all arriving at the same instants.
    firsts = sorted(first for first, _ in spreads)
    caps = sorted(cap for _, cap in spreads)
    assert firsts[-1] - firsts[0] > 0.9 and caps[-1] - caps[0] > 1.8
    assert len(set(spreads)) == len(spreads)
    # A first delay above the cap is held to it: paho would otherwise wait longer than the cap.
    assert all(first <= cap for first, cap in (spread_backoff(5.0, 4.0, rng) for _ in range(50)))


def test_a_long_outage_is_summarised_every_few_minutes(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog("broker:8883", every_s=300, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="terminal.mqtt_link"):
        for _ in range(100):  # an attempt every 8 s for a little over 13 minutes
            outage.failed("no connection", 8.0)
            now[0] += 8.0
        outage.connected()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 + 2 + 1  # the outage, two summaries, the return
    assert "still unreachable after 5 min (39 failed attempts" in messages[1]
    assert "after 800 s offline (100 failed attempts)" in messages[-1]


# --- commands ------------------------------------------------------------------------------------


@pytest.fixture
def running(recorder: Recorder, make_agent: AgentFactory) -> TelemetryAgent:
    agent = make_agent()
    agent.start()
    recorder.wait_for(status_is(online=True))
    return agent


def test_ping_is_accepted_then_succeeds(recorder: Recorder, running: TelemetryAgent) -> None:
    send_command(recorder, "req-ping")
    acks = parsed(AckPayload, acks_until_final(recorder, "req-ping"))
    assert [a.status for a in acks] == ["accepted", "succeeded"]
    assert acks[-1].result == {"pong": True}
    assert acks[-1].error is None


@dataclass(frozen=True)
class BadCommand:
    expected: str  # in the rejection's error
    name: str = "ping"
    args: dict[str, Any] | None = None
    expires_in_s: float = 60.0
    raw: bytes | None = None


@pytest.mark.parametrize(
    "case",
    [
        BadCommand("unknown command 'reboot_now'", "reboot_now"),
        BadCommand("interval_s", "set_heartbeat_interval", {"interval_s": 1}),
        BadCommand("interval_s", "set_heartbeat_interval", {"interval_s": "10"}),
        BadCommand("interval_s: Field required", "set_heartbeat_interval", {}),
        BadCommand("loud", "ping", {"loud": True}),
        BadCommand("expired", "ping", expires_in_s=-1),
        BadCommand("malformed JSON", raw=b'{"v": 1, "name": "ping", "args": '),
        BadCommand("unsupported contract version 9", raw=b'{"v": 9, "name": "ping"}'),
        BadCommand("missing timestamp 'ts'", raw=b'{"v": 1, "name": "ping"}'),
        BadCommand("expires_at: Field required",
                   raw=b'{"v": 1, "ts": "2026-01-01T00:00:00Z", "name": "ping"}'),
    ],
    ids=lambda case: case.expected,
)
def test_bad_commands_are_rejected_and_never_run(
    recorder: Recorder, running: TelemetryAgent, case: BadCommand
) -> None:
    send_command(recorder, "req-bad", case.name, args=case.args,
                 expires_in_s=case.expires_in_s, raw=case.raw)
    acks = parsed(AckPayload, acks_until_final(recorder, "req-bad"))
    assert [a.status for a in acks] == ["rejected"]  # never "accepted": nothing was half-done
    assert acks[0].error is not None and case.expected in acks[0].error
    assert running.interval_s == 30


def test_set_heartbeat_interval_applies_and_is_announced_at_once(
    recorder: Recorder, running: TelemetryAgent
) -> None:
    i, _ = recorder.wait_for(heartbeat_with_seq(1))
    send_command(recorder, "req-interval", "set_heartbeat_interval", args={"interval_s": 5})
    acks = parsed(AckPayload, acks_until_final(recorder, "req-interval"))
    assert [a.status for a in acks] == ["accepted", "succeeded"]
    assert acks[-1].result == {"interval_s": 5}
    assert running.interval_s == 5
    _, message = recorder.wait_for(heartbeat_with_seq(2), after=i + 1, timeout=2)
    assert parse_payload(HeartbeatPayload, message.payload).interval_s == 5


def test_a_duplicate_request_id_gets_the_same_ack_and_runs_once(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    runs: list[int] = []

    def count(_: NoArgs) -> dict[str, int]:
        runs.append(1)
        return {"runs": len(runs)}

    agent = make_agent()
    agent.register_command("count", NoArgs, count)
    agent.start()
    recorder.wait_for(status_is(online=True))
    send_command(recorder, "req-dup", "count")
    first = acks_until_final(recorder, "req-dup")
    send_command(recorder, "req-dup", "count")
    again = acks_until_final(recorder, "req-dup", count=2)
    assert again[-1].payload == first[-1].payload  # byte for byte, timestamp included
    assert parse_payload(AckPayload, again[-1].payload).result == {"runs": 1}
    assert len(runs) == 1

    # The memory of request ids survives a restart of the terminal.
    agent.stop()
    restarted = make_agent()
    restarted.register_command("count", NoArgs, count)
    restarted.start()
    eventually(lambda: restarted.connected, what="restarted agent connected")
    send_command(recorder, "req-dup", "count")
    after_restart = acks_until_final(recorder, "req-dup", count=3)
    assert after_restart[-1].payload == first[-1].payload
    assert len(runs) == 1


def test_commands_sent_while_the_terminal_is_offline_are_handled_when_it_returns(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    agent.start()
    recorder.wait_for(status_is(online=True))
    agent.stop()  # the terminal goes away; its session (and subscription) stays at the broker
    recorder.wait_for(status_is(online=False))

    send_command(recorder, "req-while-away")
    send_command(recorder, "req-stale", expires_in_s=0.5)
    time.sleep(1.0)  # req-stale's expires_at passes while the terminal is still away

    returned = make_agent()
    returned.start()
    acks = parsed(AckPayload, acks_until_final(recorder, "req-while-away"))
    assert [a.status for a in acks] == ["accepted", "succeeded"]
    stale = parsed(AckPayload, acks_until_final(recorder, "req-stale"))
    assert [a.status for a in stale] == ["rejected"]
    assert stale[0].error is not None and "expired" in stale[0].error


def test_a_command_whose_message_expiry_passes_while_the_terminal_is_away_never_reaches_it(
    mosquitto: Mosquitto, recorder: Recorder, make_agent: AgentFactory
) -> None:
    # MQTT 5: the broker, not the terminal's clock (a Pi has no RTC), drops the expired command.
    # Its expires_at is a day ahead, as if the terminal's clock were a day behind.
    agent = make_agent()
    agent.start()
    recorder.wait_for(status_is(online=True))
    agent.stop()
    recorder.wait_for(status_is(online=False))
    sender = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         protocol=MQTTProtocolVersion.MQTTv5)
    sender.connect("127.0.0.1", mosquitto.port)
    sender.loop_start()
    try:
        expiring = Properties(PacketTypes.PUBLISH)
        expiring.MessageExpiryInterval = 1
        sender.publish(command_topic(TID, "req-expiring"),
                       command_payload(expires_in_s=86400), qos=1,
                       properties=expiring).wait_for_publish(5)
        sender.publish(command_topic(TID, "req-after"), command_payload(),
                       qos=1).wait_for_publish(5)
    finally:
        sender.disconnect()
        sender.loop_stop()
    time.sleep(2.5)  # the first command's 1 s expiry passes (mosquitto counts whole seconds)
    returned = make_agent()
    returned.start()
    acks = parsed(AckPayload, acks_until_final(recorder, "req-after"))
    assert [a.status for a in acks] == ["accepted", "succeeded"]
    # A session's messages come in order: had req-expiring come, its acks would be here already.
    assert not [m for m in recorder.messages if m.topic == ack_topic(TID, "req-expiring")]
    # The broker's own word for how the terminal connected: MQTT 5 (p5), clean start off (c0).
    assert f"as {TID} (p5, c0" in mosquitto.log_path.read_text(encoding="utf-8")


def test_a_command_cut_short_by_a_shutdown_is_reported_failed_not_rerun(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow(_: NoArgs) -> dict[str, bool]:
        runs.append(1)
        started.set()
        release.wait(5)
        return {"done": True}

    agent = make_agent()
    agent.register_command("slow", NoArgs, slow)
    agent.start()
    recorder.wait_for(status_is(online=True))
    try:
        send_command(recorder, "req-slow", "slow")
        assert started.wait(5)
        agent.stop(timeout_s=1.2)  # the terminal goes down while the command runs
        restarted = make_agent()
        restarted.register_command("slow", NoArgs, slow)
        restarted.start()
        acks = acks_until_final(recorder, "req-slow")
        assert [(a.status, a.error) for a in parsed(AckPayload, acks)] == [
            ("accepted", None), ("failed", INTERRUPTED)
        ]
        send_command(recorder, "req-slow", "slow")
        again = acks_until_final(recorder, "req-slow", count=2)
        assert again[-1].payload == acks[-1].payload
        assert len(runs) == 1
    finally:
        release.set()


def test_handler_failures_are_reported_without_internal_details(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    def jam(_: NoArgs) -> None:
        raise CommandError("printer jammed")

    def crash(_: NoArgs) -> None:
        raise RuntimeError("internal detail that must not travel")

    agent = make_agent()
    agent.register_command("jam", NoArgs, jam)
    agent.register_command("crash", NoArgs, crash)
    agent.start()
    recorder.wait_for(status_is(online=True))
    send_command(recorder, "req-jam", "jam")
    send_command(recorder, "req-crash", "crash")
    jammed = parsed(AckPayload, acks_until_final(recorder, "req-jam"))
    crashed = parsed(AckPayload, acks_until_final(recorder, "req-crash"))
    assert [(a.status, a.error) for a in jammed] == [
        ("accepted", None), ("failed", "printer jammed")
    ]
    assert crashed[-1].status == "failed"
    assert crashed[-1].error == "internal error (RuntimeError)"


# --- privacy -------------------------------------------------------------------------------------

PERSON = {
    "id_number": "11010519491231002X",
    "name": "欧阳小明",
    "phone": "13812345678",
    "card_number": "A12345678",
    "bank_card": "6222021234567890123",
    "address": "浙江省瑞安市塘下镇人民路88号",
}


def test_no_personal_data_reaches_a_payload_a_log_or_the_state_dir(
    recorder: Recorder, make_agent: AgentFactory, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = make_agent()
    agent.register_command("lookup", NoArgs, lambda _: {"holder": PERSON["name"]})
    agent.start()
    recorder.wait_for(status_is(online=True))

    seq = agent.record_event(
        "rating_submitted", "info",
        level=5,
        name=PERSON["name"],
        id_number=PERSON["id_number"],
        note=PERSON["id_number"].lower(),
        contact_phone=PERSON["phone"],
        card=PERSON["card_number"],
        bank=PERSON["bank_card"],
        detail=f"lives at {PERSON['address']}",
        **{PERSON["name"]: 1},
    )
    send_command(recorder, "req-p1", "set_heartbeat_interval",
                 args={"interval_s": PERSON["id_number"]})
    send_command(recorder, "req-p2", raw=json.dumps(
        {"v": 1, "name": PERSON["name"], "args": {PERSON["phone"]: 1}}).encode())
    send_command(recorder, "req-p3", "lookup")
    for request_id in ("req-p1", "req-p2", "req-p3"):
        acks_until_final(recorder, request_id)

    _, message = recorder.wait_for(lambda m: m.topic == event_topic(TID))
    event = parse_payload(EventPayload, message.payload)
    assert event.seq == seq
    assert event.fields == {"level": 5, "dropped_fields": 8}  # the rating itself still travels
    assert parse_payload(AckPayload, recorder.all(ack_topic(TID, "req-p3"))[-1].payload
                         ).status == "failed"
    agent.stop()

    # Everything the terminal published (the test's own commands aside), logged or stored.
    published = [m for m in recorder.messages if parse_topic(m.topic).kind != "cmd"]
    assert {parse_topic(m.topic).kind for m in published} >= {"status", "heartbeat", "event", "ack"}
    haystacks = [m.topic.encode() + b" " + m.payload for m in published]
    haystacks.append(caplog.text.encode())
    haystacks += [p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for key, value in PERSON.items():
        for needle in {value.encode("utf-8"), value.encode("gb18030"), value.lower().encode()}:
            for haystack in haystacks:
                assert needle not in haystack, f"{key} leaked"

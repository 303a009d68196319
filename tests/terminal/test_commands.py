"""Commands (DESIGN 6): every one gets exactly one final ack, none runs twice, none is lost.

The dispatcher is driven directly (no broker: its one collaborator is the callable that publishes
an ack) for the rules on request ids, lifetimes and storage; then through a real mosquitto for
what only the wire shows: a burst of 10,000 commands, a full queue, and redelivery of commands
that a terminal received but had not made safe when it died.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mqtt_support import (
    TID,
    Recorder,
    acks_until_final,
    command_payload,
    fast_settings,
    parsed,
    send_command,
    status_is,
)

from contracts.mqtt import (
    COMMAND_LIFETIME_MAX,
    AckPayload,
    CommandPayload,
    command_topic,
    encode,
    parse_payload,
    parse_topic,
)
from devices.base import DeviceState
from simulator.broker import Mosquitto
from terminal.command_intake import BUSY
from terminal.commands import INTERRUPTED, CommandDispatcher, CommandLog, NoArgs
from terminal.telemetry import TelemetryAgent, TerminalSnapshot

NOW = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)


# --- the dispatcher alone ------------------------------------------------------------------------


class Terminal:
    """The dispatcher's surroundings: a clock that can be moved, the acks it sent, runs counted."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.now = NOW
        self.acks: list[tuple[str, AckPayload]] = []
        self.runs: Counter[str] = Counter()

    def dispatcher(self) -> CommandDispatcher:
        dispatcher = CommandDispatcher(self.state_dir / "commands.sqlite3", self.send,
                                       now=lambda: self.now)

        def count(_: NoArgs) -> dict[str, int]:
            self.runs["count"] += 1
            return {"runs": self.runs["count"]}

        dispatcher.register("count", NoArgs, count)
        dispatcher.register("ping", NoArgs, lambda _: {"pong": True})
        return dispatcher

    def send(self, request_id: str, ack_json: str) -> None:
        self.acks.append((request_id, parse_payload(AckPayload, ack_json)))

    def command(self, name: str = "count", *, expires_in: dt.timedelta = dt.timedelta(hours=1),
                args: dict[str, object] | None = None) -> bytes:
        return encode(CommandPayload(name=name, args=args or {},  # type: ignore[arg-type]
                                     expires_at=self.now + expires_in, ts=self.now))

    def finals(self, request_id: str) -> list[AckPayload]:
        return [ack for rid, ack in self.acks if rid == request_id and ack.final]


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    return Terminal(tmp_path)


def test_a_replay_after_many_other_commands_never_runs_again(terminal: Terminal) -> None:
    # Found by attack: only the last 256 request ids were remembered, so after 300 other commands
    # a replayed early one ran a second time.
    dispatcher = terminal.dispatcher()
    dispatcher.handle("req-first", terminal.command())
    for n in range(300):
        dispatcher.handle(f"req-{n}", terminal.command("ping"))
    dispatcher.handle("req-first", terminal.command())
    assert terminal.runs["count"] == 1
    first, replay = terminal.finals("req-first")
    assert replay == first and first.result == {"runs": 1}
    dispatcher.close()

    restarted = terminal.dispatcher()  # and after a restart
    terminal.now += dt.timedelta(minutes=59)
    restarted.handle("req-first", terminal.command())
    assert terminal.runs["count"] == 1
    assert terminal.finals("req-first")[-1] == first


def test_a_replay_after_its_command_expired_is_rejected_not_run(terminal: Terminal) -> None:
    dispatcher = terminal.dispatcher()
    payload = terminal.command(expires_in=dt.timedelta(minutes=5))
    dispatcher.handle("req-once", payload)
    terminal.now += dt.timedelta(days=3)  # long forgotten (kept until expiry plus a day)
    dispatcher.handle("req-once", payload)
    assert terminal.runs["count"] == 1
    assert terminal.finals("req-once")[-1].status == "rejected"
    assert "expired" in (terminal.finals("req-once")[-1].error or "")


@pytest.mark.parametrize(
    ("expires_in", "status"),
    [
        (COMMAND_LIFETIME_MAX, "succeeded"),
        (COMMAND_LIFETIME_MAX + dt.timedelta(seconds=1), "rejected"),
        (dt.timedelta(days=3_000_000), "rejected"),  # 9999-12-31: a request id kept for ever
    ],
)
def test_a_command_lives_at_most_seven_days(
    terminal: Terminal, expires_in: dt.timedelta, status: str
) -> None:
    far = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC)
    expires_at = far if expires_in > dt.timedelta(days=365) else terminal.now + expires_in
    payload = encode(CommandPayload(name="count", expires_at=expires_at, ts=terminal.now))
    terminal.dispatcher().handle("req-far", payload)
    (ack,) = terminal.finals("req-far")
    assert ack.status == status
    if status == "rejected":
        assert "more than 7 days ahead" in (ack.error or "")
        assert terminal.runs["count"] == 0


MALFORMED = [
    b'{"v": 1, "ts": "2026-12-06T04:00:00Z", "name": "ping", '
    b'"expires_at": "9999-12-31T23:59:59-00:01"}',
    b'{"v": 1, "ts": "2026-12-06T04:00:00Z", "name": "ping", '
    b'"expires_at": "0001-01-01T00:00:00+00:01"}',
    b"[" * 994 + b"]" * 994,
    b'{"v": 1, "n": ' + b"9" * 4301 + b"}",
    b"[" * 500_000 + b"]" * 500_000,  # 1 MB of nested lists
    b'{"v": 1.0, "ts": "2026-12-06T04:00:00Z", "name": "ping", '
    b'"expires_at": "2026-12-06T05:00:00Z"}',
    b'{"v": 1, "ts": "2026-12-06T04:00:00Z", "name": "ping", "args": {"x": NaN}, '
    b'"expires_at": "2026-12-06T05:00:00Z"}',
    b'{"v": 1, "name": "ping", "expires_at": "2026-12-06T05:00:00Z"}',
    b"\xff\xfe\x00",
    b"",
]


@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
def test_every_malformed_command_gets_one_clear_rejection(
    terminal: Terminal, payload: bytes
) -> None:
    # Each of these escaped as OverflowError, RecursionError or ValueError and got no ack at all,
    # or was taken although the contract forbids it.
    terminal.dispatcher().handle("req-bad", payload)
    (ack,) = terminal.finals("req-bad")
    assert ack.status == "rejected" and ack.error
    assert [rid for rid, _ in terminal.acks] == ["req-bad"]  # nothing else, no "accepted"


def test_without_storage_a_command_is_refused_rather_than_run_unremembered(
    terminal: Terminal,
) -> None:
    dispatcher = terminal.dispatcher()
    dispatcher.close()
    blocked = terminal.state_dir / "commands.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{blocked}{suffix}").unlink(missing_ok=True)
    blocked.mkdir()  # the store cannot be opened: as an unwritable disk answers
    dispatcher = terminal.dispatcher()
    dispatcher.handle("req-nostore", terminal.command())
    (ack,) = terminal.finals("req-nostore")
    assert ack.status == "rejected" and "storage unavailable" in (ack.error or "")
    assert terminal.runs["count"] == 0


def test_a_command_interrupted_by_a_restart_is_reported_failed(terminal: Terminal) -> None:
    log = CommandLog(terminal.state_dir / "commands.sqlite3", now=NOW.timestamp)
    accepted = json.dumps({"v": 1, "ts": "2026-12-06T04:00:00.000Z", "status": "accepted"})
    log.put("req-cut", accepted, final=False, keep_until=NOW.timestamp() + 3600)
    log.close()
    dispatcher = terminal.dispatcher()
    dispatcher.fail_unfinished()
    assert [(a.status, a.error) for a in terminal.finals("req-cut")] == [("failed", INTERRUPTED)]
    dispatcher.handle("req-cut", terminal.command())
    assert terminal.runs["count"] == 0


def test_the_json_log_of_earlier_versions_is_taken_over(terminal: Terminal) -> None:
    ack = json.dumps({"v": 1, "ts": "2026-12-06T04:00:00.000Z", "status": "succeeded",
                      "result": {"runs": 1}})
    legacy = terminal.state_dir / "mqtt_commands.json"
    legacy.write_text(json.dumps({"entries": [
        {"request_id": "req-old", "ack": ack, "final": True}]}))
    dispatcher = terminal.dispatcher()
    dispatcher.handle("req-old", terminal.command())
    assert terminal.runs["count"] == 0
    assert terminal.finals("req-old")[-1].result == {"runs": 1}
    assert not legacy.exists()


def test_a_damaged_command_log_is_set_aside(terminal: Terminal) -> None:
    (terminal.state_dir / "commands.sqlite3").write_bytes(os.urandom(8192))
    dispatcher = terminal.dispatcher()
    dispatcher.handle("req-1", terminal.command())
    assert terminal.finals("req-1")[-1].status == "succeeded"
    assert list(terminal.state_dir.glob("commands.sqlite3.damaged-*"))
    with sqlite3.connect(terminal.state_dir / "commands.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM command_acks").fetchone() == (1,)


# --- through a real mosquitto --------------------------------------------------------------------


def snapshot() -> TerminalSnapshot:
    return TerminalSnapshot("idle", {"card_reader": DeviceState.ok()},
                            {"sessions": 0, "completed_errands": 0, "receipts": 0,
                             "ratings": {}})


AgentFactory = Callable[..., TelemetryAgent]


@pytest.fixture
def make_agent(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[AgentFactory]:
    agents: list[TelemetryAgent] = []

    def make(**kwargs: object) -> TelemetryAgent:
        agent = TelemetryAgent(terminal_id=TID, site="test-site", version="1.2.3",
                               broker=fast_settings(mosquitto.port),
                               state_dir=tmp_path / "state", snapshot=snapshot,
                               **kwargs)  # type: ignore[arg-type]
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop(timeout_s=2)


@pytest.fixture
def recorder(mosquitto: Mosquitto) -> Iterator[Recorder]:
    rec = Recorder(mosquitto.port, client_id="fleet-commands")
    yield rec
    rec.close()


FLOOD = int(os.environ.get("KIOSK_COMMAND_FLOOD", "10000"))


@pytest.fixture
def roomy_broker() -> Iterator[Mosquitto]:
    """A broker that queues a whole burst for one client: mosquitto's default (1,000 beyond
    those in flight) would drop commands itself, and this test is about the terminal."""
    with Mosquitto(persistent=True, max_queued_messages=FLOOD * 3) as broker:
        yield broker


@pytest.mark.mosquitto
def test_a_burst_of_commands_gets_exactly_one_final_ack_each(
    tmp_path: Path, roomy_broker: Mosquitto
) -> None:
    # Found by attack: of 10,000 commands in a burst, 9,814 were PUBACKed by paho and then
    # dropped from a full queue, with no ack at all. Now a command is PUBACKed only once handled
    # (or answered "busy"), so every one gets one final ack.
    mosquitto = roomy_broker
    runs: Counter[int] = Counter()

    def count(_: NoArgs) -> dict[str, bool]:
        runs[1] += 1
        return {"ok": True}

    agent = TelemetryAgent(terminal_id=TID, site="test-site", version="1.2.3",
                           broker=fast_settings(mosquitto.port), state_dir=tmp_path / "state",
                           snapshot=snapshot)
    agent.register_command("count", NoArgs, count)
    agent.start()

    finals: Counter[str] = Counter()
    all_final = threading.Event()
    done = threading.Lock()
    expected = {f"flood-{n}" for n in range(FLOOD)}

    def on_ack(_c: object, _u: object, message: object) -> None:
        topic = parse_topic(message.topic)  # type: ignore[attr-defined]
        if parse_payload(AckPayload, message.payload).final:  # type: ignore[attr-defined]
            with done:
                finals[topic.request_id or ""] += 1
                if expected <= finals.keys():
                    all_final.set()

    import paho.mqtt.client as paho  # noqa: PLC0415

    fleet = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fleet-flood")
    fleet.on_message = on_ack
    fleet.max_inflight_messages_set(100)
    fleet.max_queued_messages_set(0)  # unbounded: the burst is the point
    fleet.connect("127.0.0.1", mosquitto.port)
    fleet.subscribe(f"kiosk/v1/{TID}/cmd/+/ack", qos=1)
    fleet.loop_start()
    try:
        time.sleep(0.5)  # the subscription is in place and the agent connected
        payload = command_payload("count", expires_in_s=600)
        started = time.monotonic()
        for n in range(FLOOD):
            fleet.publish(command_topic(TID, f"flood-{n}"), payload, qos=1)
        assert all_final.wait(240), f"{len(finals)} of {FLOOD} got a final ack"
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # a straggling second final ack would arrive now
        with done:
            assert set(finals) == expected
            assert max(finals.values()) == 1, "a command got two final acks"
        assert sum(runs.values()) <= FLOOD  # nothing ran twice
        print(f"\n{FLOOD} commands: every one got one final ack in {elapsed:.1f} s "
              f"({FLOOD / elapsed:.0f}/s); {sum(runs.values())} ran, "
              f"{FLOOD - sum(runs.values())} rejected busy")
    finally:
        fleet.loop_stop()
        fleet.disconnect()
        agent.stop()


@pytest.mark.mosquitto
def test_a_full_queue_answers_busy_never_silence(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    started, release = threading.Event(), threading.Event()
    runs: Counter[str] = Counter()

    def slow(_: NoArgs) -> dict[str, bool]:
        runs["slow"] += 1
        started.set()
        release.wait(10)
        return {"done": True}

    agent = make_agent(command_queue_max=2)
    agent.register_command("slow", NoArgs, slow)
    agent.register_command("count", NoArgs, lambda _: runs.update(["count"]))
    agent.start()
    recorder.wait_for(status_is(online=True))
    try:
        send_command(recorder, "req-slow", "slow")
        assert started.wait(5)
        for n in range(10):  # mosquitto hands over up to 20 unacknowledged at a time
            send_command(recorder, f"req-{n}", "count")
        time.sleep(0.5)  # all ten delivered while the slow one runs
        release.set()
        statuses = {}
        for n in range(10):
            (final,) = [a for a in parsed(AckPayload, acks_until_final(recorder, f"req-{n}"))
                        if a.final]
            statuses[n] = (final.status, final.error)
        rejected = [n for n, (status, _) in statuses.items() if status == "rejected"]
        assert len(rejected) == 8, statuses  # two waited in the queue, the rest were told
        assert all(error == BUSY for status, error in statuses.values() if status == "rejected")
        assert runs["count"] == 2 and runs["slow"] == 1
    finally:
        release.set()


@pytest.mark.mosquitto
def test_commands_received_but_not_yet_handled_are_redelivered_after_a_crash(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    # The first agent is stuck in a slow command when it goes down; two more commands wait in
    # its queue, received but never acknowledged to the broker, so the broker hands them to the
    # next start instead of their being lost with the old process's memory.
    started = threading.Event()
    runs: Counter[str] = Counter()

    def stuck(_: NoArgs) -> dict[str, bool]:
        runs["stuck"] += 1
        started.set()
        threading.Event().wait(3)
        return {}

    first = make_agent()
    first.register_command("stuck", NoArgs, stuck)
    first.start()
    recorder.wait_for(status_is(online=True))
    send_command(recorder, "req-stuck", "stuck")
    assert started.wait(5)
    send_command(recorder, "req-a", "ping")
    send_command(recorder, "req-b", "ping")
    time.sleep(0.3)  # both delivered to the first agent, waiting behind the stuck one
    first.stop(timeout_s=1.0)

    second = make_agent()
    second.start()
    for request_id in ("req-a", "req-b"):
        acks = parsed(AckPayload, acks_until_final(recorder, request_id))
        assert [a.status for a in acks] == ["accepted", "succeeded"]
    stuck_acks = [a for a in parsed(AckPayload, acks_until_final(recorder, "req-stuck"))
                  if a.final]
    assert (stuck_acks[0].status, stuck_acks[0].error) == ("failed", INTERRUPTED)
    assert runs["stuck"] == 1


@pytest.mark.mosquitto
def test_an_oversized_command_is_rejected_unread(
    recorder: Recorder, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    agent.start()
    recorder.wait_for(status_is(online=True))
    huge = b'{"v": 1, "pad": "' + b"x" * 200_000 + b'"}'
    send_command(recorder, "req-huge", raw=huge)
    (ack,) = parsed(AckPayload, acks_until_final(recorder, "req-huge"))
    assert ack.status == "rejected" and "larger than 65536 bytes" in (ack.error or "")

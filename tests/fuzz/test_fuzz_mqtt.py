"""Fuzz: MQTT payloads and topics of contract v1, and commands end to end through the dispatcher.

What may come out: ``PayloadError`` from ``parse_payload``, ``TopicError`` from ``parse_topic``,
nothing at all from event screening and from ``CommandDispatcher.handle`` (which answers every
command, however broken, with exactly one final ack and never runs one twice).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import TopicError
from contracts.mqtt import (
    AckPayload,
    AnyPayload,
    CommandPayload,
    EventPayload,
    HeartbeatPayload,
    OtaPayload,
    PayloadError,
    StatusPayload,
    Topic,
    ack_topic,
    command_topic,
    event_topic,
    heartbeat_topic,
    ota_topic,
    parse_payload,
    parse_topic,
    status_topic,
)
from contracts.personal import screen_event_fields
from terminal.commands import CommandDispatcher, NoArgs, result_problem

MODELS: tuple[type[AnyPayload], ...] = (StatusPayload, HeartbeatPayload, EventPayload,
                                         CommandPayload, AckPayload, OtaPayload)

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=40))
# Small trees: hypothesis spends most of a property's time generating deep recursive values, and
# depth is better covered by the token soup below, which costs almost nothing to generate.
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
_TOKENS = ('{', '}', '[', ']', ',', ':', '"v"', '"ts"', '"name"', '"args"', '"expires_at"',
           '"ping"', '1', '1.0', '-0', '1e999', 'NaN', '-Infinity', 'true', 'null', '"\\ud800"',
           '"2026-12-06T04:00:00Z"', '"9999-12-31T23:59:59-00:01"', '9' * 30, '"x"', ' ')
json_soup = st.lists(st.sampled_from(_TOKENS), max_size=60).map(lambda t: "".join(t).encode())


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    """ISO 8601 times anywhere in the calendar with any offset (the OverflowError was here)."""
    moment = draw(st.datetimes(min_value=dt.datetime(1, 1, 1),
                               max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
    offset = draw(st.sampled_from(["Z", "+00:00", ""]) | st.integers(-1439, 1439).map(
        lambda m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"))
    return moment.isoformat() + offset


@st.composite
def command_documents(draw: st.DrawFn) -> bytes:
    """Commands close enough to valid that most of them reach the dispatcher's later checks."""
    document: dict[str, Any] = {}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "v": st.sampled_from([1, 1, 1, 1.0, True, "1", 2, None]),
        "ts": iso_times() | json_scalars,
        "name": st.sampled_from(["ping", "count", "boom", "set_heartbeat_interval"])
        | st.text(max_size=20),
        "args": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        "expires_at": iso_times() | json_scalars,
    }
    for key, strategy in fields.items():
        if draw(st.integers(0, 9)):  # now and then a field is missing
            document[key] = draw(strategy)
    if draw(st.booleans()):
        document[draw(st.text(max_size=10))] = draw(json_values)  # a stray field
    text = json.dumps(document, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # and now and then bytes are broken on the way
        raw = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 4))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    return text.encode()


payloads = st.binary(max_size=300) | command_documents() | json_soup | json_values.map(
    lambda value: json.dumps(value, allow_nan=True).encode())


@given(raw=payloads, model=st.sampled_from(MODELS))
def test_parse_payload_raises_only_payload_error(raw: bytes, model: type[AnyPayload]) -> None:
    try:
        parsed = parse_payload(model, raw)
    except PayloadError as error:
        assert error.message
        return
    assert isinstance(parsed, model)


SINGLE_LEVEL_KINDS = ("status", "heartbeat", "event", "ota")


@given(tid=st.text(max_size=70), rid=st.text(max_size=70), junk=st.text(max_size=80),
       kind=st.integers(0, 6))
def test_parse_topic_raises_only_topic_error_and_round_trips(
    tid: str, rid: str, junk: str, kind: int
) -> None:
    if kind < len(SINGLE_LEVEL_KINDS):
        candidate = f"kiosk/v1/{tid}/{SINGLE_LEVEL_KINDS[kind]}"
    elif kind == 4:
        candidate = f"kiosk/v1/{tid}/cmd/{rid}"
    elif kind == 5:
        candidate = f"kiosk/v1/{tid}/cmd/{rid}/ack"
    else:
        candidate = junk
    try:
        topic = parse_topic(candidate)
    except TopicError:
        return
    assert isinstance(topic, Topic)
    rebuilt = {
        "status": status_topic, "heartbeat": heartbeat_topic, "event": event_topic,
        "ota": ota_topic,
    }
    if topic.kind in rebuilt:
        assert rebuilt[topic.kind](topic.terminal_id) == candidate
    elif topic.kind == "cmd":
        assert command_topic(topic.terminal_id, topic.request_id or "") == candidate
    else:
        assert ack_topic(topic.terminal_id, topic.request_id or "") == candidate


field_values = json_scalars | st.sampled_from(
    ["110105194912310021", "13812345678", "张三", "A12345678", "6222021234567890123", [1], {}])


@given(fields=st.dictionaries(st.text(max_size=45) | st.sampled_from(
    ["reason", "device", "name", "seq", "holder_name", "lines", "note"]),
    field_values, max_size=40))
def test_screened_event_fields_are_always_accepted_by_the_contract(
    fields: dict[str, Any]
) -> None:
    # Whatever the screen keeps, the contract takes: an event never fails to be built after it.
    screened = screen_event_fields(fields)
    event = EventPayload.model_validate(
        {"seq": 1, "type": "fuzz_event", "severity": "info", **screened.with_dropped_count()})
    assert len(event.fields) <= len(fields) + 1


@given(result=json_values)
def test_result_screening_never_raises(result: Any) -> None:
    problem = result_problem(result)
    assert problem is None or isinstance(problem, str)


# --- commands end to end through one dispatcher ------------------------------------------------

_STATE = Path(tempfile.mkdtemp(prefix="kiosk-fuzz-commands-"))
_ACKS: list[tuple[str, str]] = []
_RUNS: Counter[str] = Counter()
_REQUEST_IDS = itertools.count()


def _boom(_: NoArgs) -> None:
    raise RuntimeError("a handler bug")


def _dispatcher() -> CommandDispatcher:
    dispatcher = CommandDispatcher(_STATE / "commands.sqlite3",
                                   lambda rid, ack: _ACKS.append((rid, ack)))
    dispatcher.register("ping", NoArgs, lambda _: {"pong": True})
    dispatcher.register("count", NoArgs, lambda _: _RUNS.update(["count"]))
    dispatcher.register("boom", NoArgs, _boom)
    return dispatcher


_DISPATCHER = _dispatcher()


@given(raw=payloads, replays=st.integers(1, 3))
def test_every_command_gets_exactly_one_final_ack_and_runs_at_most_once(
    raw: bytes, replays: int
) -> None:
    request_id = f"fuzz-{next(_REQUEST_IDS)}"
    runs_before = _RUNS["count"]
    for _ in range(replays):  # the same request id again: answered, never run again
        del _ACKS[:]
        _DISPATCHER.handle(request_id, raw)
        acks = [parse_payload(AckPayload, ack) for rid, ack in _ACKS if rid == request_id]
        assert [ack.final for ack in acks].count(True) == 1, acks
        assert acks[-1].final
    assert _RUNS["count"] - runs_before <= 1

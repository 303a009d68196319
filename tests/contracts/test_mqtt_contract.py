"""Contract v1 (DESIGN 6): topics, payload models, the parse helper and the personal-data screen."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from contracts.identifiers import TopicError, check_site, check_terminal_id
from contracts.mqtt import (
    COMMAND_LIFETIME_MAX,
    AckPayload,
    CommandPayload,
    Counters,
    DeviceReport,
    EventPayload,
    HeartbeatPayload,
    OtaPayload,
    PayloadError,
    StatusPayload,
    SystemFigures,
    Topic,
    ack_topic,
    command_filter,
    command_topic,
    encode,
    event_topic,
    heartbeat_topic,
    ota_topic,
    parse_payload,
    parse_topic,
    status_topic,
)
from contracts.personal import personal_data_reason, screen_event_fields

TID = "T-330300-0001"
NOW = dt.datetime(2024, 6, 1, 8, 30, tzinfo=dt.UTC)

# A test person; none of this may ever be accepted into an event.
PERSON_ID = "11010519491231002X"
PERSON_NAME = "张三丰"
PERSON_PHONE = "13812345678"
PERSON_CARD = "A12345678"
PERSON_BANK_CARD = "6222021234567890123"
PERSON_ADDRESS = "北京市东城区景山前街4号"


def heartbeat(**overrides: object) -> HeartbeatPayload:
    fields: dict[str, object] = {
        "seq": 7,
        "interval_s": 30,
        "uptime_s": 12.5,
        "state": "idle",
        "version": "1.2.0",
        "devices": {"printer": DeviceReport(state="degraded", reason="paper_near_end")},
        "system": SystemFigures(cpu_pct=12.5, mem_pct=40.0, disk_free_mb=900, temp_c=None),
        "outbox": 0,
        "counters": Counters(sessions=3, completed_errands=2, receipts=2, ratings={"5": 2}),
    }
    fields.update(overrides)
    return HeartbeatPayload.model_validate(fields)


def command_json(*, version: str = "1", ts: str | None = "2024-06-01T08:30:00Z",
                 args: str = "{}", expires_at: str = "2024-06-01T08:31:00Z") -> bytes:
    """A command payload written by hand, so each part can be what no encoder would write."""
    stamp = f'"ts": "{ts}", ' if ts is not None else ""
    return (f'{{"v": {version}, {stamp}"name": "ping", "args": {args}, '
            f'"expires_at": "{expires_at}"}}').encode()


def test_topics_are_the_contract_ones() -> None:
    assert status_topic(TID) == "kiosk/v1/T-330300-0001/status"
    assert heartbeat_topic(TID) == "kiosk/v1/T-330300-0001/heartbeat"
    assert event_topic(TID) == "kiosk/v1/T-330300-0001/event"
    assert ota_topic(TID) == "kiosk/v1/T-330300-0001/ota"
    assert command_topic(TID, "r-1") == "kiosk/v1/T-330300-0001/cmd/r-1"
    assert ack_topic(TID, "r-1") == "kiosk/v1/T-330300-0001/cmd/r-1/ack"
    assert command_filter(TID) == "kiosk/v1/T-330300-0001/cmd/+"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "T#1", "x" * 65, "终端", "终端1", "T1\n"])
def test_ids_that_would_break_topics_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        status_topic(bad)
    with pytest.raises(TopicError):
        command_topic(TID, bad)
    with pytest.raises(TopicError):
        check_terminal_id(bad)


def test_a_site_is_one_to_64_printable_characters() -> None:
    assert check_site("瑞安市塘下镇便民服务中心") == "瑞安市塘下镇便民服务中心"
    assert check_site("x" * 64) == "x" * 64
    for bad in ("", "x" * 65, "tab\there", "new\nline"):
        with pytest.raises(ValueError, match="site"):
            check_site(bad)


def test_parse_topic_round_trips_and_refuses_others() -> None:
    assert parse_topic(status_topic(TID)) == Topic(TID, "status")
    assert parse_topic(command_topic(TID, "abc")) == Topic(TID, "cmd", "abc")
    assert parse_topic(ack_topic(TID, "abc")) == Topic(TID, "ack", "abc")
    for topic in ("kiosk/v2/T1/status", "kiosk/v1/T1/other", "kiosk/v1/T1/cmd", "kiosk/v1/T1"):
        with pytest.raises(TopicError):
            parse_topic(topic)


def test_every_payload_has_version_and_utc_timestamp() -> None:
    beijing = dt.timezone(dt.timedelta(hours=8))
    status = StatusPayload(online=True, bdseq=3, boot_id="b", version="1.0", site="s",
                           started_at=NOW, ts=dt.datetime(2024, 6, 1, 16, 30, tzinfo=beijing))
    document = json.loads(encode(status))
    assert document["v"] == 1
    # An offset time is normalised to UTC and written with Z.
    assert document["ts"] == "2024-06-01T08:30:00.000Z"
    assert document["started_at"] == "2024-06-01T08:30:00.000Z"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError):
        StatusPayload(online=True, bdseq=1, boot_id="b", version="1", site="s",
                      started_at=dt.datetime(2024, 6, 1, 8, 30))


def test_heartbeat_round_trips_with_all_rating_levels() -> None:
    original = heartbeat()
    parsed = parse_payload(HeartbeatPayload, encode(original))
    assert parsed == original
    document = json.loads(encode(original))
    assert document["counters"]["ratings"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 2}
    assert document["system"]["temp_c"] is None  # unknown is null, not missing
    assert document["devices"] == {"printer": {"state": "degraded", "reason": "paper_near_end"}}


@pytest.mark.parametrize(
    "overrides",
    [
        {"state": "sleeping"},
        {"seq": -1},
        {"interval_s": 0},
        {"devices": {"Printer!": DeviceReport(state="ok")}},
        {"unexpected": 1},
    ],
)
def test_heartbeat_is_closed_and_checked(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        heartbeat(**overrides)


def test_counters_refuse_unknown_rating_levels() -> None:
    with pytest.raises(ValidationError):
        Counters(sessions=0, completed_errands=0, receipts=0, ratings={"6": 1})  # type: ignore[dict-item]


def test_event_carries_scalar_type_specific_fields() -> None:
    event = EventPayload.model_validate(
        {"seq": 4, "type": "door_opened", "severity": "warning", "door": "cabinet", "count": 2}
    )
    assert event.fields == {"door": "cabinet", "count": 2}
    assert parse_payload(EventPayload, encode(event)) == event
    with pytest.raises(ValidationError):
        EventPayload.model_validate({"seq": 1, "type": "x", "severity": "info", "a": [1, 2]})
    with pytest.raises(ValidationError):
        EventPayload.model_validate({"seq": 1, "type": "x", "severity": "loud"})
    for not_json in (float("nan"), float("inf"), 2**64):
        with pytest.raises(ValidationError):
            EventPayload.model_validate({"seq": 1, "type": "x", "severity": "info",
                                         "n": not_json})


def test_screening_keeps_what_may_travel_and_counts_the_rest() -> None:
    screened = screen_event_fields({"reason": "paper_out", "holder_name": "x", "note": PERSON_ID,
                                    "seq": 5, "ratio": float("nan"), "lines": 3})
    assert screened.kept == {"reason": "paper_out", "lines": 3}
    assert screened.with_dropped_count() == {"reason": "paper_out", "lines": 3,
                                             "dropped_fields": 4}
    assert not any(PERSON_ID in problem for problem in screened.problems)
    many = screen_event_fields({f"f{i}": i for i in range(40)})
    event = EventPayload.model_validate({"seq": 1, "type": "x", "severity": "info",
                                         **many.with_dropped_count()})
    assert len(event.fields) == 32  # the contract's limit, dropped_fields included


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", "x"),
        ("holder_name", "x"),
        ("id_number", "x"),
        ("card_no", "x"),
        ("phone", "x"),
        ("note", PERSON_ID),
        ("note", f"reader saw {PERSON_ID.lower()} today"),
        ("note", "110105491231002"),
        ("note", PERSON_PHONE),
        ("note", int(PERSON_PHONE)),
        ("note", PERSON_CARD),
        ("note", PERSON_BANK_CARD),
        ("note", PERSON_NAME),
        ("note", PERSON_ADDRESS),
        # Found by fuzzing: a non-ASCII digit beside the number hid it.
        ("note", PERSON_PHONE + "٠"),
        ("note", "٠" + PERSON_BANK_CARD),
    ],
)
def test_personal_looking_event_fields_are_refused(key: str, value: object) -> None:
    reason = personal_data_reason(key, value)
    assert reason is not None
    assert str(value) not in reason  # the reason may be logged: it never repeats the value
    with pytest.raises(ValidationError):
        EventPayload.model_validate({"seq": 1, "type": "x", "severity": "info", key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("reason", "paper_out"), ("level", 5), ("duration_ms", 1234), ("at", "20240601T083000"),
     ("device", "printer"), ("ok", True), ("ratio", 0.5)],
)
def test_ordinary_event_fields_pass(key: str, value: object) -> None:
    assert personal_data_reason(key, value) is None


def test_command_needs_expiry_and_knows_when_it_expired() -> None:
    command = CommandPayload(name="ping", expires_at=NOW)
    assert command.args == {}
    assert command.expired(NOW)
    assert not command.expired(NOW - dt.timedelta(seconds=1))
    assert not command.too_far_ahead(NOW - COMMAND_LIFETIME_MAX)
    assert command.too_far_ahead(NOW - COMMAND_LIFETIME_MAX - dt.timedelta(seconds=1))
    with pytest.raises(PayloadError, match="expires_at"):
        parse_payload(CommandPayload, b'{"v": 1, "ts": "2024-06-01T08:30:00Z", "name": "ping"}')


def test_ack_says_why_unless_it_succeeded() -> None:
    assert AckPayload(status="succeeded", result={"pong": True}).final
    assert not AckPayload(status="accepted").final
    with pytest.raises(ValidationError):
        AckPayload(status="rejected")
    with pytest.raises(ValidationError):
        AckPayload(status="succeeded", error="but it did not")


def test_ota_state_details() -> None:
    assert OtaPayload(state="downloading", version="1.3.0", percent=40).percent == 40
    with pytest.raises(ValidationError):
        OtaPayload(state="downloading", version="1.3.0")
    with pytest.raises(ValidationError):
        OtaPayload(state="rolled_back", version="1.3.0")
    with pytest.raises(ValidationError):
        OtaPayload(state="flashing")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"name": "ping"}', "missing contract version"),
        (b'{"v": 2, "name": "ping"}', "unsupported contract version 2"),
        (b'{"v": "1"}', "unsupported contract version str"),
        (b'{"v": 1, "ts": "2024-06-01T08:30:00Z", "name": "Ping!", '
         b'"expires_at": "2024-06-01T08:31:00Z"}', "name"),
        (b'{"v": 1, "ts": "2024-06-01T08:30:00Z", "name": "ping", "expires_at": "soon"}',
         "expires_at"),
        (b'{"v": 1, "ts": "2024-06-01T08:30:00Z", "name": "ping", "surprise": 1, '
         b'"expires_at": "2024-06-01T08:31:00Z"}', "surprise"),
        # Found by fuzzing: each of these escaped as OverflowError, RecursionError or ValueError,
        # or was taken although the contract forbids it.
        (command_json(expires_at="9999-12-31T23:59:59-00:01"), "out of range"),
        (command_json(expires_at="0001-01-01T00:00:00+00:01"), "out of range"),
        (command_json(args='{"a": ' + "[" * 994 + "]" * 994 + "}"), "nested deeper"),
        (command_json(args='{"a": ' + "9" * 4301 + "}"), "4301 digits"),
        (command_json(args='{"a": NaN}'), "NaN is not a JSON number"),
        (command_json(args='{"a": -Infinity}'), "Infinity is not a JSON number"),
        (command_json(args='{"a": 1e999}'), "out of range"),
        (command_json(args="[" + "[1]," * 250_000 + "1]"), "larger than 65536 bytes"),
        (command_json(version="1.0"), "unsupported contract version float"),
        (command_json(version="true"), "unsupported contract version bool"),
        (command_json(ts=None), "missing timestamp 'ts'"),
        (command_json().replace(b'"name": "ping"', b'"name": "ping", "name": "restart_app"'),
         "repeated key"),
    ],
)
def test_parse_turns_bad_input_into_a_clear_typed_error(raw: bytes, message: str) -> None:
    # Everything else than PayloadError (RecursionError, OverflowError, ValueError) fails here.
    with pytest.raises(PayloadError) as caught:
        parse_payload(CommandPayload, raw)
    assert message in caught.value.message


def test_a_lawful_command_parses() -> None:
    command = parse_payload(CommandPayload, command_json(args='{"interval_s": 60}'))
    assert (command.name, command.args) == ("ping", {"interval_s": 60})


def test_parse_errors_never_echo_the_input() -> None:
    raw = json.dumps({"v": 1, "ts": "2024-06-01T08:30:00Z", "name": "ping",
                      "expires_at": PERSON_ID, "args": {"who": PERSON_NAME}, PERSON_PHONE: 1})
    with pytest.raises(PayloadError) as caught:
        parse_payload(CommandPayload, raw)
    for secret in (PERSON_ID, PERSON_NAME, PERSON_PHONE):
        assert secret not in caught.value.message
    assert "<key>" in caught.value.message  # the unexpected key is reported, not repeated

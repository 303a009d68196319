"""Each message on the contract's topics becomes one typed record or a refusal with a reason, and
a refusal's message never repeats what the payload said."""

from __future__ import annotations

import json

import pytest
from fleet_support import at, event, heartbeat, status

from contracts.mqtt import encode
from fleet.ingest import Event, Heartbeat, Refusal, RefusalReason, Status, read_message


def test_a_terminal_s_messages_become_records() -> None:
    birth = read_message("kiosk/v1/kiosk-0001/status", encode(status(True, 1)), at(0),
                         retained=True)
    beat = read_message("kiosk/v1/kiosk-0001/heartbeat", encode(heartbeat(3)), at(1))
    news = read_message("kiosk/v1/kiosk-0001/event", encode(event(9)), at(2))
    assert isinstance(birth, Status) and birth.tid == "kiosk-0001" and birth.payload.bdseq == 1
    assert isinstance(beat, Heartbeat) and beat.payload.seq == 3 and beat.received == at(1)
    assert isinstance(news, Event) and news.payload.type == "paper_low"


@pytest.mark.parametrize(("topic", "payload", "retained", "reason"), [
    ("kiosk/v2/kiosk-0001/heartbeat", b"{}", False, RefusalReason.BAD_TOPIC),
    ("kiosk/v1/kiosk 0001/heartbeat", b"{}", False, RefusalReason.BAD_TOPIC),
    ("kiosk/v1/kiosk-0001/whatever", b"{}", False, RefusalReason.BAD_TOPIC),
    ("kiosk/v1/kiosk-0001/cmd/req-1", b"{}", False, RefusalReason.OWN_COMMAND),
    ("kiosk/v1/kiosk-0001/heartbeat", b"not json", False, RefusalReason.CONTRACT),
    ("kiosk/v1/kiosk-0001/heartbeat", encode(status(True, 1)), False, RefusalReason.CONTRACT),
    ("kiosk/v1/kiosk-0001/heartbeat", encode(heartbeat(1)), True, RefusalReason.RETAINED),
])
def test_what_breaks_the_contract_is_refused_with_a_reason(
        topic: str, payload: bytes, retained: bool, reason: RefusalReason) -> None:
    refused = read_message(topic, payload, at(0), retained=retained)
    assert isinstance(refused, Refusal) and refused.reason is reason
    assert refused.message


def test_a_refusal_names_the_rule_not_the_values() -> None:
    document = json.loads(encode(heartbeat(1)))
    document["state"] = "张三 110101199003074514"
    refused = read_message("kiosk/v1/kiosk-0001/heartbeat", json.dumps(document).encode(), at(0))
    assert isinstance(refused, Refusal) and refused.tid == "kiosk-0001"
    assert "张三" not in refused.message and "1101" not in refused.message
    assert "state" in refused.message


def test_an_event_with_a_personal_field_is_refused() -> None:
    document = json.loads(encode(event(1)))
    document["phone"] = "13800138000"
    refused = read_message("kiosk/v1/kiosk-0001/event", json.dumps(document).encode(), at(0))
    assert isinstance(refused, Refusal) and refused.reason is RefusalReason.CONTRACT
    assert "13800138000" not in refused.message

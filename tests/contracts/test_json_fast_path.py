"""The JSON reader's fast path (no number hooks) refuses and takes exactly what the checking one
does: fuzzed texts through ``load_json_object`` against the reader as it was, json.loads with
every hook on every call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts import mqtt
from contracts.mqtt import (
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    Counters,
    DeviceReport,
    HeartbeatPayload,
    PayloadError,
    SystemFigures,
    encode,
    load_json_object,
    parse_payload,
)


def reference(raw: bytes | str) -> dict[str, Any]:
    """load_json_object before the fast path: a decoder with every hook, built per call."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError("payload is not UTF-8") from None
    else:
        text = raw
        if len(text.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
            raise PayloadError(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    if mqtt._nesting_too_deep(text):
        raise PayloadError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document: Any = json.loads(text, parse_constant=mqtt._refuse_constant,
                                   parse_int=mqtt._bounded_int, parse_float=mqtt._bounded_float,
                                   object_pairs_hook=mqtt._unique_keys)
    except mqtt._Refused as e:
        raise PayloadError(f"malformed JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise PayloadError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object")
    return document


def outcome(read: Any, raw: bytes | str) -> tuple[str, str]:
    """What reading ``raw`` gives, comparable: the document's exact JSON, or the refusal."""
    try:
        document = read(raw)
    except PayloadError as e:
        return "refused", e.message
    # repr tells 1 from 1.0, -0.0 from 0.0 and keeps the order of keys.
    return "taken", repr(document)


# Number spellings around the two limits: an exponent (a float may overflow) and 40 characters.
numbers = st.one_of(
    st.integers(min_value=-(10**45), max_value=10**45).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-99, 99), st.integers(-400, 400)),
    st.builds(lambda m, e: f"{m}E+{e}", st.integers(0, 9), st.integers(0, 400)),
    st.integers(1, 60).map(lambda n: "9" * n),
    st.integers(1, 60).map(lambda n: "0." + "1" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "-0.0", "1.5e308", "2e308"]),
)
keys = st.sampled_from(["v", "ts", "seq", "a", "e", "E", "1e5", "x" * 41, "9" * 41, "é"])
strings = st.one_of(st.text(max_size=50), st.sampled_from(["1e5", "9" * 41, "Infinity", "2e"]))


def documents() -> st.SearchStrategy[str]:
    scalars = st.one_of(numbers, strings.map(json.dumps), st.sampled_from(["true", "null"]))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
            # Lists of pairs, not dicts: a key may come twice.
            st.lists(st.tuples(keys, inner), max_size=5).map(
                lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}")),
        max_leaves=12)


@settings(max_examples=1500)
@given(documents(), st.booleans())
@example("{" + '"a": ' + "1" * 41 + "}", True)
@example('{"a": 1e999}', True)
@example('{"a": 1E5}', False)
@example('{"a": "1e999", "b": 1}', True)
@example('{"a": -0.0, "b": 0.0000000000000000000000000000000000001}', True)
@example("\ufeff{}", False)
@example('{"a": 1, "a": 2}', True)
def test_fast_and_checking_readers_agree(text: str, as_bytes: bool) -> None:
    raw: bytes | str = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(load_json_object, raw) == outcome(reference, raw)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_readers_agree_on_any_bytes(raw: bytes) -> None:
    assert outcome(load_json_object, raw) == outcome(reference, raw)


def test_a_heartbeat_takes_the_fast_path() -> None:
    beat = HeartbeatPayload(
        seq=41, interval_s=30.0, uptime_s=86399.25, state="idle", version="1.2.0",
        devices={"printer": DeviceReport(state="degraded", reason="paper_near_end")},
        system=SystemFigures(cpu_pct=12.5, mem_pct=40.0, disk_free_mb=900, temp_c=48.5),
        outbox=3, counters=Counters(sessions=3, completed_errands=2, receipts=2, ratings={}))
    raw = encode(beat)
    assert mqtt._decoder_for(raw) is mqtt._PLAIN_NUMBER_DECODER
    assert parse_payload(HeartbeatPayload, raw) == beat


@pytest.mark.parametrize("text", [
    '{"a": 1e5}', '{"a": 0.5E-3}', '{"a": ' + "7" * 41 + "}", '{"s": "' + "1" * 41 + '"}',
    '{"s": "v2e"}',
])
def test_what_might_need_a_number_hook_takes_the_checking_decoder(text: str) -> None:
    assert mqtt._decoder_for(text.encode()) is mqtt._CHECKING_DECODER

"""The SSSE card protocol, pure: APDU bytes, T=0 status words, TLV records, fields, and a replay
of a recorded exchange (tests/fixtures/card/ssse_read.trace) byte for byte."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from pathlib import Path

import pytest

from devices.base import CardDataInvalid, CardHolder, Sex, UnsupportedCard
from devices.card import protocol

TRACE = Path(__file__).parent.parent / "fixtures" / "card" / "ssse_read.trace"

# The synthetic person on the recorded card (see the trace's header).
TRACE_ID_NUMBER = "11010519491231002X"
TRACE_NAME = "张三"


def load_trace(path: Path) -> list[tuple[bytes, bytes]]:
    """``> command`` / ``< response`` hex lines, in pairs; ``#`` lines are comments."""
    pairs: list[tuple[bytes, bytes]] = []
    command: bytes | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        direction, hex_bytes = line.split(maxsplit=1)
        data = bytes.fromhex(hex_bytes)
        if direction == ">":
            assert command is None, "two commands in a row"
            command = data
        else:
            assert direction == "<" and command is not None, "response without a command"
            pairs.append((command, data))
            command = None
    assert command is None, "trace ends with an unanswered command"
    return pairs


def run_session(
    session: Generator[bytes, bytes, CardHolder], answers: list[tuple[bytes, bytes]]
) -> CardHolder:
    """Drive a protocol session against scripted (expected command, response) pairs."""
    command = next(session)
    for index, (expected, response) in enumerate(answers):
        assert command.hex().upper() == expected.hex().upper(), f"command {index}"
        try:
            command = session.send(response)
        except StopIteration as finished:
            assert index == len(answers) - 1, "session ended before the script"
            holder: CardHolder = finished.value
            return holder
    raise AssertionError(f"session wanted more: {command.hex().upper()}")


def record(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


# --- APDUs ------------------------------------------------------------------------------------


def test_select_ssse_is_the_fixed_aid_by_df_name() -> None:
    assert protocol.select_ssse().hex().upper() == "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
    assert protocol.SSSE_AID.decode("gbk") == "sx1.sh.社会保障"


def test_select_ef_read_record_and_get_response_bytes() -> None:
    assert protocol.select_ef(0xEF05).hex().upper() == "00A4020002EF05"
    assert protocol.select_ef(0xEF06).hex().upper() == "00A4020002EF06"
    # READ RECORD by identifier: P1 = tag, P2 = 00; Le = 2 (tag, length) + value length.
    assert protocol.read_record(0x09, 0x20).hex().upper() == "00B2090020"
    assert protocol.get_response(0x13).hex().upper() == "00C0000013"
    assert protocol.get_response(0x00).hex().upper() == "00C0000000"  # 00 = 256 on T=0


def test_with_le_only_rewrites_a_short_case_2_command() -> None:
    assert protocol.with_le(bytes.fromhex("00B2090020"), 0x16).hex().upper() == "00B2090016"
    with pytest.raises(ValueError):
        protocol.with_le(protocol.select_ssse(), 0x10)


# --- T=0 status words -------------------------------------------------------------------------


def test_61xx_asks_for_get_response_with_that_length() -> None:
    step = protocol.t0_next(protocol.select_ssse(), protocol.Response(b"", 0x61, 0x13))
    assert step == protocol.GetResponse(bytes.fromhex("00C0000013"))


def test_6cxx_resends_the_same_command_with_the_right_le() -> None:
    step = protocol.t0_next(bytes.fromhex("00B2090020"), protocol.Response(b"", 0x6C, 0x16))
    assert step == protocol.Resend(bytes.fromhex("00B2090016"))


def test_6cxx_to_a_command_without_le_and_other_words_are_final() -> None:
    assert protocol.t0_next(protocol.select_ef(0xEF05), protocol.Response(b"", 0x6C, 2)) is None
    assert protocol.t0_next(b"\x00\xb2\x01\x00\x12", protocol.Response(b"", 0x90, 0x00)) is None
    assert protocol.t0_next(protocol.select_ssse(), protocol.Response(b"", 0x6A, 0x82)) is None


def test_exchange_chains_get_responses_and_keeps_all_data() -> None:
    exchange = protocol.t0_exchange(bytes.fromhex("00B2010012"))
    assert next(exchange).hex().upper() == "00B2010012"
    assert exchange.send(bytes.fromhex("6C04")).hex().upper() == "00B2010004"
    assert exchange.send(bytes.fromhex("AABB6102")).hex().upper() == "00C0000002"
    with pytest.raises(StopIteration) as finished:
        exchange.send(bytes.fromhex("CCDD9000"))
    assert finished.value.value == protocol.Response(bytes.fromhex("AABBCCDD"), 0x90, 0x00)


def test_a_card_that_never_stops_asking_is_cut_off() -> None:
    exchange = protocol.t0_exchange(bytes.fromhex("00B2010012"))
    next(exchange)
    with pytest.raises(CardDataInvalid) as error:
        for _ in range(protocol.MAX_T0_ROUNDS + 1):
            exchange.send(bytes.fromhex("6C12"))
    assert error.value.reason == "t0_loop"


def test_a_response_without_status_word_is_invalid() -> None:
    with pytest.raises(CardDataInvalid):
        protocol.Response.parse(b"\x90")


# --- records and fields -----------------------------------------------------------------------


def test_record_value_is_cut_out_of_tag_length_value() -> None:
    assert protocol.parse_record(0x0A, bytes.fromhex("0A0132")) == b"2"
    # A longer buffer (Le larger than the record) keeps only the declared length.
    assert protocol.parse_record(0x0A, bytes.fromhex("0A01320000")) == b"2"


@pytest.mark.parametrize("data", ["0B0132", "0A0232", "0A"])
def test_wrong_tag_truncated_or_short_records_are_invalid(data: str) -> None:
    with pytest.raises(CardDataInvalid) as error:
        protocol.parse_record(0x0A, bytes.fromhex(data))
    assert error.value.reason == "record_malformed"


@pytest.mark.parametrize("pad", [b"\x00", b"\x20"])
def test_gbk_name_padding_is_stripped(pad: bytes) -> None:
    raw = "欧阳娜娜".encode("gbk").ljust(30, pad)
    assert protocol.decode_name(raw) == "欧阳娜娜"


def test_name_that_is_not_gbk_or_empty_is_invalid() -> None:
    with pytest.raises(CardDataInvalid):
        protocol.decode_name(b"\xff\xfe\x81\x00")
    with pytest.raises(CardDataInvalid):
        protocol.decode_name(b"\x00" * 30)


def test_bcd_dates() -> None:
    assert protocol.decode_bcd_date(bytes.fromhex("19491231"), field="d") == dt.date(1949, 12, 31)
    assert protocol.decode_bcd_date(bytes.fromhex("00000000"), field="d") is None
    assert protocol.decode_bcd_date(bytes.fromhex("FFFFFFFF"), field="d") is None
    for bad in ("2023023A", "20230230", "202301"):
        with pytest.raises(CardDataInvalid):
            protocol.decode_bcd_date(bytes.fromhex(bad), field="d")


def test_sex_codes() -> None:
    assert protocol.decode_sex(b"1") is Sex.MALE
    assert protocol.decode_sex(b"2") is Sex.FEMALE
    assert protocol.decode_sex(b"9") is Sex.UNKNOWN


def test_region_code_is_the_first_six_bcd_digits_of_the_card_identification() -> None:
    # The sample from the reference: 330300 D156000005 99110145 FFFFFFFF.
    card_id = bytes.fromhex("330300D15600000599110145FFFFFFFF")
    assert protocol.decode_region_code(card_id) == "330300"
    with pytest.raises(CardDataInvalid):
        protocol.decode_region_code(bytes.fromhex("D15600"))


def test_missing_record_is_reported_without_personal_data() -> None:
    ef05 = {0x01: bytes.fromhex("110105D156000005"), 0x06: bytes.fromhex("20300101"), 0x07: b"A1"}
    ef06 = {0x08: TRACE_ID_NUMBER.encode(), 0x09: TRACE_NAME.encode("gbk"), 0x0A: b"2"}
    with pytest.raises(CardDataInvalid) as error:
        protocol.holder_from_records(ef05, ef06)
    assert error.value.reason == "record_missing"
    assert "0D" in str(error.value)
    assert TRACE_ID_NUMBER not in str(error.value) and TRACE_NAME not in str(error.value)


# --- whole sessions ---------------------------------------------------------------------------


def test_recorded_exchange_replays_byte_for_byte() -> None:
    # The trace was recorded from the virtual card through pcscd + vpcd (test_card_driver.py
    # checks that a live read still produces it). Its card answers SELECT with 6113 (GET
    # RESPONSE) and stores the name in 20 bytes, not the table's 30, so READ RECORD 09 meets 6C16.
    trace = load_trace(TRACE)
    commands = [command.hex().upper() for command, _ in trace]
    assert "00C0000013" in commands and "00B2090016" in commands
    assert not [c for c in commands if c[2:4] in ("20", "24", "2C")], "a PIN command was sent"
    holder = run_session(protocol.read_holder_session(), trace)
    assert holder.id_number == TRACE_ID_NUMBER
    assert holder.name == TRACE_NAME
    assert holder.sex is Sex.FEMALE
    assert holder.birth_date == dt.date(1949, 12, 31)
    assert holder.card_number == "A91231002"
    assert holder.region_code == "110105"
    assert holder.expires == dt.date(2030, 1, 1)
    assert TRACE_NAME not in repr(holder) and TRACE_ID_NUMBER not in repr(holder)


def test_card_without_the_ssse_application_is_unsupported() -> None:
    session = protocol.read_holder_session()
    next(session)
    with pytest.raises(UnsupportedCard) as error:
        session.send(bytes.fromhex("6A82"))
    assert error.value.reason == "unsupported_card"


def test_a_pin_protected_record_is_not_read_and_no_pin_is_sent() -> None:
    trace = load_trace(TRACE)
    ef06_select = next(i for i, (c, _) in enumerate(trace) if c.hex().upper() == "00A4020002EF06")
    session = protocol.read_holder_session()
    command = next(session)
    for expected, response in trace[: ef06_select + 1]:
        assert command == expected
        command = session.send(response)
    assert command.hex().upper() == "00B2080014"
    with pytest.raises(UnsupportedCard) as error:
        session.send(bytes.fromhex("6982"))  # security status not satisfied: wants a PIN
    assert error.value.reason == "pin_required"


def test_a_missing_file_is_invalid_card_data() -> None:
    trace = load_trace(TRACE)
    session = protocol.read_holder_session()
    next(session)
    session.send(trace[0][1])  # 6113
    assert session.send(trace[1][1]).hex().upper() == "00A4020002EF05"
    with pytest.raises(CardDataInvalid) as error:
        session.send(bytes.fromhex("6A82"))
    assert error.value.reason == "file_missing"

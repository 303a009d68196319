"""Fuzz the social security card protocol: whatever a card answers, only a CardError comes out.

Everything in devices/card/protocol.py that reads card bytes is covered: status words, T=0
61xx/6Cxx chaining, TLV records, the ASCII, GBK and BCD field decoders, building the holder, and
whole read sessions against a card that answers each command well, badly or with noise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator

from hypothesis import given
from hypothesis import strategies as st

from devices.base import CardDataInvalid, CardError, CardHolder, Sex
from devices.card import protocol
from flows.identity import check_character

# A session reads 2 files and 7 records after one SELECT: 10 exchanges of at most MAX_T0_ROUNDS.
_MAX_SESSION_COMMANDS = 10 * protocol.MAX_T0_ROUNDS
_PIN_INSTRUCTIONS = frozenset({0x20, 0x24, 0x2C})  # VERIFY, CHANGE, RESET RETRY COUNTER
_SW_OK = b"\x90\x00"


# --- strategies ---------------------------------------------------------------------------------


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 公民身份号码: any region, a real date, any sequence, the right check character."""
    region = draw(st.text("0123456789", min_size=6, max_size=6))
    born = draw(st.dates())
    sequence = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{sequence}"
    return first17 + check_character(first17)


def _padded(value: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Values as cards store them: sometimes padded with 00, 20 or FF to the field length."""
    return st.tuples(value, st.sampled_from(b"\x00\x20\xff"), st.integers(0, 4)).map(
        lambda t: t[0] + bytes([t[1]]) * t[2]
    )


_DATES = st.one_of(
    st.dates().map(lambda d: _bcd(f"{d.year:04d}{d.month:02d}{d.day:02d}")),
    st.sampled_from([b"\x00" * 4, b"\xff" * 4]),
)
_NAMES = st.text(
    st.one_of(st.characters(categories=["Lo"]), st.characters(categories=("Mn", "Po", "Zs"))),
    min_size=1,
    max_size=12,
).map(lambda s: s.encode("gb18030"))
# What a card plausibly stores under each tag, so sessions get as far as building a holder.
_FIELD_VALUES: dict[int, st.SearchStrategy[bytes]] = {
    0x01: st.text("0123456789", min_size=6, max_size=32).map(
        lambda s: _bcd(s + "F" * (len(s) % 2))
    ),
    0x06: _DATES,
    0x07: _padded(st.from_regex(r"[A-Z][0-9]{8}", fullmatch=True).map(str.encode)),
    0x08: _padded(id_numbers().map(str.encode)),
    0x09: _padded(_NAMES),
    0x0A: st.sampled_from([b"1", b"2", b"0", b"9", b" 1", b""]),
    0x0D: _DATES,
}


def _field_value(tag: int) -> st.SearchStrategy[bytes]:
    plausible = _FIELD_VALUES.get(tag, st.nothing())
    # Three in four plausible: a read gets as far as the holder often enough to test it.
    return st.one_of(plausible, plausible, plausible, st.binary(max_size=40))


# Answers a broken or hostile card may give to any command.
_NOISE = st.one_of(
    st.binary(max_size=40),
    st.tuples(st.binary(max_size=40), st.integers(0, 0xFFFF)).map(
        lambda t: t[0] + t[1].to_bytes(2, "big")
    ),
    st.integers(0, 255).map(lambda n: bytes([0x61, n])),  # n more bytes for GET RESPONSE
    st.integers(0, 255).map(lambda n: bytes([0x6C, n])),  # wrong Le: resend with n
    st.sampled_from([b"\x6a\x82", b"\x6a\x83", b"\x69\x82", b"\x6d\x00", b"\x6e\x00"]),
)
# Right answers as a real card gives them, built once: building strategies is what made a
# session example slow, not running it.
def _record_answers(tag: int) -> st.SearchStrategy[bytes]:
    return _field_value(tag).map(lambda v: bytes([tag, len(v) & 0xFF]) + v + _SW_OK)


_RECORD_ANSWERS = {
    tag: _record_answers(tag) for tag, _ in protocol.EF05_RECORDS + protocol.EF06_RECORDS
}
_GET_RESPONSE_ANSWERS = st.binary(max_size=64).map(lambda d: d + _SW_OK)
_SELECT_ANSWERS = st.one_of(st.just(_SW_OK), st.integers(0, 255).map(lambda n: bytes([0x61, n])))


def _answer_to(command: bytes) -> st.SearchStrategy[bytes]:
    """A right answer to ``command``: the record asked for, data, 9000 or 61xx."""
    instruction = command[1] if len(command) > 1 else -1
    if instruction == 0xB2 and len(command) == 5:  # READ RECORD, P1 = tag
        return _RECORD_ANSWERS.get(command[2], _NOISE)
    if instruction == 0xC0:  # GET RESPONSE
        return _GET_RESPONSE_ANSWERS
    return _SELECT_ANSWERS


# --- status words and T=0 -----------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_any_response_splits_into_data_and_status_word_or_is_card_data_invalid(raw: bytes) -> None:
    try:
        response = protocol.Response.parse(raw)
    except CardDataInvalid:
        assert len(raw) < 2
        return
    assert response.data + bytes([response.sw1, response.sw2]) == raw
    assert 0 <= response.sw <= 0xFFFF


@given(st.binary(max_size=12), st.binary(max_size=8), st.integers(0, 255), st.integers(0, 255))
def test_t0_next_step_is_always_a_well_formed_apdu_or_none(
    command: bytes, data: bytes, sw1: int, sw2: int
) -> None:
    # Raises nothing at all: every status word is either final or names a valid next command.
    step = protocol.t0_next(command, protocol.Response(data, sw1, sw2))
    if sw1 == 0x61:
        assert step == protocol.GetResponse(bytes([0x00, 0xC0, 0x00, 0x00, sw2]))
    elif sw1 == 0x6C and len(command) == 5:
        assert step == protocol.Resend(command[:4] + bytes([sw2]))
    else:
        assert step is None


@given(st.binary(min_size=5, max_size=5), st.lists(st.binary(max_size=300), max_size=12))
def test_t0_exchange_ends_in_a_response_or_card_data_invalid(
    command: bytes, answers: list[bytes]
) -> None:
    exchange = protocol.t0_exchange(command)
    sent = [next(exchange)]
    result: protocol.Response | CardError | None = None
    try:
        for answer in answers:
            sent.append(exchange.send(answer))
    except StopIteration as done:
        result = done.value
    except CardDataInvalid as e:
        result = e
    assert len(sent) <= protocol.MAX_T0_ROUNDS + 1  # the last one is never sent if it ended
    if isinstance(result, protocol.Response):
        assert result.sw1 != 0x61  # a final response is never "more data waiting"


# --- records and fields ---------------------------------------------------------------------------


@given(st.integers(0, 255), st.binary(max_size=300))
def test_any_record_bytes_give_a_value_or_card_data_invalid(tag: int, data: bytes) -> None:
    try:
        value = protocol.parse_record(tag, data)
    except CardDataInvalid:
        return
    assert data[0] == tag and value == data[2 : 2 + data[1]] and len(value) == data[1]


@given(st.integers(0, 255), st.binary(max_size=255), st.binary(max_size=20))
def test_a_record_round_trips_whatever_follows_it(tag: int, value: bytes, tail: bytes) -> None:
    assert protocol.parse_record(tag, bytes([tag, len(value)]) + value + tail) == value


@given(st.binary(max_size=64))
def test_ascii_fields_decode_to_printable_ascii_or_card_data_invalid(value: bytes) -> None:
    try:
        text = protocol.decode_ascii(value, field="card_number")
    except CardDataInvalid:
        return
    assert text.isascii() and text.isprintable()


@given(st.one_of(st.binary(max_size=64), _padded(_NAMES)))
def test_names_decode_to_printable_text_or_card_data_invalid(value: bytes) -> None:
    try:
        name = protocol.decode_name(value)
    except CardDataInvalid:
        return
    assert name and name.isprintable() and name == name.strip(" \u3000")


@given(st.binary(max_size=32))
def test_bcd_digits_are_ascii_digits_or_card_data_invalid(value: bytes) -> None:
    try:
        digits = protocol.decode_bcd_digits(value, field="card_identification")
    except CardDataInvalid:
        return
    assert digits and all(c in "0123456789" for c in digits) and len(digits) <= 2 * len(value)


@given(st.one_of(st.binary(max_size=8), _DATES))
def test_bcd_dates_are_dates_none_or_card_data_invalid(value: bytes) -> None:
    try:
        date = protocol.decode_bcd_date(value, field="birth_date")
    except CardDataInvalid:
        return
    assert date is None or isinstance(date, dt.date)


@given(st.dates())
def test_bcd_dates_round_trip(date: dt.date) -> None:
    value = _bcd(f"{date.year:04d}{date.month:02d}{date.day:02d}")
    assert protocol.decode_bcd_date(value, field="expires") == date


@given(st.binary(max_size=8))
def test_any_sex_byte_is_a_sex(value: bytes) -> None:
    assert protocol.decode_sex(value) in set(Sex)


@given(st.binary(max_size=20))
def test_region_code_is_six_digits_or_card_data_invalid(value: bytes) -> None:
    try:
        region = protocol.decode_region_code(value)
    except CardDataInvalid:
        return
    assert len(region) == 6 and all(c in "0123456789" for c in region)


_RECORDS = st.fixed_dictionaries(
    {},
    optional={tag: _field_value(tag) for tag in (0x01, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0D)},
)


@given(_RECORDS, _RECORDS)
def test_any_records_build_a_holder_or_raise_a_card_error(
    ef05: dict[int, bytes], ef06: dict[int, bytes]
) -> None:
    try:
        holder = protocol.holder_from_records(ef05, ef06)
    except CardError:
        return
    _check_holder(holder)


def _check_holder(holder: CardHolder) -> None:
    assert holder.id_number and holder.id_number.isascii() and holder.id_number.isprintable()
    assert holder.name and holder.name.isprintable()
    assert holder.card_number.isascii() and holder.card_number.isprintable()
    assert len(holder.region_code) == 6 and holder.region_code.isascii()
    assert repr(holder) == "CardHolder(<redacted>)"  # never the person


# --- whole sessions -----------------------------------------------------------------------------


# Uniform over its list, shrinking towards the first item: a right answer.
_ONE_IN_SIXTEEN = st.sampled_from([False] * 15 + [True])


def _drive(
    session: Generator[bytes, bytes, CardHolder], data: st.DataObject
) -> tuple[CardHolder | CardError, list[bytes]]:
    sent: list[bytes] = []
    try:
        command = next(session)
        while True:
            sent.append(command)
            assert len(sent) <= _MAX_SESSION_COMMANDS, "the session never ends"
            # Mostly right answers, so the read gets deep; any answer may be noise instead.
            noisy = data.draw(_ONE_IN_SIXTEEN)
            answer = data.draw(_NOISE if noisy else _answer_to(command))
            command = session.send(answer)
    except StopIteration as done:
        return done.value, sent
    except CardError as e:  # UnsupportedCard or CardDataInvalid: the only way a read may fail
        return e, sent


@given(st.data())
def test_a_read_session_against_any_card_ends_in_a_holder_or_a_card_error(
    data: st.DataObject,
) -> None:
    outcome, sent = _drive(protocol.read_holder_session(), data)
    for command in sent:
        assert command[0] == 0x00 and command[1] not in _PIN_INSTRUCTIONS, "a PIN command"
        assert len(command) in (5, 7, len(protocol.select_ssse()))
    if isinstance(outcome, CardHolder):
        _check_holder(outcome)

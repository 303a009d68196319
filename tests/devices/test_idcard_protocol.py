"""SAM_A protocol, byte for byte: golden frames, the framer's resync, statuses, the text block.

The golden frames are the table in reference/devices.md 2.2; the text blocks are built here from
the layout in 2.3 (not with the simulator's composer, so the two are checked against each other).
"""

from __future__ import annotations

import datetime as dt

import pytest

from devices.base import (
    CardDataInvalid,
    CardRemoved,
    DeviceUnavailable,
    IdentityDocument,
    Sex,
    UnsupportedCard,
)
from devices.idcard import protocol
from devices.idcard.protocol import (
    Answer,
    AnswerFramer,
    CardReadFailed,
    CardType,
    Command,
    FrameProblem,
    FrameProblemKind,
    ModuleError,
    OtherDocument,
    Request,
    RequestFramer,
    SamFault,
    Status,
)

ID_NUMBER = "11010519491231002X"
NAME = "欧阳娜娜"


def ucs2(text: str, chars: int) -> bytes:
    return (text + " " * (chars - len(text))).encode("utf-16-le")


def text_block(
    *,
    name: str = NAME,
    sex: str = "2",
    nation: str = "01",
    birth: str = "19491231",
    address: str = "北京市东城区某街道1号",
    id_number: str = ID_NUMBER,
    issuer: str = "北京市公安局东城分局",
    valid_from: str = "20160501",
    valid_until: str = "20360501",
    flag: str = " ",
) -> bytes:
    """A text block laid out as reference/devices.md 2.3 says, char offsets in the comments."""
    block = (
        ucs2(name, 15)  # 0-14
        + ucs2(sex, 1)  # 15
        + ucs2(nation, 2)  # 16-17
        + ucs2(birth, 8)  # 18-25
        + ucs2(address, 35)  # 26-60
        + ucs2(id_number, 18)  # 61-78
        + ucs2(issuer, 15)  # 79-93
        + ucs2(valid_from, 8)  # 94-101
        + ucs2(valid_until, 8)  # 102-109
        + ucs2(" " * 14 + flag, 18)  # 110-127, the type flag at 124
    )
    assert len(block) == 256
    return block


PHOTO = bytes(range(128)) * 8


def read_answer(block: bytes, photo: bytes = PHOTO) -> bytes:
    return bytes.fromhex("AAAAAA9669 0508 000090 0100 0400") + block + photo + b"\x00"


def with_xor(frame: bytes) -> bytes:
    """Fix the last byte of ``frame`` to the XOR of LEN_H..the byte before it."""
    value = 0
    for byte in frame[5:-1]:
        value ^= byte
    return frame[:-1] + bytes((value,))


# --- golden frames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "golden"),
    [
        (Command.FIND, "AA AA AA 96 69 00 03 20 01 22"),
        (Command.SELECT, "AA AA AA 96 69 00 03 20 02 21"),
        (Command.READ_TEXT_PHOTO, "AA AA AA 96 69 00 03 30 01 32"),
        (Command.SAM_ID, "AA AA AA 96 69 00 03 12 FF EE"),
        (Command.SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
    ],
)
def test_command_frames_match_the_reference_table(command: Command, golden: str) -> None:
    assert protocol.command_frame(command) == bytes.fromhex(golden)
    # ... and the module's side reads them back as that command.
    (request,) = RequestFramer().feed(bytes.fromhex(golden))
    assert isinstance(request, Request)
    assert request.command is command
    assert request.data == b""


def test_find_success_answer_is_the_reference_frame() -> None:
    golden = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
    assert protocol.answer_frame(Status.FIND_OK, bytes(4)) == golden
    (answer,) = AnswerFramer().feed(golden)
    assert answer == Answer(0, 0, 0x9F, bytes(4))
    assert isinstance(answer, Answer)
    assert answer.ok
    assert answer.status is Status.FIND_OK


def test_read_answer_is_1295_bytes_and_parses_back_exactly() -> None:
    block = text_block()
    golden = with_xor(read_answer(block))
    assert len(golden) == protocol.READ_ANSWER_SIZE == 1295
    built = protocol.answer_frame(Status.OK, protocol.read_answer_payload(block, PHOTO))
    assert built == golden
    (answer,) = AnswerFramer().feed(golden)
    assert isinstance(answer, Answer)
    assert answer.payload[4:260] == block  # text at frame offset 14, as Hsl reads it
    assert golden[14:270] == block
    assert protocol.text_block_of(answer) == block
    holder = protocol.holder_from_read_answer(answer)
    assert holder.id_number == ID_NUMBER
    assert holder.name == NAME
    assert holder.sex is Sex.FEMALE
    assert holder.birth_date == dt.date(1949, 12, 31)
    assert holder.expires == dt.date(2036, 5, 1)
    assert holder.region_code == "110105"
    assert holder.card_number == ""
    assert holder.document is IdentityDocument.RESIDENT_ID_CARD


def test_the_answer_repr_never_shows_the_payload() -> None:
    answer = Answer(0, 0, 0x90, text_block())
    assert "payload" not in repr(answer)
    assert NAME not in repr(answer)
    assert repr(protocol.holder_from_text_block(text_block())) == "CardHolder(<redacted>)"


# --- the framer ---------------------------------------------------------------------------------


def test_framer_gives_the_same_answers_however_the_bytes_are_split() -> None:
    stream = (
        protocol.answer_frame(Status.NO_CARD)
        + with_xor(read_answer(text_block()))
        + protocol.answer_frame(Status.FIND_OK, bytes(4))
    )
    whole = AnswerFramer().feed(stream)
    assert [a.sw3 for a in whole if isinstance(a, Answer)] == [0x80, 0x90, 0x9F]
    for size in (1, 2, 5, 7, 64, 1000):
        framer = AnswerFramer()
        pieces = [framer.feed(stream[i : i + size]) for i in range(0, len(stream), size)]
        assert [item for piece in pieces for item in piece] == whole
        assert framer.pending == 0


def test_framer_holds_a_partial_frame_until_the_rest_arrives() -> None:
    frame = with_xor(read_answer(text_block()))
    framer = AnswerFramer()
    assert framer.feed(frame[:700]) == []
    assert framer.pending == 700  # a truncated frame stays pending: the driver's timeout sees it
    assert framer.reset() == 700
    assert framer.pending == 0


def test_framer_resyncs_on_the_preamble_after_garbage() -> None:
    noise = bytes.fromhex("00 FF 13 69 96 AA AA 55 AA AA AA 96")  # ends in a partial preamble
    frame = protocol.answer_frame(Status.OK)
    framer = AnswerFramer()
    items = framer.feed(noise)
    assert items == [FrameProblem(FrameProblemKind.SKIPPED, 8)]  # AA AA AA 96 may start one
    assert framer.pending == 4
    items = framer.feed(frame)
    assert items == [FrameProblem(FrameProblemKind.SKIPPED, 4), Answer(0, 0, 0x90)]


def test_framer_rejects_a_wrong_xor_and_finds_the_next_frame() -> None:
    good = protocol.answer_frame(Status.FIND_OK, bytes(4))
    bad = good[:-1] + bytes((good[-1] ^ 1,))
    items = AnswerFramer().feed(bad + good)
    assert items[0] == FrameProblem(FrameProblemKind.BAD_CHECKSUM, 1)
    assert all(
        item.kind is FrameProblemKind.SKIPPED
        for item in items[1:-1]
        if isinstance(item, FrameProblem)
    )
    assert items[-1] == Answer(0, 0, 0x9F, bytes(4))


@pytest.mark.parametrize("length", [0, 1, 3, protocol.MAX_LENGTH + 1, 0xFFFF])
def test_framer_rejects_an_impossible_length(length: int) -> None:
    bogus = protocol.PREAMBLE + length.to_bytes(2, "big") + bytes(8)
    good = protocol.answer_frame(Status.OK)
    items = AnswerFramer().feed(bogus + good)
    assert items[0] == FrameProblem(FrameProblemKind.BAD_LENGTH, 1)
    assert items[-1] == Answer(0, 0, 0x90)


def test_a_huge_length_is_rejected_before_its_bytes_arrive() -> None:
    framer = AnswerFramer()
    assert framer.feed(protocol.PREAMBLE + b"\x7f\xff") == [
        FrameProblem(FrameProblemKind.BAD_LENGTH, 1),
        FrameProblem(FrameProblemKind.SKIPPED, 6),
    ]
    assert framer.pending == 0


def test_request_framer_reads_data_and_a_minimum_length_of_three() -> None:
    frame = protocol.frame(b"\x20\x01\x55")
    (request,) = RequestFramer().feed(frame)
    assert request == Request(0x20, 0x01, b"\x55")
    # An answer needs SW1 SW2 SW3: a 3-length frame is a command, never an answer.
    assert AnswerFramer().feed(protocol.frame(b"\x20\x01"))[0] == FrameProblem(
        FrameProblemKind.BAD_LENGTH, 1
    )


def test_frame_refuses_a_body_beyond_the_maximum() -> None:
    with pytest.raises(ValueError):
        protocol.frame(bytes(protocol.MAX_LENGTH))


# --- statuses -----------------------------------------------------------------------------------

STATUS_TABLE = [
    (0x90, Status.OK, None, "ok"),
    (0x9F, Status.FIND_OK, None, "ok"),
    (0x10, Status.CHECKSUM_ERROR, ModuleError, "module_checksum_error"),
    (0x11, Status.LENGTH_ERROR, ModuleError, "module_length_error"),
    (0x21, Status.COMMAND_ERROR, ModuleError, "command_rejected"),
    (0x23, Status.NOT_PERMITTED, ModuleError, "not_permitted"),
    (0x24, Status.UNRECOGNISED_ERROR, ModuleError, "module_error"),
    (0x31, Status.CARD_AUTH_SAM_FAILED, CardReadFailed, "card_authentication_failed"),
    (0x32, Status.SAM_AUTH_CARD_FAILED, CardReadFailed, "sam_authentication_failed"),
    (0x33, Status.VERIFICATION_FAILED, CardReadFailed, "verification_failed"),
    (0x40, Status.UNKNOWN_CARD_TYPE, UnsupportedCard, "unknown_card_type"),
    (0x41, Status.READ_FAILED, CardReadFailed, "read_failed"),
    (0x47, Status.RANDOM_FAILED, CardReadFailed, "random_failed"),
    (0x60, Status.SAM_SELF_TEST_FAILED, SamFault, "sam_self_test"),
    (0x66, Status.SAM_NOT_AUTHORISED, SamFault, "sam_unauthorised"),
    (0x80, Status.NO_CARD, CardReadFailed, "no_card"),
    (0x81, Status.SELECT_FAILED, CardReadFailed, "select_failed"),
    (0x91, Status.NO_CONTENT, CardDataInvalid, "no_content"),
]


@pytest.mark.parametrize(("sw3", "status", "error_type", "reason"), STATUS_TABLE)
def test_every_status_maps_to_its_enum_and_error(
    sw3: int, status: Status, error_type: type[Exception] | None, reason: str
) -> None:
    assert protocol.status_of(sw3) is status
    assert status.reason == reason
    if error_type is not None:
        error = protocol.error_for_status(sw3)
        assert type(error) is error_type
        assert error.reason == reason


def test_the_table_covers_every_status() -> None:
    assert {row[1] for row in STATUS_TABLE} == set(Status)


def test_error_kinds_the_flows_rely_on() -> None:
    assert isinstance(protocol.error_for_status(0x41), CardRemoved)  # present it again
    assert isinstance(protocol.error_for_status(0x60), DeviceUnavailable)  # the reader is broken


def test_an_unlisted_status_is_a_module_error() -> None:
    assert protocol.status_of(0x55) is None
    error = protocol.error_for_status(0x55)
    assert isinstance(error, ModuleError)
    assert error.reason == "unknown_status"


def test_a_failed_read_answer_raises_its_status_error() -> None:
    with pytest.raises(CardReadFailed) as raised:
        protocol.holder_from_read_answer(Answer(0, 0, 0x41))
    assert raised.value.reason == "read_failed"


# --- the text block -----------------------------------------------------------------------------


def test_long_term_card_has_no_expiry() -> None:
    holder = protocol.holder_from_text_block(text_block(valid_until="长期"))
    assert holder.expires is None


def test_padding_is_stripped_and_nul_padding_works_too() -> None:
    block = bytearray(text_block(name="王五", sex="1"))
    block[4:30] = b"\x00" * 26  # name padded with NUL instead of spaces
    holder = protocol.holder_from_text_block(bytes(block))
    assert holder.name == "王五"
    assert holder.sex is Sex.MALE


def test_a_fifteen_character_name_fills_its_field() -> None:
    name = "阿" * 15
    assert protocol.holder_from_text_block(text_block(name=name)).name == name


def test_a_nul_flag_is_a_citizen_card() -> None:
    block = bytearray(text_block())
    block[248:250] = b"\x00\x00"
    assert protocol.card_type_of(bytes(block)) is CardType.CITIZEN
    assert protocol.holder_from_text_block(bytes(block)).id_number == ID_NUMBER


@pytest.mark.parametrize(
    ("flag", "card_type", "reason"),
    [
        ("J", CardType.RESIDENCE_PERMIT, "residence_permit"),
        ("I", CardType.FOREIGN_PERMANENT_RESIDENT, "foreign_permanent_resident"),
        ("Y", CardType.FOREIGN_PERMANENT_RESIDENT_2023, "foreign_permanent_resident"),
        ("Z", CardType.UNKNOWN, "unknown_card_type"),
        ("中", CardType.UNKNOWN, "unknown_card_type"),
    ],
)
def test_other_documents_are_declined_before_any_field_is_read(
    flag: str, card_type: CardType, reason: str
) -> None:
    # Garbage everywhere but the flag: had any field been parsed, this would be CardDataInvalid.
    block = bytearray(b"\xff\xdf" * 128)
    block[248:250] = flag.encode("utf-16-le")
    with pytest.raises(OtherDocument) as raised:
        protocol.holder_from_text_block(bytes(block))
    assert raised.value.card_type is card_type
    assert raised.value.reason == reason
    assert isinstance(raised.value, UnsupportedCard)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": ""}, "name_invalid"),
        ({"name": "张\x07三"}, "name_invalid"),
        ({"sex": "Q"}, "sex_invalid"),
        ({"birth": "1949123"}, "birth_date_invalid"),
        ({"birth": "19491332"}, "birth_date_invalid"),
        # Full-width digits pass str.isdigit() but are no date on a card.
        ({"birth": "１９４９１２３１"}, "birth_date_invalid"),
        ({"id_number": "11010519491231002"}, "id_number_invalid"),
        ({"id_number": "1101051949123100ZX"}, "id_number_invalid"),
        ({"valid_until": "2036050"}, "valid_until_invalid"),
        ({"valid_until": "长 期"}, "valid_until_invalid"),
        ({"valid_until": "20360230"}, "valid_until_invalid"),
    ],
)
def test_malformed_fields_are_rejected_without_their_values(
    fields: dict[str, str], reason: str
) -> None:
    with pytest.raises(CardDataInvalid) as raised:
        protocol.holder_from_text_block(text_block(**fields))
    assert raised.value.reason == reason
    for value in (*fields.values(), ID_NUMBER, NAME):
        if len(value) > 1:  # a single character would match the fixed message by chance
            assert value not in str(raised.value)


def test_sex_codes_zero_and_nine_are_unknown() -> None:
    assert protocol.holder_from_text_block(text_block(sex="9")).sex is Sex.UNKNOWN


def test_a_lowercase_x_is_kept_as_read_for_the_flows_to_normalise() -> None:
    holder = protocol.holder_from_text_block(text_block(id_number=ID_NUMBER.lower()))
    assert holder.id_number == ID_NUMBER.lower()


def test_undecodable_ucs2_is_rejected() -> None:
    block = bytearray(text_block())
    block[0:2] = b"\x00\xd8"  # a lone high surrogate
    with pytest.raises(CardDataInvalid) as raised:
        protocol.holder_from_text_block(bytes(block))
    assert raised.value.reason == "name_invalid"


def test_text_block_of_the_wrong_size_is_rejected() -> None:
    with pytest.raises(CardDataInvalid) as raised:
        protocol.holder_from_text_block(bytes(254))
    assert raised.value.reason == "text_block_invalid"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x01\x00",
        b"\x00\xff\x04\x00" + bytes(255 + 1024),  # TEXT_LEN not 256
        b"\x01\x00\x04\x00" + bytes(256 + 1000),  # PHOTO_LEN disagrees with what came
    ],
)
def test_read_answer_lengths_are_checked(payload: bytes) -> None:
    with pytest.raises(CardDataInvalid) as raised:
        protocol.text_block_of(Answer(0, 0, 0x90, payload))
    assert raised.value.reason == "read_answer_malformed"


def test_the_address_issuer_and_nation_are_never_decoded() -> None:
    # Undecodable bytes there do not matter: those fields are not read at all.
    block = bytearray(text_block())
    block[32:36] = b"\x00\xd8\x00\xd8"  # nation
    block[52:122] = b"\x00\xdc" * 35  # address
    block[158:188] = b"\x00\xdc" * 15  # issuer
    assert protocol.holder_from_text_block(bytes(block)).name == NAME

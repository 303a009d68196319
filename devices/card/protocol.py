"""The social security card (SSSE) profile as pure logic: APDUs, T=0 status words, records, fields.

Nothing here does I/O. ``read_holder_session()`` is a generator that yields each command APDU and
is sent back the card's raw response (data + SW1 SW2); the driver owns the wire and feeds it. That
keeps the whole exchange replayable byte for byte from a recorded trace.

Byte-level sources: reference/devices.md section 1 (SELECT by AID, EF05/EF06, READ RECORD by tag,
TLV records, GBK names, BCD dates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Mapping
from dataclasses import dataclass

from devices.base import CardDataInvalid, CardHolder, Sex, StaffBadge, UnsupportedCard

# "sx1.sh." + GBK "社会保障": the fixed SSSE application identifier.
SSSE_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
EF_CARD_INFO = 0xEF05  # EF05: card-level information (card identification code, dates, card number)
EF_PERSONAL = 0xEF06  # EF06: personal information (ID number, name, sex, birth)

SW_OK = 0x9000
SW_SECURITY_NOT_SATISFIED = 0x6982  # the file wants a PIN; we never send one
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83

# A misbehaving card could answer 61xx/6Cxx forever; a real profile needs at most a few rounds.
MAX_T0_ROUNDS = 8
MAX_RESPONSE_BYTES = 4096

# Records the holder needs, with the value length the reference table gives (SIDCardOperation.h).
# The length only sets the first Le; a card that stores a field differently answers 6Cxx and the
# command is resent with the length it asks for.
EF05_RECORDS: tuple[tuple[int, int], ...] = (
    (0x01, 16),  # 卡识别码: BCD, first 6 digits are the region (统筹区) code
    (0x06, 4),  # 卡有效期: BCD YYYYMMDD
    (0x07, 9),  # 社会保障卡卡号: ASCII
)
EF06_RECORDS: tuple[tuple[int, int], ...] = (
    (0x08, 18),  # 社会保障号码 (= 公民身份号码): ASCII
    (0x09, 30),  # 姓名: GBK, padded with 00 or 20
    (0x0A, 1),  # 性别: ASCII '1' male, '2' female
    (0x0D, 4),  # 出生日期: BCD YYYYMMDD
)

# PC/SC part 3 GET DATA: the reader answers with the contactless card's UID (a staff badge's
# identity). A contact-only reader or a contact card answers 6A81/6D00.
GET_UID = bytes([0xFF, 0xCA, 0x00, 0x00, 0x00])
UID_LENGTHS = frozenset({4, 7, 10})  # ISO 14443 single, double and triple size UIDs

TLV_HEADER = 2  # tag byte + length byte in front of every record value

_PADDING = b"\x00\x20\xff"


# --- command APDUs ------------------------------------------------------------------------------


def select_ssse() -> bytes:
    """SELECT by DF name (P1=04) of the SSSE application; case 3, no Le (T=0 answers 61xx)."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(SSSE_AID)]) + SSSE_AID


def select_ef(file_id: int) -> bytes:
    """SELECT an EF under the current DF by its file identifier (P1=02), e.g. EF05."""
    return bytes([0x00, 0xA4, 0x02, 0x00, 0x02]) + file_id.to_bytes(2, "big")


def read_record(tag: int, le: int) -> bytes:
    """READ RECORD by record identifier (P2=00: P1 is the tag, first occurrence), Le ``le``."""
    return bytes([0x00, 0xB2, tag, 0x00, le & 0xFF])


def get_response(le: int) -> bytes:
    """GET RESPONSE for the ``le`` bytes a 61xx announced (00 means 256)."""
    return bytes([0x00, 0xC0, 0x00, 0x00, le & 0xFF])


def with_le(command: bytes, le: int) -> bytes:
    """The same short case-2 command with a different Le (the last byte)."""
    if len(command) != 5:
        raise ValueError("only a short case-2 command (5 bytes) carries Le as its last byte")
    return command[:4] + bytes([le & 0xFF])


# --- responses and T=0 status words -------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """A response APDU split into its data and status word."""

    data: bytes
    sw1: int
    sw2: int

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise CardDataInvalid("response shorter than a status word", reason="bad_response")
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK


@dataclass(frozen=True)
class GetResponse:
    """Next step after a 61xx: fetch the announced bytes with GET RESPONSE."""

    command: bytes


@dataclass(frozen=True)
class Resend:
    """Next step after a 6Cxx: send the command again with the Le the card asked for."""

    command: bytes


T0Step = GetResponse | Resend | None


def t0_next(command: bytes, response: Response) -> T0Step:
    """What T=0 asks for after ``response`` to ``command``; None when the response is final.

    61xx: the card holds xx response bytes (00 = 256) for GET RESPONSE. 6Cxx: Le was wrong and xx
    is the right one; only a case-2 command (5 bytes, Le last) can be resent that way, so 6Cxx to
    anything else is final and the caller sees it as a failed status word.
    """
    if response.sw1 == 0x61:
        return GetResponse(get_response(response.sw2))
    if response.sw1 == 0x6C and len(command) == 5:
        return Resend(with_le(command, response.sw2))
    return None


def t0_exchange(command: bytes) -> Generator[bytes, bytes, Response]:
    """Send ``command`` and follow 61xx/6Cxx until a final response; yields every APDU sent.

    Data returned before a further 61xx is kept, so chained GET RESPONSEs add up.
    """
    collected = b""
    current = command
    for _ in range(MAX_T0_ROUNDS):
        response = Response.parse((yield current))
        step = t0_next(current, response)
        if isinstance(step, GetResponse):
            collected += response.data
            current = step.command
        elif isinstance(step, Resend):
            current = step.command  # a 6Cxx carries no data worth keeping
        else:
            return Response(collected + response.data, response.sw1, response.sw2)
        if len(collected) > MAX_RESPONSE_BYTES:
            break
    raise CardDataInvalid("card kept asking for GET RESPONSE or a new Le", reason="t0_loop")


# --- records and fields -------------------------------------------------------------------------


def parse_record(tag: int, data: bytes) -> bytes:
    """The value of a ``tag | len | value`` record; checks the tag and that nothing is cut off."""
    if len(data) < TLV_HEADER:
        raise CardDataInvalid(f"record {tag:02X} too short", reason="record_malformed")
    if data[0] != tag:
        raise CardDataInvalid(f"record {tag:02X} has tag {data[0]:02X}", reason="record_malformed")
    length = data[1]
    if len(data) < TLV_HEADER + length:
        raise CardDataInvalid(f"record {tag:02X} is truncated", reason="record_malformed")
    return bytes(data[TLV_HEADER : TLV_HEADER + length])


def _strip_padding(value: bytes) -> bytes:
    return value.rstrip(_PADDING).lstrip(b"\x20")


def decode_ascii(value: bytes, *, field: str) -> str:
    """An ASCII field (ID number, card number) with 00/20/FF padding removed."""
    text = _strip_padding(value)
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise CardDataInvalid(f"{field} is not ASCII", reason="field_invalid") from None
    if not decoded.isprintable():
        raise CardDataInvalid(f"{field} has control characters", reason="field_invalid")
    return decoded


def decode_name(value: bytes) -> str:
    """The holder's name: GBK, padded to the field length with 00 or 20 bytes."""
    text = _strip_padding(value)
    try:
        # Cards are written by Windows tools in CP936; GB18030 decodes every GBK byte pair the
        # same way and also the rare characters some issuers write as four-byte sequences.
        name = text.decode("gb18030")
    except UnicodeDecodeError:
        raise CardDataInvalid("name is not GBK", reason="field_invalid") from None
    name = name.strip(" \u3000")
    if not name or not name.isprintable():
        raise CardDataInvalid("name is empty or has control characters", reason="field_invalid")
    return name


def decode_bcd_digits(value: bytes, *, field: str) -> str:
    """Packed BCD to digits; trailing F nibbles are padding, any other non-digit is invalid."""
    digits = value.hex().upper().rstrip("F")
    if not digits.isdigit():
        raise CardDataInvalid(f"{field} is not BCD", reason="field_invalid")
    return digits


def decode_bcd_date(value: bytes, *, field: str) -> dt.date | None:
    """A 4-byte BCD YYYYMMDD date; all 00 or all FF means the card leaves it unset (None)."""
    if len(value) != 4:
        raise CardDataInvalid(f"{field} is not 4 bytes", reason="field_invalid")
    if value in (b"\x00" * 4, b"\xff" * 4):
        return None
    digits = decode_bcd_digits(value, field=field)
    if len(digits) != 8:
        raise CardDataInvalid(f"{field} is not YYYYMMDD", reason="field_invalid")
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise CardDataInvalid(f"{field} is not a calendar date", reason="field_invalid") from None


def decode_sex(value: bytes) -> Sex:
    """'1' male, '2' female (GB/T 2261.1); anything else (0 unknown, 9 unstated) is unknown."""
    return {b"1": Sex.MALE, b"2": Sex.FEMALE}.get(_strip_padding(value), Sex.UNKNOWN)


def decode_region_code(card_identification: bytes) -> str:
    """The 统筹区 code: the first six BCD digits of the card identification code (EF05 tag 01)."""
    digits = decode_bcd_digits(card_identification[:3], field="region code")
    if len(digits) != 6:  # padding has no place inside a region code
        raise CardDataInvalid("region code is not BCD", reason="field_invalid")
    return digits


def holder_from_records(ef05: Mapping[int, bytes], ef06: Mapping[int, bytes]) -> CardHolder:
    """Build the card holder from record values (TLV headers already removed) keyed by tag."""
    try:
        card_identification = ef05[0x01]
        expires = ef05[0x06]
        card_number = ef05[0x07]
        id_number = ef06[0x08]
        name = ef06[0x09]
        sex = ef06[0x0A]
        birth_date = ef06[0x0D]
    except KeyError as missing:
        raise CardDataInvalid(
            f"record {missing.args[0]:02X} missing", reason="record_missing"
        ) from None
    holder_id = decode_ascii(id_number, field="id_number")
    if not holder_id:
        raise CardDataInvalid("id_number is empty", reason="field_invalid")
    return CardHolder(
        id_number=holder_id,
        name=decode_name(name),
        sex=decode_sex(sex),
        birth_date=decode_bcd_date(birth_date, field="birth_date"),
        card_number=decode_ascii(card_number, field="card_number"),
        region_code=decode_region_code(card_identification),
        expires=decode_bcd_date(expires, field="expires"),
    )


# --- the whole profile --------------------------------------------------------------------------


def _read_records(
    file_id: int, records: tuple[tuple[int, int], ...]
) -> Generator[bytes, bytes, dict[int, bytes]]:
    selected = yield from t0_exchange(select_ef(file_id))
    if not selected.ok:
        raise CardDataInvalid(
            f"SELECT {file_id:04X} failed with {selected.sw:04X}", reason="file_missing"
        )
    values: dict[int, bytes] = {}
    for tag, value_length in records:
        response = yield from t0_exchange(read_record(tag, TLV_HEADER + value_length))
        if response.sw == SW_SECURITY_NOT_SATISFIED:
            # Some regions protect EF06 with a PIN. We never send one for the resident (the card
            # blocks after a few wrong tries), so such a card cannot identify anyone here.
            raise UnsupportedCard(f"record {tag:02X} needs a PIN", reason="pin_required")
        if not response.ok:
            raise CardDataInvalid(
                f"READ RECORD {tag:02X} failed with {response.sw:04X}", reason="record_missing"
            )
        values[tag] = parse_record(tag, response.data)
    return values


def read_holder_session() -> Generator[bytes, bytes, CardHolder]:
    """The SSSE read: yields each command APDU, is sent each raw response, returns the holder.

    Raises UnsupportedCard when the SSSE application is not there (a bank card answers 6A82) and
    CardDataInvalid when a file or record is missing or malformed. Never sends a PIN.
    """
    selected = yield from t0_exchange(select_ssse())
    if not selected.ok:
        raise UnsupportedCard(f"SELECT SSSE answered {selected.sw:04X}", reason="unsupported_card")
    ef05 = yield from _read_records(EF_CARD_INFO, EF05_RECORDS)
    ef06 = yield from _read_records(EF_PERSONAL, EF06_RECORDS)
    return holder_from_records(ef05, ef06)


def read_card_session() -> Generator[bytes, bytes, CardHolder | StaffBadge]:
    """Whatever card is in: a social security card's holder, or the UID of a card without the SSSE
    application (a staff badge, if the terminal lists it). Raises UnsupportedCard for a card with
    neither (a contact bank card), CardDataInvalid as ``read_holder_session`` does."""
    selected = yield from t0_exchange(select_ssse())
    if selected.ok:
        ef05 = yield from _read_records(EF_CARD_INFO, EF05_RECORDS)
        ef06 = yield from _read_records(EF_PERSONAL, EF06_RECORDS)
        return holder_from_records(ef05, ef06)
    uid = yield from t0_exchange(GET_UID)
    if uid.ok and len(uid.data) in UID_LENGTHS:
        return StaffBadge(uid.data.hex().upper())
    raise UnsupportedCard(
        f"SELECT SSSE answered {selected.sw:04X}, no UID", reason="unsupported_card"
    )

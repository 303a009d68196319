"""SAM_A module protocol (GA/T 467 business-terminal interface), pure: frames, statuses, the text.

Nothing here does I/O or keeps time. The driver writes ``command_frame(...)``, feeds what the
module answers into an ``AnswerFramer`` and hands each complete ``Answer`` to the functions here;
a frame that never completes is the driver's timeout to notice, not the framer's.

Wire format (reference/devices.md 2.2)::

    AA AA AA 96 69 | LEN_H LEN_L | body | XOR

``LEN`` counts the bytes after the length field including the XOR byte; the XOR covers LEN_H up
to the last body byte. A command's body is CMD PARA [data]; an answer's is SW1 SW2 SW3 [payload],
SW1 = SW2 = 00 and SW3 the status. The read answer (30 01) is 1295 bytes: 00 00 90, TEXT_LEN
(01 00), PHOTO_LEN (04 00), the 256-byte text block and the 1024-byte photo (wlt).

Data minimisation: of the text block only the name, sex, birth date, ID number and valid-until
date are decoded; the address, issuer, nation and valid-from date are never decoded or kept (no
flow needs them), and the photo is dropped the moment its length has been checked (never decoded,
stored or returned). Errors carry stable reason codes and fixed messages, never a field's value.

Card-type flag [inference]: the reference marks it unverified. Vendor SDKs read the character at
char offset 124 (bytes 248-249, in the reserved area) as the document type: a space (or NUL) for
the citizen card, 'J' for the 港澳台居民居住证, 'I' for the 2017 外国人永久居留身份证, 'Y' for the
2023 one. Those documents lay the block out differently (a foreign card starts with an English
name), so the flag is checked before the citizen layout is applied and any of them is declined
with ``OtherDocument``; nothing is parsed from it.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from typing import Final

from devices.base import (
    CardDataInvalid,
    CardHolder,
    CardRemoved,
    DeviceError,
    DeviceUnavailable,
    IdentityDocument,
    Sex,
    UnsupportedCard,
)

PREAMBLE: Final = b"\xaa\xaa\xaa\x96\x69"
HEADER_SIZE: Final = len(PREAMBLE) + 2  # preamble and the two length bytes
# The read answer (LEN 0x0508, 1295 bytes in all) is the largest a SAM_A module sends for the
# commands we use; anything claiming more than this is noise or a corrupted length.
MAX_LENGTH: Final = 2048
MIN_COMMAND_LENGTH: Final = 3  # CMD PARA XOR
MIN_ANSWER_LENGTH: Final = 4  # SW1 SW2 SW3 XOR

TEXT_BLOCK_SIZE: Final = 256
PHOTO_SIZE: Final = 1024
READ_ANSWER_SIZE: Final = HEADER_SIZE + 3 + 4 + TEXT_BLOCK_SIZE + PHOTO_SIZE + 1  # 1295
CARD_TYPE_OFFSET: Final = 124 * 2  # bytes 248-249: the document-type flag [inference]

LONG_TERM: Final = "长期"  # valid-until of a long-term card: no expiry


class Command(enum.Enum):
    """The SAM_A commands the reader uses: (CMD, PARA)."""

    FIND = (0x20, 0x01)  # 寻找居民身份证; success status 0x9F
    SELECT = (0x20, 0x02)  # 选取居民身份证
    READ_TEXT_PHOTO = (0x30, 0x01)  # 读机读文字+相片
    SAM_STATUS = (0x11, 0xFF)  # SAM_A 状态检测
    SAM_ID = (0x12, 0xFF)  # 读SAM_A管理信息/编号

    @property
    def code(self) -> bytes:
        cmd, para = self.value
        return bytes((cmd, para))

    @classmethod
    def of(cls, cmd: int, para: int) -> Command | None:
        for command in cls:
            if command.value == (cmd, para):
                return command
        return None


class Status(enum.IntEnum):
    """SW3 of an answer (reference/devices.md 2.2; Hsl GetErrorDescription)."""

    OK = 0x90
    FIND_OK = 0x9F  # find-card success
    CHECKSUM_ERROR = 0x10  # 接收数据校验和错: our frame arrived damaged
    LENGTH_ERROR = 0x11  # 长度错
    COMMAND_ERROR = 0x21  # 命令错
    NOT_PERMITTED = 0x23  # 越权操作
    UNRECOGNISED_ERROR = 0x24  # 无法识别的错误
    CARD_AUTH_SAM_FAILED = 0x31  # 卡认证SAM失败
    SAM_AUTH_CARD_FAILED = 0x32  # SAM认证卡失败
    VERIFICATION_FAILED = 0x33  # 信息验证错误
    UNKNOWN_CARD_TYPE = 0x40  # 无法识别的卡类型
    READ_FAILED = 0x41  # 读卡操作失败
    RANDOM_FAILED = 0x47  # 取随机数失败
    SAM_SELF_TEST_FAILED = 0x60  # SAM自检失败
    SAM_NOT_AUTHORISED = 0x66  # SAM未经授权
    NO_CARD = 0x80  # 找卡不成功
    SELECT_FAILED = 0x81  # 选卡失败
    NO_CONTENT = 0x91  # 卡中无此内容

    @property
    def reason(self) -> str:
        return _STATUS_REASONS[self]


_STATUS_REASONS: Final = {
    Status.OK: "ok",
    Status.FIND_OK: "ok",
    Status.CHECKSUM_ERROR: "module_checksum_error",
    Status.LENGTH_ERROR: "module_length_error",
    Status.COMMAND_ERROR: "command_rejected",
    Status.NOT_PERMITTED: "not_permitted",
    Status.UNRECOGNISED_ERROR: "module_error",
    Status.CARD_AUTH_SAM_FAILED: "card_authentication_failed",
    Status.SAM_AUTH_CARD_FAILED: "sam_authentication_failed",
    Status.VERIFICATION_FAILED: "verification_failed",
    Status.UNKNOWN_CARD_TYPE: "unknown_card_type",
    Status.READ_FAILED: "read_failed",
    Status.RANDOM_FAILED: "random_failed",
    Status.SAM_SELF_TEST_FAILED: "sam_self_test",
    Status.SAM_NOT_AUTHORISED: "sam_unauthorised",
    Status.NO_CARD: "no_card",
    Status.SELECT_FAILED: "select_failed",
    Status.NO_CONTENT: "no_content",
}


def status_of(sw3: int) -> Status | None:
    """The Status for an SW3 byte, None for a byte the reference does not list."""
    try:
        return Status(sw3)
    except ValueError:
        return None


class CardType(enum.StrEnum):
    """What the text block's type flag says the presented document is [inference, see above]."""

    CITIZEN = "citizen"  # 居民身份证: flag space or NUL
    RESIDENCE_PERMIT = "residence_permit"  # 港澳台居民居住证: 'J'
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"  # 外国人永久居留身份证 2017: 'I'
    FOREIGN_PERMANENT_RESIDENT_2023 = "foreign_permanent_resident_2023"  # the 2023 edition: 'Y'
    UNKNOWN = "unknown"  # any other flag


CARD_TYPE_FLAGS: Final = {
    " ": CardType.CITIZEN,
    "\x00": CardType.CITIZEN,
    "J": CardType.RESIDENCE_PERMIT,
    "I": CardType.FOREIGN_PERMANENT_RESIDENT,
    "Y": CardType.FOREIGN_PERMANENT_RESIDENT_2023,
}


# --- errors -------------------------------------------------------------------------------------


class IdCardReason(enum.StrEnum):
    """Reasons the reader's DeviceState carries, and the driver's own error reasons."""

    ABSENT = "absent"  # the port was never found since start (wrong path, never plugged in)
    OFFLINE = "offline"  # it was there and went away (unplugged, USB reset)
    NO_PERMISSION = "no_permission"  # the device node exists but we may not open it (udev rule)
    BUSY = "busy"  # another process holds the port
    OPEN_FAILED = "open_failed"  # exists but cannot be opened as a serial port
    CHECKING = "checking"  # degraded: port open, the SAM not yet asked
    NO_ANSWER = "no_answer"  # the module did not answer a command within the timeout
    ANSWER_CUT_OFF = "answer_cut_off"  # an answer began but stopped before its end
    SAM_SELF_TEST = "sam_self_test"  # 11 FF answered 0x60
    SAM_FAULT = "sam_fault"  # 11 FF answered some other failure
    BAD_CHECKSUM = "bad_checksum"  # answers with a wrong XOR, also after a resend
    BAD_LENGTH = "bad_length"  # answers with an impossible length, also after a resend
    READ_ERROR = "read_error"  # degraded: the last read failed on the module's side
    NO_CARD = "no_card"  # read_once: no card was presented in time


class OtherDocument(UnsupportedCard):
    """A document the SAM reads but that is not a citizen card (its type flag says which).

    ``reason`` is ``residence_permit``, ``foreign_permanent_resident`` or ``unknown_card_type``.
    """

    reason = "unknown_card_type"

    def __init__(self, card_type: CardType) -> None:
        reason = {
            CardType.RESIDENCE_PERMIT: "residence_permit",
            CardType.FOREIGN_PERMANENT_RESIDENT: "foreign_permanent_resident",
            CardType.FOREIGN_PERMANENT_RESIDENT_2023: "foreign_permanent_resident",
        }.get(card_type, "unknown_card_type")
        super().__init__(f"not a resident ID card: {card_type.value}", reason=reason)
        self.card_type = card_type


class CardReadFailed(CardRemoved):
    """The module could not finish reading the card (it moved away, an authentication between
    card and SAM failed, the answer was cut off): present it again. ``reason`` says which."""

    reason = "read_failed"


class ModuleError(DeviceError):
    """The module rejected a command (checksum, length, command error) or gave an unknown status."""

    reason = "module_error"


class SamFault(DeviceUnavailable):
    """The module's SAM is not usable (self-test failed, not authorised)."""

    reason = IdCardReason.SAM_SELF_TEST.value


class FrameError(DeviceError):
    """An answer arrived damaged (wrong XOR, impossible length) and the resend did not help."""

    reason = IdCardReason.BAD_CHECKSUM.value


_CARD_READ_FAILURES: Final = frozenset(
    {
        Status.CARD_AUTH_SAM_FAILED,
        Status.SAM_AUTH_CARD_FAILED,
        Status.VERIFICATION_FAILED,
        Status.READ_FAILED,
        Status.RANDOM_FAILED,
        Status.SELECT_FAILED,
        Status.NO_CARD,
    }
)


def error_for_status(sw3: int) -> DeviceError:
    """The typed error a failed status stands for; ``reason`` is the status' reason code."""
    status = status_of(sw3)
    if status is None:
        return ModuleError(f"unknown status {sw3:#04x}", reason="unknown_status")
    message = f"status {sw3:#04x}"
    if status in _CARD_READ_FAILURES:
        # On a presentation reader these are nearly always a card moved or lifted mid-read.
        return CardReadFailed(message, reason=status.reason)
    if status is Status.UNKNOWN_CARD_TYPE:
        return UnsupportedCard(message, reason=status.reason)
    if status is Status.NO_CONTENT:
        return CardDataInvalid(message, reason=status.reason)
    if status in (Status.SAM_SELF_TEST_FAILED, Status.SAM_NOT_AUTHORISED):
        return SamFault(message, reason=status.reason)
    return ModuleError(message, reason=status.reason)


# --- frames -------------------------------------------------------------------------------------


def checksum(data: bytes | bytearray) -> int:
    """XOR of every byte (the frame's check byte covers LEN_H up to the last body byte)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(body: bytes) -> bytes:
    """A whole frame around ``body``: a command's CMD PARA data, an answer's SW1 SW2 SW3 data."""
    length = len(body) + 1
    if length > MAX_LENGTH:
        raise ValueError("frame body too long")
    head = length.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes((checksum(head + body),))


def command_frame(command: Command, data: bytes = b"") -> bytes:
    """The frame the terminal sends for ``command``, e.g. find = AA AA AA 96 69 00 03 20 01 22."""
    return frame(command.code + data)


def answer_frame(sw3: int, payload: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """The frame a module answers with (the simulator's side, and golden tests)."""
    return frame(bytes((sw1, sw2, sw3)) + payload)


def read_answer_payload(text_block: bytes, photo: bytes) -> bytes:
    """The read answer's payload: TEXT_LEN, PHOTO_LEN (big-endian), the text, the photo."""
    return len(text_block).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text_block + photo


class FrameProblemKind(enum.StrEnum):
    SKIPPED = "skipped"  # bytes before a preamble that belong to no frame (line noise)
    BAD_CHECKSUM = "bad_checksum"  # a whole frame whose XOR does not match
    BAD_LENGTH = "bad_length"  # a length field below the minimum or above MAX_LENGTH


@dataclass(frozen=True)
class FrameProblem:
    """Bytes the framer threw away, and why; what they held is gone."""

    kind: FrameProblemKind
    size: int


@dataclass(frozen=True)
class Answer:
    """A module's answer. The payload may hold the text block: it never shows in a repr."""

    sw1: int
    sw2: int
    sw3: int
    payload: bytes = field(default=b"", repr=False)

    @property
    def status(self) -> Status | None:
        return status_of(self.sw3)

    @property
    def ok(self) -> bool:
        return self.sw3 in (Status.OK, Status.FIND_OK)


@dataclass(frozen=True)
class Request:
    """A command frame as the module receives it (the simulator's side)."""

    cmd: int
    para: int
    data: bytes = b""

    @property
    def command(self) -> Command | None:
        return Command.of(self.cmd, self.para)


class _Framer:
    """Cuts a byte stream into frame bodies. However the stream is split into reads, the same
    frames and problems come out in the same order; memory stays within one frame."""

    def __init__(self, min_length: int, max_length: int = MAX_LENGTH) -> None:
        self._min_length = min_length
        self._max_length = max_length
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back: a frame begun but not complete (or what may start a preamble)."""
        return len(self._buffer)

    def reset(self) -> int:
        """Forget whatever was half-read; returns how many bytes that was."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped

    def _bodies(self, data: bytes) -> list[bytes | FrameProblem]:
        buffer = self._buffer
        buffer += data
        out: list[bytes | FrameProblem] = []
        while buffer:
            start = buffer.find(PREAMBLE)
            if start < 0:
                # Keep a tail that may be the first bytes of a preamble split across reads.
                keep = _preamble_prefix(buffer)
                if len(buffer) > keep:
                    out.append(FrameProblem(FrameProblemKind.SKIPPED, len(buffer) - keep))
                    del buffer[: len(buffer) - keep]
                break
            if start:
                out.append(FrameProblem(FrameProblemKind.SKIPPED, start))
                del buffer[:start]
            if len(buffer) < HEADER_SIZE:
                break
            length = int.from_bytes(buffer[5:7], "big")
            if not self._min_length <= length <= self._max_length:
                # Resync one byte on: the next preamble may lie inside what we took for a frame.
                out.append(FrameProblem(FrameProblemKind.BAD_LENGTH, 1))
                del buffer[:1]
                continue
            end = HEADER_SIZE + length
            if len(buffer) < end:
                break
            if checksum(buffer[5 : end - 1]) != buffer[end - 1]:
                # The length itself may be what is damaged: resync rather than trust it.
                out.append(FrameProblem(FrameProblemKind.BAD_CHECKSUM, 1))
                del buffer[:1]
                continue
            out.append(bytes(buffer[HEADER_SIZE : end - 1]))
            del buffer[:end]
        return out


def _preamble_prefix(buffer: bytearray) -> int:
    """The length of the longest tail of ``buffer`` that is a proper prefix of the preamble."""
    for size in range(min(len(PREAMBLE) - 1, len(buffer)), 0, -1):
        if buffer.endswith(PREAMBLE[:size]):
            return size
    return 0


class AnswerFramer(_Framer):
    """The terminal's side: feed what the module sends, get Answers and FrameProblems."""

    def __init__(self, max_length: int = MAX_LENGTH) -> None:
        super().__init__(MIN_ANSWER_LENGTH, max_length)

    def feed(self, data: bytes) -> list[Answer | FrameProblem]:
        return [
            Answer(item[0], item[1], item[2], item[3:]) if isinstance(item, bytes) else item
            for item in self._bodies(data)
        ]


class RequestFramer(_Framer):
    """The module's side (the simulator): feed what the terminal sends, get Requests."""

    def __init__(self, max_length: int = MAX_LENGTH) -> None:
        super().__init__(MIN_COMMAND_LENGTH, max_length)

    def feed(self, data: bytes) -> list[Request | FrameProblem]:
        return [
            Request(item[0], item[1], item[2:]) if isinstance(item, bytes) else item
            for item in self._bodies(data)
        ]


# --- the read answer and its text block -----------------------------------------------------------


def text_block_of(answer: Answer) -> bytes:
    """The 256-byte text block of a successful read answer; the photo is checked for length
    only and dropped here (never decoded, stored or returned)."""
    if not answer.ok:
        raise error_for_status(answer.sw3)
    payload = answer.payload
    if len(payload) < 4:
        raise CardDataInvalid("read answer too short", reason="read_answer_malformed")
    text_length = int.from_bytes(payload[0:2], "big")
    photo_length = int.from_bytes(payload[2:4], "big")
    if text_length != TEXT_BLOCK_SIZE or len(payload) != 4 + text_length + photo_length:
        raise CardDataInvalid("read answer lengths disagree", reason="read_answer_malformed")
    return payload[4 : 4 + TEXT_BLOCK_SIZE]


def card_type_of(block: bytes) -> CardType:
    """The document type the block's flag (char 124) says [inference from vendor SDKs]."""
    if len(block) != TEXT_BLOCK_SIZE:
        raise CardDataInvalid("text block is not 256 bytes", reason="text_block_invalid")
    flag = block[CARD_TYPE_OFFSET : CARD_TYPE_OFFSET + 2]
    if flag[1] != 0:  # outside ASCII: not a flag any SDK knows
        return CardType.UNKNOWN
    return CARD_TYPE_FLAGS.get(chr(flag[0]), CardType.UNKNOWN)


# Char offsets of the fields kept (reference/devices.md 2.3); the rest is never decoded.
_NAME = (0, 15)
_SEX = (15, 1)
_BIRTH = (18, 8)
_ID_NUMBER = (61, 18)
_VALID_UNTIL = (102, 8)

_PAD = " \x00"
_DATE = re.compile(r"[0-9]{8}")
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")
_SEXES: Final = {"1": Sex.MALE, "2": Sex.FEMALE, "0": Sex.UNKNOWN, "9": Sex.UNKNOWN}


def _field(block: bytes, span: tuple[int, int], reason: str) -> str:
    first, count = span
    raw = block[first * 2 : (first + count) * 2]
    try:
        # UCS-2: a lone surrogate is undecodable; a pair stays within its field or fails here.
        return raw.decode("utf-16-le").strip(_PAD)
    except UnicodeDecodeError:
        raise CardDataInvalid("field is not UCS-2", reason=reason) from None


def _date(text: str, reason: str) -> dt.date:
    if not _DATE.fullmatch(text):
        raise CardDataInvalid("date is not YYYYMMDD", reason=reason)
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise CardDataInvalid("date is not a calendar date", reason=reason) from None


def holder_from_text_block(block: bytes) -> CardHolder:
    """The card holder from a citizen card's text block; other documents raise OtherDocument.

    The ID number's check digit is left to the flows; its shape (17 digits and a digit or X)
    is checked here, as are the dates and the name.
    """
    card_type = card_type_of(block)
    if card_type is not CardType.CITIZEN:
        raise OtherDocument(card_type)
    name = _field(block, _NAME, "name_invalid")
    if not name or any(ch < " " or "\x7f" <= ch < "\xa0" for ch in name):
        raise CardDataInvalid("name is empty or has control characters", reason="name_invalid")
    sex_text = _field(block, _SEX, "sex_invalid")
    sex = _SEXES.get(sex_text)
    if sex is None:
        raise CardDataInvalid("sex is not a GB/T 2261.1 code", reason="sex_invalid")
    birth = _date(_field(block, _BIRTH, "birth_date_invalid"), "birth_date_invalid")
    id_number = _field(block, _ID_NUMBER, "id_number_invalid")
    if not _ID_SHAPE.fullmatch(id_number):
        raise CardDataInvalid("ID number has the wrong shape", reason="id_number_invalid")
    until = _field(block, _VALID_UNTIL, "valid_until_invalid")
    expires = None if until == LONG_TERM else _date(until, "valid_until_invalid")
    return CardHolder(
        id_number=id_number,
        name=name,
        sex=sex,
        birth_date=birth,
        card_number="",
        region_code=id_number[:6],
        expires=expires,
        document=IdentityDocument.RESIDENT_ID_CARD,
    )


def holder_from_read_answer(answer: Answer) -> CardHolder:
    """The card holder from the read (30 01) answer: statuses, lengths, type flag, fields."""
    return holder_from_text_block(text_block_of(answer))

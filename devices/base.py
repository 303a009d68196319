"""Interfaces every device shares: its reported state, its typed errors, and what it exchanges."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class Health(enum.StrEnum):
    """How a device is doing, as reported in every heartbeat."""

    OK = "ok"
    DEGRADED = "degraded"  # still usable, needs attention soon (paper near end)
    FAULT = "fault"  # not usable (paper out, cover open, offline, absent)


@dataclass(frozen=True)
class DeviceState:
    """A device's health and, unless ok, a machine-readable reason such as ``paper_out``."""

    health: Health
    reason: str = ""

    @classmethod
    def ok(cls) -> DeviceState:
        return cls(Health.OK)

    @classmethod
    def degraded(cls, reason: str) -> DeviceState:
        return cls(Health.DEGRADED, reason)

    @classmethod
    def fault(cls, reason: str) -> DeviceState:
        return cls(Health.FAULT, reason)

    @property
    def usable(self) -> bool:
        return self.health is not Health.FAULT


class DeviceError(Exception):
    """Base of every device error; ``reason`` is a stable code, never personal data."""

    reason = "device_error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message or self.reason)
        if reason is not None:
            self.reason = reason


class DeviceTimeout(DeviceError):
    """The device did not answer within its timeout."""

    reason = "timeout"


class DeviceUnavailable(DeviceError):
    """The device or its service (pcscd, the printer's socket) cannot be reached."""

    reason = "offline"


# --- card reader -------------------------------------------------------------------------------


class CardError(DeviceError):
    """Base of card errors."""

    reason = "card_error"


class CardRemoved(CardError):
    """The card left the reader before the read finished."""

    reason = "card_removed"


class UnsupportedCard(CardError):
    """The card answered, but it is not a card we know (not a social security card)."""

    reason = "unsupported_card"


class CardDataInvalid(CardError):
    """The card is of a known kind but its records are missing or malformed."""

    reason = "card_data_invalid"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class IdentityDocument(enum.StrEnum):
    """What a resident identified with: each way gives the flows the same ``CardHolder``."""

    SOCIAL_SECURITY_CARD = "social_security_card"  # 社会保障卡, held in the PC/SC reader
    RESIDENT_ID_CARD = "resident_id_card"  # 居民身份证, presented once to the SAM reader
    E_CODE = "e_code"  # 电子社保卡 / 一码办 code from a phone, resolved by the hub


@dataclass(frozen=True, repr=False)
class CardHolder:
    """Who a resident is, from whichever document. Personal data: never log it, never repr it."""

    id_number: str  # 社会保障号码 = 公民身份号码, 18 characters as read, not yet checked
    name: str
    sex: Sex
    birth_date: dt.date | None
    card_number: str  # 社会保障卡卡号; empty for the other documents
    region_code: str  # 统筹区 of a social security card; the ID number's first six digits otherwise
    expires: dt.date | None  # None: no expiry known (or 长期, a long-term ID card)
    document: IdentityDocument = IdentityDocument.SOCIAL_SECURITY_CARD

    def __repr__(self) -> str:
        # Dataclass reprs end up in tracebacks and log lines; this one must not carry the person.
        return "CardHolder(<redacted>)"


@dataclass(frozen=True, repr=False)
class StaffBadge:
    """A card without a resident profile, known only by its UID: a staff badge when the UID is on
    the terminal's list. The UID is a credential: never log it, never repr it."""

    uid: str  # upper-case hex, as GET DATA (FF CA 00 00 00) answers it

    def __repr__(self) -> str:
        return "StaffBadge(<uid>)"


# --- receipt printer ---------------------------------------------------------------------------


class PrinterError(DeviceError):
    """Base of printer errors."""

    reason = "printer_error"


class PaperOut(PrinterError):
    reason = "paper_out"


class CoverOpen(PrinterError):
    reason = "cover_open"


class PrinterOffline(PrinterError, DeviceUnavailable):
    reason = "offline"


class Align(enum.StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True)
class TextLine:
    """One line of receipt text; ``emphasis`` prints bold, ``large`` double width and height;
    where it wraps, the lines after the first start under its ``hang``-th character (a checklist
    entry's words under its words, not under its box)."""

    text: str
    align: Align = Align.LEFT
    emphasis: bool = False
    large: bool = False
    hang: int = 0


@dataclass(frozen=True)
class FieldLine:
    """A label and its value on one line, the value pushed right (e.g. 姓名 ... 张*)."""

    label: str
    value: str


@dataclass(frozen=True)
class Rule:
    """A horizontal separator across the paper width."""


@dataclass(frozen=True)
class QrCode:
    """A QR code, centred; ``caption`` is printed under it."""

    data: str
    caption: str = ""


@dataclass(frozen=True)
class Feed:
    lines: int = 1


ReceiptBlock = TextLine | FieldLine | Rule | QrCode | Feed


@dataclass(frozen=True)
class Receipt:
    """A receipt as a list of blocks; the printer driver lays it out for its paper width."""

    blocks: tuple[ReceiptBlock, ...] = field(default_factory=tuple)

"""Domain rules for identity data: the ID number check digit (GB 11643) and on-screen masking."""

from __future__ import annotations

import datetime as dt
import re

# GB 11643-1999 / ISO 7064 MOD 11-2: weight of digit i (1..17) is 2^(18-i) mod 11.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"
# ASCII digits only, matched whole: `\d` also takes any Unicode decimal digit ("٦", "６"), which
# int() reads as a number, so such a string passed the check digit and reached the hub; and `$`
# also matches before a final newline.
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# Padding around a number as cards (NUL) and keyboards (spaces, the IME's full-width space, a
# newline) leave it, in any order: stripped in one pass, so normalising twice changes nothing.
_PADDING = re.compile(r"\A[\s\x00]+|[\s\x00]+\Z")


class InvalidIdNumber(ValueError):
    """An ID number with the wrong shape, an impossible birth date or a wrong check digit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "shape", "birth_date" or "check_digit"; never the number itself


def check_character(first17: str) -> str:
    """The check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_id_number(raw: str) -> str:
    """Strip padding and upper-case a trailing 'x', as cards and keyboards may give it."""
    return _PADDING.sub("", raw).upper()


def validate_id_number(raw: str) -> str:
    """Return the normalised ID number, or raise InvalidIdNumber saying what is wrong."""
    number = normalise_id_number(raw)
    if not _SHAPE.fullmatch(number):
        raise InvalidIdNumber("shape")
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("birth_date") from None
    if check_character(number[:17]) != number[17]:
        raise InvalidIdNumber("check_digit")
    return number


def is_valid_id_number(raw: str) -> bool:
    try:
        validate_id_number(raw)
    except InvalidIdNumber:
        return False
    return True


def mask_id_number(number: str) -> str:
    """First 4 and last 4 characters with 10 '*' between: ``1101**********002X``.

    Anything that is not 18 characters long is masked whole, so a malformed number never shows.
    """
    number = normalise_id_number(number)
    if len(number) != 18:
        return "*" * 18
    return number[:4] + "*" * 10 + number[-4:]


def mask_name(name: str) -> str:
    """First character, then one '*' per remaining character: ``张*``, ``欧***``."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


_ADDRESS_AREA_END = ("街道", "镇", "乡", "区", "县", "市")


def mask_address(address: str) -> str:
    """An address as a screen or a receipt may show it: the area down to the township, the rest
    hidden (浙江省温州市瑞安市塘下镇****); a resident recognises their own, a passer-by learns
    no door."""
    text = address.strip()
    for end in _ADDRESS_AREA_END:
        cut = text.rfind(end)
        if 0 < cut < len(text) - len(end):
            return text[: cut + len(end)] + "****"
    return text[: max(2, len(text) // 3)] + "****"

"""Logging for the terminal: one stderr stream, with a last-resort filter against personal data.

Code never logs personal data; this filter is the belt to those braces. In every record, before
it is written, it masks what is shaped like an ID number (18 characters, or the old 15 digits),
a social security card number (a letter and 8 digits), a bank card number (16 to 19 digits) or a
mainland mobile number (with or without +86), and the value of any field named for a person's
name (``name=张三``, ``"holder_name": "..."``, ``姓名：...``), so a mistake in a future log line,
or a hub error message quoted in one, cannot put a resident into the journal.

The shapes follow the ones events are screened for (contracts/personal.py) but are not imported
from there: a screen refuses a whole value on a hint (any run of 16 to 19 digits, any Chinese
text), while a log keeps its line and masks only the number, so it needs the parts to keep and
tighter edges. Only ASCII digits count as digits, and each shape must stand alone (no digit
right before or after it), so timestamps, ports, durations, status bytes, UUIDs and sequence
numbers are left as they are.
"""

from __future__ import annotations

import logging
import re
import sys

# 公民身份号码: 17 digits and a check character; a letter or 'X' right after it is still masked.
_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{4})[0-9]{10}([0-9]{3}[0-9Xx])(?![0-9])")
# The first-generation number: 15 digits, starting with a region code (1..8).
_OLD_ID_NUMBER = re.compile(r"(?<![0-9])([1-8][0-9]{3})[0-9]{7}([0-9]{4})(?![0-9])")
# Bank card numbers, also on many social security cards: 16 to 19 digits, whole or in groups of
# four. ISO/IEC 7812 issues none starting with 0 or 1, and leaving those out spares the clock:
# epoch microseconds and nanoseconds are 16 and 19 digits starting with 1 until the year 2286.
_BANK_CARD = re.compile(
    r"(?<![0-9])(?:([2-9][0-9]{3})([0-9]{8,11})([0-9]{4})"
    r"|([2-9][0-9]{3})([ -])([0-9]{4}\5[0-9]{4})\5([0-9]{4}(?:\5[0-9]{1,3})?))(?![0-9])"
)
# 社会保障卡卡号: one letter and eight digits, standing alone (so 0x12345678 is not one).
_SOCIAL_SECURITY_CARD = re.compile(r"(?<![0-9A-Za-z])([A-Za-z])[0-9]{8}(?![0-9A-Za-z])")
# Mainland mobile numbers: 1[3-9] and nine more digits, plain or as 3-4-4 with dashes, with or
# without a +86 / 0086 / 86 prefix. Spaces between the groups are left out: "150 2000 3000" is
# more often a list of figures than a phone number.
_PHONE = re.compile(
    r"(?<![0-9])((?:(?:\+|00)?86[ -]?)?1[3-9][0-9])(-?)[0-9]{4}(\2[0-9]{4})(?![0-9])"
)
# Fields named for a person's name, as key=value, key: value, JSON or a Python repr; the key is
# a whole word, so hostname=, filename= or screen_name= are left alone. Its quotes are optional
# each on its own: a quoted value just before may have taken the opening one.
_NAME_KEYS = (
    r"(?:(?:holder|card_?holder|resident|person|citizen|applicant|full|real|given|family"
    r"|first|last|middle|sur)_?)?names?|card_?holder|holder"
)
_NAME_FIELD = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_])[\"']?(?i:" + _NAME_KEYS + r")[\"']?"
    r"|姓名|持卡人)"
    r"(?P<separator>\s*[:=：]\s*)"
    r"(?:\"(?P<double>(?:[^\"\\\n]|\\.)*)\"|'(?P<single>(?:[^'\\\n]|\\.)*)'"
    r"|(?P<bare>[^\s,;&(){}\[\]<>\"'][^\s,;&(){}\[\]<>\"]*))"
)


def _mask_name_field(match: re.Match[str]) -> str:
    for group, quote in (("double", '"'), ("single", "'"), ("bare", "")):
        value = match.group(group)
        if value is not None:
            # As on screen (张*), but a one-character name is masked whole: a log is no place
            # for even that.
            masked = value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*" * len(value)
            return match.group("key") + match.group("separator") + quote + masked + quote
    return match.group(0)  # pragma: no cover - one of the three value groups always matches


def _mask_bank_card(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return match.group(1) + "*" * len(match.group(2)) + match.group(3)
    separator = match.group(5)
    middle = re.sub(r"[0-9]", "*", match.group(6))
    return match.group(4) + separator + middle + separator + match.group(7)


def redact(text: str) -> str:
    """Mask personal data in a log message, keeping enough to tell what was there.

    ID numbers as on screen (``1101**********002X``), bank cards ``6222********0123``, social
    security cards ``A********``, phones ``138****5678``, names ``张*``.
    """
    text = _NAME_FIELD.sub(_mask_name_field, text)
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _OLD_ID_NUMBER.sub(lambda m: m.group(1) + "*" * 7 + m.group(2), text)
    text = _BANK_CARD.sub(_mask_bank_card, text)
    text = _SOCIAL_SECURITY_CARD.sub(lambda m: m.group(1) + "*" * 8, text)
    return _PHONE.sub(lambda m: m.group(1) + m.group(2) + "****" + m.group(3), text)


class RedactingFilter(logging.Filter):
    """Formats the record's message early and masks it; arguments are dropped afterwards."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not raise into the code that logged it
            # The arguments are left out, not quoted: a name among them would pass every mask.
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            kinds = ", ".join(type(arg).__name__ for arg in args)
            message = f"{record.msg} (arguments of types {kinds} did not fit the format)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

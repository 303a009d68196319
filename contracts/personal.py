"""What counts as personal data in anything the terminal sends, and the screen for event fields.

Stdlib only, so the terminal can screen an event the moment it is recorded (before the pydantic
models of ``contracts.mqtt`` are imported, which costs start-up time) and the central side can
screen again what it stores. No payload may carry a name, an ID number, a card number, a phone
number or an address (DESIGN 6 and 10).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

# Field names that name personal data, as whole words of a snake_case key (``holder_name``,
# ``phone``) or as compounds (``id_number``, ``card_no``).
_PERSONAL_WORDS = frozenset({
    "name", "names", "surname", "fullname", "username", "holder", "person", "resident", "citizen",
    "phone", "mobile", "tel", "telephone", "address", "email", "birth",
    "birthday", "dob", "passport", "idno", "idcard", "sfz", "ssn", "pin", "password",
})
_PERSONAL_COMPOUNDS = ("id_number", "idnumber", "id_card", "id_no", "card_number", "card_no",
                       "cardno", "card_num", "account_number")
# ``\d`` inside a run is Unicode-aware on purpose: a number written in full-width or other digits
# is still that number, and a screen errs on the side of refusing. The edges look for ASCII digits
# only: with ``\d`` there, one non-ASCII digit beside a number hid it (found by fuzzing:
# "13812345678٠" passed as no phone number).
_PERSONAL_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # 公民身份号码: 17 digits and a digit or X; also the old 15-digit form.
    ("an ID number", re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")),
    ("an ID number", re.compile(r"(?<![0-9])\d{15}(?![0-9])")),
    # Bank card numbers (16-19 digits) printed on many social security cards.
    ("a card number", re.compile(r"(?<![0-9])\d{16,19}(?![0-9])")),
    # 社会保障卡卡号: a letter and eight digits.
    ("a card number", re.compile(r"(?<![0-9A-Za-z])[A-Za-z]\d{8}(?![0-9A-Za-z])")),
    # Mainland mobile numbers, with or without +86.
    ("a phone number", re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d{9}(?![0-9])")),
    # Names and addresses cannot be recognised by shape, but they are written in Chinese; event
    # values are machine codes, so any CJK text is refused rather than guessed at.
    ("Chinese free text (a name, an address?)",
     re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
)

EventValue = str | int | float | bool | None
_EVENT_FIELD = re.compile(r"[a-z][a-z0-9_]{0,39}")
EVENT_TEXT_MAX = 128
EVENT_FIELDS_MAX = 32
# An event's own fields; a type-specific field may not take their names.
RESERVED_EVENT_FIELDS = frozenset({"v", "ts", "seq", "type", "severity", "dropped_fields"})
# JSON numbers a receiver can take without losing precision (a double's integer range).
_SAFE_INTEGER = 2**53


def personal_data_reason(key: str, value: object) -> str | None:
    """Why a field looks personal (never echoing the value), or None when it looks safe."""
    lowered = key.lower()
    if set(lowered.split("_")) & _PERSONAL_WORDS or any(c in lowered for c in _PERSONAL_COMPOUNDS):
        return f"field '{_shown(key)}' names personal data"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    for what, pattern in _PERSONAL_VALUES:
        if pattern.search(text):
            return f"value of field '{_shown(key)}' looks like {what}"
    return None


def event_field_problem(key: str, value: object) -> str | None:
    """Why ``key=value`` may not travel in an event (shape or personal data), or None if it may."""
    if not isinstance(key, str) or not _EVENT_FIELD.fullmatch(key):
        return "event field names are lower-case snake_case, at most 40 characters"
    if isinstance(value, float) and not math.isfinite(value):
        return f"value of field '{key}' is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INTEGER:
        return f"value of field '{key}' is too large a number"
    if not isinstance(value, str | int | float | bool) and value is not None:
        return f"value of field '{key}' must be a string, number, boolean or null"
    if isinstance(value, str) and len(value) > EVENT_TEXT_MAX:
        return f"value of field '{key}' is longer than {EVENT_TEXT_MAX} characters"
    return personal_data_reason(key, value)


@dataclass(frozen=True)
class ScreenedFields:
    """An event's fields after screening: what may travel, and why the others may not."""

    kept: dict[str, EventValue]
    problems: tuple[str, ...]  # one per dropped field; names the field only once it is a code

    def with_dropped_count(self) -> dict[str, EventValue]:
        """The fields to send: those kept, plus ``dropped_fields: n`` when any were dropped."""
        if not self.problems:
            return dict(self.kept)
        return {**self.kept, "dropped_fields": len(self.problems)}


def screen_event_fields(fields: Mapping[str, object]) -> ScreenedFields:
    """Keep the fields an event may carry; drop (and say why) any that look personal, are not
    scalars, take a reserved name, or come after the first ``EVENT_FIELDS_MAX - 1``."""
    kept: dict[str, EventValue] = {}
    problems: list[str] = []
    for key, value in fields.items():
        problem = event_field_problem(key, value)
        if problem is None and key in RESERVED_EVENT_FIELDS:
            problem = f"field name '{key}' is reserved"
        if problem is None and len(kept) >= EVENT_FIELDS_MAX - 1:  # room for dropped_fields
            problem = f"more than {EVENT_FIELDS_MAX - 1} fields"
        if problem is None:
            kept[key] = cast(EventValue, value)  # event_field_problem checked its type
        else:
            problems.append(problem)
    return ScreenedFields(kept, tuple(problems))


_SHOWN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _shown(key: str) -> str:
    # A key comes from the sender too: one that is not a plain identifier is not repeated.
    return key if _SHOWN_KEY.fullmatch(key) else "<key>"

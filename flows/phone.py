"""Mobile phone numbers typed on the keypad: the mainland pattern, and the mask shown after entry.

A phone number is personal: once all 11 digits are in, screens and receipts show 138****5678;
while it is typed the resident sees the digits, or nobody could check them.
"""

from __future__ import annotations

import re

from flows.forms import FieldRule
from flows.steps import FieldKind, Text, t

MOBILE_DIGITS = 11
# 1, then 3-9 (every mainland mobile segment today: 13x-19x), then 9 digits.
_MOBILE = re.compile(r"1[3-9]\d{9}")


def is_mobile(number: str) -> bool:
    return bool(_MOBILE.fullmatch(number))


def mask_phone(number: str) -> str:
    """138****5678 once complete; as typed before that."""
    if len(number) != MOBILE_DIGITS:
        return number
    return f"{number[:3]}****{number[-4:]}"


def _mobile_problem(number: str) -> Text | None:
    return None if is_mobile(number) else t("form.error.mobile")


def phone_rule(field_id: str = "phone", *, required: bool = True) -> FieldRule:
    """A keypad field for a mainland mobile number: 11 digits starting 13-19."""
    return FieldRule(field_id, FieldKind.DIGITS, min_length=MOBILE_DIGITS,
                     max_length=MOBILE_DIGITS, required=required, check=_mobile_problem,
                     mask=mask_phone)

"""Fuzz ID number checking and masking (flows/identity.py) over any text: only InvalidIdNumber.

Also the check digit's promise both ways: every valid number validates, and changing any one
character of it (to another ASCII digit, or to the same digit in another script) never does.
"""

from __future__ import annotations

import sys
import unicodedata

from hypothesis import assume, given
from hypothesis import strategies as st

from flows.identity import (
    InvalidIdNumber,
    check_character,
    is_valid_id_number,
    mask_id_number,
    mask_name,
    normalise_id_number,
    validate_id_number,
)

_DIGITS = "0123456789"
_SHAPED_LIKE_ID = st.text(_DIGITS + "Xx", min_size=17, max_size=19)  # reaches the later checks
_ANY_TEXT = st.one_of(st.text(), _SHAPED_LIKE_ID)
_PADDING = st.text(" \t\n\r\x00\u3000\xa0", max_size=4)
# Decimal digits of every script but ASCII, by value: `\d` and int() accept them all.
_FOREIGN_DIGITS: dict[int, list[str]] = {value: [] for value in range(10)}
for _code in range(0x80, sys.maxunicode + 1):
    if unicodedata.category(chr(_code)) == "Nd":
        _FOREIGN_DIGITS[unicodedata.digit(chr(_code))].append(chr(_code))


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 公民身份号码: any region, a real date, any sequence, the right check character."""
    region = draw(st.text(_DIGITS, min_size=6, max_size=6))
    born = draw(st.dates())
    sequence = draw(st.text(_DIGITS, min_size=3, max_size=3))
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{sequence}"
    return first17 + check_character(first17)


@given(_ANY_TEXT)
def test_any_text_validates_to_18_ascii_characters_or_raises_invalid_id_number(raw: str) -> None:
    try:
        number = validate_id_number(raw)
    except InvalidIdNumber as e:
        assert e.reason in ("shape", "birth_date", "check_digit")
        return
    assert len(number) == 18 and all(c in _DIGITS for c in number[:17])
    assert number[17] in _DIGITS + "X"
    assert number == normalise_id_number(raw) and is_valid_id_number(number)


@given(_ANY_TEXT)
def test_normalising_never_raises_and_is_idempotent(raw: str) -> None:
    once = normalise_id_number(raw)
    assert normalise_id_number(once) == once


@given(id_numbers(), _PADDING, _PADDING, st.booleans())
def test_every_valid_number_validates_whatever_its_padding(
    number: str, before: str, after: str, lower_x: bool
) -> None:
    typed = number.lower() if lower_x else number
    assert validate_id_number(before + typed + after) == number


@given(id_numbers(), st.integers(0, 17), st.sampled_from(_DIGITS + "X"))
def test_changing_one_character_never_keeps_the_check_digit_valid(
    number: str, position: int, replacement: str
) -> None:
    changed = number[:position] + replacement + number[position + 1 :]
    if changed == number:
        assert is_valid_id_number(changed)
        return
    # MOD 11-2 weights are all non-zero mod 11 and 11 is prime, so one changed digit always
    # changes the sum; a changed birth date may be caught earlier, as an impossible date.
    try:
        validate_id_number(changed)
    except InvalidIdNumber as e:
        assert e.reason in ("shape", "birth_date", "check_digit")
    else:
        raise AssertionError("a number with one character changed still validates")


@given(id_numbers(), st.integers(0, 17), st.data())
def test_a_digit_from_another_script_is_never_an_id_digit(
    number: str, position: int, data: st.DataObject
) -> None:
    digit = number[position]
    assume(digit != "X")
    foreign = data.draw(st.sampled_from(_FOREIGN_DIGITS[int(digit)]))
    try:
        validate_id_number(number[:position] + foreign + number[position + 1 :])
    except InvalidIdNumber as e:
        assert e.reason == "shape"
    else:
        raise AssertionError(f"{foreign!r} accepted as an ID number digit")


@given(_ANY_TEXT)
def test_masking_any_text_shows_at_most_eight_of_its_characters(raw: str) -> None:
    masked = mask_id_number(raw)
    assert len(masked) == 18 and masked[4:14] == "*" * 10
    normalised = normalise_id_number(raw)
    if len(normalised) == 18:
        assert masked == normalised[:4] + "*" * 10 + normalised[-4:]
    else:
        assert masked == "*" * 18


@given(st.text())
def test_masking_a_name_keeps_only_its_first_character(name: str) -> None:
    masked = mask_name(name)
    stripped = name.strip()
    assert len(masked) == len(stripped)
    assert masked[:1] == stripped[:1] and set(masked[1:]) <= {"*"}

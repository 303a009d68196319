"""Fuzz the log redaction (terminal/log_setup.py redact): it never raises, and personal data
planted anywhere in any text never survives it.

"Anywhere" means standing alone, as it would in a log line: with a separator that is not a
letter or digit on each side (or the start or end of the text). A number run together with
other digits is a different number, and masking every digit run would mask the clock too.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flows.identity import check_character
from terminal.log_setup import redact

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
_DIGITS = "0123456789"
# Neither letters nor digits nor '_' (which makes "x_name" a key of another name).
_SEPARATORS = st.sampled_from(list(" \t\n,;:=()[]{}<>\"'/|!?*#+.，。：；（）、 "))
# Log-like surroundings: any text, and text made of digits and separators (the hard case).
_SURROUNDINGS = st.one_of(
    st.text(ANY_CHARACTER, max_size=30), st.text(_DIGITS + " -+:.xX", max_size=30)
)


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text(_DIGITS, min_size=count, max_size=count)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 公民身份号码 (any region, a real date, the right check character), or any shape."""
    region = draw(_digits(6))
    born = draw(st.dates())
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{draw(_digits(3))}"
    last: str = draw(st.sampled_from([check_character(first17), *_DIGITS, "X", "x"]))
    return first17 + last


_OLD_ID_NUMBERS = st.builds(
    lambda first, rest: first + rest, st.sampled_from("12345678"), _digits(14)
)
_BANK_CARDS = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("23456789"),
    st.integers(15, 18).flatmap(_digits),
)
_GROUPED_BANK_CARDS = st.builds(
    lambda number, separator: separator.join(number[i : i + 4] for i in range(0, len(number), 4)),
    _BANK_CARDS,
    st.sampled_from([" ", "-"]),
)
_SOCIAL_SECURITY_CARDS = st.builds(
    lambda letter, digits: letter + digits,
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    _digits(8),
)
_PHONES = st.builds(
    lambda prefix, second, rest, dashed: (
        prefix + "1" + second + (f"{rest[:1]}-{rest[1:5]}-{rest[5:]}" if dashed else rest)
    ),
    st.sampled_from(["", "+86", "+86 ", "+86-", "0086", "86"]),
    st.sampled_from("3456789"),
    _digits(9),
    st.booleans(),
)
PERSONAL_NUMBERS = st.one_of(
    id_numbers(),
    _OLD_ID_NUMBERS,
    _BANK_CARDS,
    _GROUPED_BANK_CARDS,
    _SOCIAL_SECURITY_CARDS,
    _PHONES,
)

# Names as a card or the hub gives them: Chinese, Latin, with a middle dot; no quotes or spaces.
_NAMES = st.text(
    st.one_of(st.characters(categories=["Lo"]), st.sampled_from("·abcXYZ")), min_size=2, max_size=8
)
_NAME_FIELDS = st.sampled_from(
    [
        "name={}",
        "name: {}",
        '"name": "{}"',
        "'holder_name': '{}'",
        "holder_name='{}'",
        'full_name="{}"',
        "Name={}",
        "姓名：{}",
        "持卡人={}",
        "surname={}",
    ]
)


@st.composite
def planted(draw: st.DrawFn, secret: st.SearchStrategy[str]) -> tuple[str, int]:
    """Any text with ``secret`` standing in it alone; returns the text and where the secret is."""
    before = draw(_SURROUNDINGS)
    after = draw(_SURROUNDINGS)
    head = before + (draw(_SEPARATORS) if before else "")
    tail = (draw(_SEPARATORS) if after else "") + after
    return head + draw(secret) + tail, len(head)


@given(st.text(ANY_CHARACTER))
def test_redacting_any_text_never_raises_and_only_ever_masks(text: str) -> None:
    masked = redact(text)
    # Length-preserving, character for character: what changes becomes '*' and nothing else.
    assert len(masked) == len(text)
    assert all(b in (a, "*") for a, b in zip(text, masked, strict=True))
    assert redact(masked) == masked


@given(PERSONAL_NUMBERS, st.data())
def test_a_planted_id_card_or_phone_number_never_survives(secret: str, data: st.DataObject) -> None:
    text, start = data.draw(planted(st.just(secret)))
    shown = redact(text)[start : start + len(secret)]
    # At least four of its digits are gone: a phone keeps 7 of its 11 (138****5678, as Chinese
    # receipts show it), every other shape keeps fewer.
    assert sum(1 for a, b in zip(secret, shown, strict=True) if a.isdigit() and b == "*") >= 4


@given(_NAME_FIELDS, _NAMES, st.data())
def test_a_name_in_a_known_field_never_survives(field: str, name: str, data: st.DataObject) -> None:
    text, start = data.draw(planted(st.just(field.format(name))))
    at = start + field.index("{}")
    shown = redact(text)[at : at + len(name)]
    # Everything but the first character is masked (that one too if a key before it took it).
    assert shown != name and shown[1:] == "*" * (len(name) - 1)

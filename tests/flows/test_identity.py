"""ID number check digit (GB 11643 MOD 11-2) and the masking rules of DESIGN section 10."""

import pytest

from flows.identity import (
    InvalidIdNumber,
    check_character,
    is_valid_id_number,
    mask_id_number,
    mask_name,
    normalise_id_number,
    validate_id_number,
)


@pytest.mark.parametrize(
    "number",
    ["34052419800101001X", "11010519491231002X", "110101199003070011", "440524188001010014"],
)
def test_known_valid_numbers_pass(number: str) -> None:
    assert validate_id_number(number) == number


def test_lowercase_x_is_normalised() -> None:
    assert validate_id_number("34052419800101001x") == "34052419800101001X"


def test_weights_give_the_published_check_characters() -> None:
    # Weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; sum mod 11 -> "10X98765432".
    assert check_character("34052419800101001") == "X"
    assert check_character("11010119900307001") == "1"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("340524198001010019", "check_digit"),
        ("34052419800101001", "shape"),
        ("3405241980010100AX", "shape"),
        ("340524198002300010", "birth_date"),
    ],
)
def test_bad_numbers_say_why(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number(number)
    assert caught.value.reason == reason
    assert number not in str(caught.value)


def test_every_single_digit_change_is_caught() -> None:
    number = "11010519491231002X"
    for i in range(17):
        for digit in "0123456789":
            if digit != number[i]:
                assert not is_valid_id_number(number[:i] + digit + number[i + 1 :])


def test_id_number_masking() -> None:
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_id_number("short") == "*" * 18


@pytest.mark.parametrize(
    ("name", "masked"), [("张三", "张*"), ("欧阳娜娜", "欧***"), ("王", "王"), ("", "")]
)
def test_name_masking(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_only_ascii_digits_make_an_id_number() -> None:
    # "٦" (ARABIC-INDIC DIGIT SIX) is a decimal digit to `\d` and to int(), so this number used to
    # pass its check digit; the hub then answered 500 to a number no register holds.
    with pytest.raises(InvalidIdNumber) as caught:
        validate_id_number("61554619070٦108457")
    assert caught.value.reason == "shape"
    with pytest.raises(InvalidIdNumber):
        validate_id_number("１１０１０５１９４９１２３１００２X")  # full-width digits


def test_a_valid_number_with_a_newline_before_its_padding_is_returned_bare() -> None:
    # `$` matches before a final newline, so "...002X\n" (the newline kept in front of a trailing
    # NUL) passed the shape check and came back 19 characters long.
    assert validate_id_number("11010519491231002X\n\x00") == "11010519491231002X"
    assert validate_id_number("\x00 11010519491231002x \x00\u3000") == "11010519491231002X"


def test_normalising_twice_changes_nothing() -> None:
    once = normalise_id_number(" \x00 11010519491231002x\x00 ")
    assert once == "11010519491231002X"
    assert normalise_id_number(once) == once

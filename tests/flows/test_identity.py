"""ID number check digit (GB 11643 MOD 11-2) and the masking rules of DESIGN section 10."""

import pytest

from flows.identity import (
    InvalidIdNumber,
    check_character,
    is_valid_id_number,
    mask_id_number,
    mask_name,
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

"""Scanned codes: the URLs on receipts and slips told back, and e-ID codes told apart from them."""

import base64
import hashlib
import secrets

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.codes import (
    E_ID_PATTERN,
    E_ID_PREFIX,
    PRINTED_KINDS,
    REFERENCE_PATTERN,
    CodeKind,
    PrintedCode,
    appointment_url,
    check_code,
    is_e_id_code,
    is_reference,
    parse_code,
    progress_url,
)

CASE = "SB20261207000123"
LOCAL = "L-T0001-20261207-0007"
HUB = "https://hub.example.gov.cn"

references = st.from_regex(REFERENCE_PATTERN, fullmatch=True)
hosts = st.sampled_from(
    [
        "https://hub.example.gov.cn",
        "http://10.20.30.40:8702",
        "https://hub.example.gov.cn/kiosk/api",
        "http://localhost:8702/",
        "HTTPS://Hub.Example.gov.cn",
    ]
)


def test_progress_url_is_the_documented_form() -> None:
    check = base64.b32encode(hashlib.sha256(f"kiosk-progress:{CASE}".encode()).digest())[:4]
    assert progress_url(HUB, CASE) == f"{HUB}/v1/progress/{CASE}?c={check.decode()}"


def test_appointment_url_is_the_documented_form() -> None:
    check = base64.b32encode(hashlib.sha256(f"kiosk-appointment:{LOCAL}".encode()).digest())[:4]
    assert appointment_url(HUB + "/", LOCAL) == f"{HUB}/v1/appointments/{LOCAL}?c={check.decode()}"


def test_checks_are_pinned() -> None:
    # Receipts already printed carry these: a change here strands every one of them.
    assert check_code(CodeKind.PROGRESS, CASE) == "JGA2"
    assert progress_url(HUB, CASE) == f"{HUB}/v1/progress/{CASE}?c=JGA2"
    assert check_code(CodeKind.APPOINTMENT, LOCAL) == "A65Q"


@given(kind=st.sampled_from(sorted(PRINTED_KINDS)), base=hosts, reference=references)
def test_every_printed_code_parses_back(kind: CodeKind, base: str, reference: str) -> None:
    url = (progress_url if kind is CodeKind.PROGRESS else appointment_url)(base, reference)
    assert parse_code(url) == PrintedCode(kind, reference)


def test_a_code_printed_for_another_host_of_the_same_hub_parses() -> None:
    url = progress_url("https://other-terminal-proxy.example.org:8443/x", LOCAL)
    assert parse_code(url) == PrintedCode(CodeKind.PROGRESS, LOCAL)


@pytest.mark.parametrize(
    "reference",
    ["SB123", "x" * 91, "-SB2026120700", "SB 2026", "SB2026/12", "SB2026?c=1", "办件2026120700",
     "", "SB2026\n01"],
)
def test_a_reference_that_cannot_be_printed_is_refused(reference: str) -> None:
    assert not is_reference(reference)
    with pytest.raises(ValueError, match="6-40"):
        progress_url(HUB, reference)
    with pytest.raises(ValueError, match="6-40"):
        appointment_url(HUB, reference)


@pytest.mark.parametrize(
    "base",
    [
        "ftp://hub.example",
        "hub.example",
        "https://",
        "https://hub.example?x=1",
        "https://hub.example#top",
        "https://user@hub.example",
        "https://hub.example//api",
        "https://hub.example/./api",
        "https://hub example",
        "https://hüb.example",
        "",
    ],
)
def test_a_base_url_parse_code_would_not_take_back_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        progress_url(base, CASE)


GOOD = progress_url(HUB, CASE)


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("c=JGA2", "c=JGA3"),  # damaged check
        GOOD.replace("c=JGA2", "c=jga2"),
        GOOD.replace("c=JGA2", "c=JGA"),
        GOOD.replace("?c=JGA2", ""),  # no check
        GOOD + "&x=1",  # more than we print
        "?x=1&".join(GOOD.split("?")),
        GOOD + "#frag",
        GOOD.replace("/progress/", "/appointments/"),  # a progress check on an appointment
        GOOD.replace("/v1/", "/v2/"),
        GOOD.replace("/progress/", "/progress/x/"),
        GOOD.replace(f"/{CASE}", f"/{CASE}/"),
        GOOD.replace("/v1/", "//v1/"),
        GOOD.replace("/v1/", "/../v1/"),
        GOOD.replace("/progress/", "/Progress/"),
        GOOD.replace(CASE, CASE.lower()),  # the check is over the exact reference
        GOOD.replace("https://", "ftp://"),
        GOOD.replace("https://", "https:///"),
        GOOD.replace("https://", "https://user:pw@"),
        GOOD.replace("hub.example.gov.cn", "hub.example.gov.cn:99999"),
        GOOD.replace("SB20", "SB%32"),
        " " + GOOD,
        GOOD + "\n",
        "https://evil.example/phish?u=" + GOOD,
        "https://hub.example.gov.cn/v1/documents/A7K29QX4",
        CASE,
        "11010519491231002X",  # an ID number on a barcode
        "6901234567892",  # an EAN-13
        "二维码内容",
        "",
        "https://" + "a" * 600 + "/v1/progress/SB20261207000123?c=JGA2",
    ],
)
def test_anything_else_is_not_a_printed_code(text: str) -> None:
    assert parse_code(text) is None


@given(st.text(max_size=200))
def test_parse_code_never_raises(text: str) -> None:
    result = parse_code(text)
    assert result is None or is_reference(result.reference)


@given(
    reference=references,
    position=st.integers(min_value=0, max_value=10_000),
    char=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"),
)
def test_one_damaged_character_in_the_reference_is_caught(
    reference: str, position: int, char: str
) -> None:
    index = position % len(reference)
    damaged = reference[:index] + char + reference[index + 1 :]
    # About one damaged code in a million has the same check by chance; that is the design.
    assume(check_code(CodeKind.PROGRESS, damaged) != check_code(CodeKind.PROGRESS, reference))
    url = progress_url(HUB, reference).replace(f"/{reference}?", f"/{damaged}?")
    assert parse_code(url) is None


# --- e-ID codes ----------------------------------------------------------------------------------

e_id_codes = st.from_regex(E_ID_PATTERN, fullmatch=True)
TOKEN = "hS2x7Qm0vXk4JrN9bWc1Tz8pLd6Ye3Ua5Fg0Ho2Ki7M"  # as a hub issues: token_urlsafe(32)


def test_the_e_id_form_is_the_documented_one() -> None:
    assert E_ID_PREFIX == "EID1:"
    assert is_e_id_code(E_ID_PREFIX + TOKEN)
    assert is_e_id_code("EID1:" + "a" * 22) and is_e_id_code("EID1:" + "-_" * 32)
    # What a hub issues fits, however the random bytes fall.
    assert all(is_e_id_code(E_ID_PREFIX + secrets.token_urlsafe(32)) for _ in range(200))
    assert CodeKind.E_ID.value == "e_id" and CodeKind.E_ID not in PRINTED_KINDS


@given(e_id_codes)
def test_an_e_id_code_is_never_taken_for_a_printed_code(code: str) -> None:
    assert is_e_id_code(code)
    assert parse_code(code) is None


@given(kind=st.sampled_from(sorted(PRINTED_KINDS)), base=hosts, reference=references)
def test_a_printed_code_is_never_taken_for_an_e_id_code(
    kind: CodeKind, base: str, reference: str
) -> None:
    url = (progress_url if kind is CodeKind.PROGRESS else appointment_url)(base, reference)
    assert not is_e_id_code(url)


@pytest.mark.parametrize(
    "text",
    [
        "EID1:" + "a" * 21,  # token too short: fewer than 128 bits
        "EID1:" + "a" * 65,  # too long
        "EID1:",
        "EID1",
        "eid1:" + TOKEN,  # the prefix is exact
        "EID2:" + TOKEN,  # a form this terminal does not know
        "EID1 :" + TOKEN,
        "EID1::" + TOKEN,
        " EID1:" + TOKEN,  # blanks are the scanner's to strip, not part of the code
        "EID1:" + TOKEN + "\n",
        "EID1:" + TOKEN + " ",
        "EID1:" + TOKEN[:20] + "+/" + TOKEN[22:],  # base64's other alphabet
        "EID1:" + TOKEN[:20] + "==",
        "EID1:" + TOKEN[:20] + "Ａ" + TOKEN[21:],  # a full-width letter
        "EID1:" + TOKEN[:20] + "٣" + TOKEN[21:],  # a digit of another script
        "EID1:" + TOKEN[:20] + "张" + TOKEN[21:],
        "https://hub.example.gov.cn/EID1:" + TOKEN,
        "11010519491231002X",
        TOKEN,  # a token without its prefix
        "",
    ],
)
def test_a_malformed_e_id_code_is_not_one(text: str) -> None:
    assert not is_e_id_code(text)
    assert parse_code(text) is None


@given(st.text(max_size=120) | st.builds(lambda tail: E_ID_PREFIX + tail, st.text(max_size=70)))
def test_is_e_id_code_never_raises_and_takes_only_the_form(text: str) -> None:
    if is_e_id_code(text):
        token = text.removeprefix(E_ID_PREFIX)
        assert text.startswith(E_ID_PREFIX) and text.isascii() and 22 <= len(token) <= 64
        assert all(char.isalnum() or char in "_-" for char in token)


def test_what_is_not_a_string_is_no_e_id_code() -> None:
    assert not is_e_id_code(None)  # type: ignore[arg-type]
    assert not is_e_id_code(("EID1:" + TOKEN).encode())  # type: ignore[arg-type]

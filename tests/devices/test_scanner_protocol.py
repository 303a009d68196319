"""Scanner protocol: framing a serial byte stream, decoding, classifying, and what may be logged."""

import logging
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.codes import E_ID_PATTERN, appointment_url, progress_url
from devices.scanner.protocol import (
    CodeFramer,
    Discarded,
    DiscardReason,
    ScanKind,
    ScannedCode,
    Terminator,
    classify,
    decode_code,
    describe,
)

ENDS = {Terminator.CR: b"\r", Terminator.LF: b"\n", Terminator.CRLF: b"\r\n"}
ID_NUMBER = "11010519491231002X"

# Streams rich in terminators and in the bytes that make decoding interesting.
pieces = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([b"\r", b"\n", b"\r\n", b"\xff", "社保".encode("gb18030"), "社保".encode()]),
)
streams = st.lists(pieces, max_size=30).map(b"".join)
# A code as a scanner would carry it: printable, no terminators, not only blanks.
code_texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufeff"),
    min_size=1,
    max_size=60,
).filter(lambda text: text.strip() != "")


def feed_in_pieces(framer: CodeFramer, data: bytes, cuts: list[int]) -> list[str | Discarded]:
    out: list[str | Discarded] = []
    start = 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        out += framer.feed(data[start:cut])
        start = cut
    return out


@given(
    terminator=st.sampled_from(Terminator),
    max_length=st.sampled_from([4, 16, 4096]),
    data=streams,
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=40),
)
def test_any_split_of_the_stream_gives_the_same_codes(
    terminator: Terminator, max_length: int, data: bytes, cuts: list[int]
) -> None:
    whole = CodeFramer(terminator, max_length).feed(data)
    assert feed_in_pieces(CodeFramer(terminator, max_length), data, cuts) == whole
    # Byte by byte, the hardest split of all.
    one_by_one = CodeFramer(terminator, max_length)
    assert [item for i in range(len(data)) for item in one_by_one.feed(data[i : i + 1])] == whole


@given(
    terminator=st.sampled_from(list(ENDS)),
    texts=st.lists(code_texts, max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_codes_come_out_as_they_went_in(
    terminator: Terminator, texts: list[str], cuts: list[int]
) -> None:
    data = b"".join(text.encode() + ENDS[terminator] for text in texts)
    assert feed_in_pieces(CodeFramer(terminator), data, cuts) == texts


@given(texts=st.lists(code_texts, max_size=10), ends=st.data())
def test_any_terminator_takes_cr_lf_and_crlf_alike(texts: list[str], ends: st.DataObject) -> None:
    data = b"".join(
        text.encode() + ends.draw(st.sampled_from([b"\r", b"\n", b"\r\n"])) for text in texts
    )
    assert CodeFramer(Terminator.ANY).feed(data) == texts


@given(
    terminator=st.sampled_from(list(ENDS)),
    lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=20),
)
def test_over_long_codes_are_dropped_and_the_framer_resyncs(
    terminator: Terminator, lengths: list[int], cuts: list[int]
) -> None:
    max_length = 20
    codes = [f"{i % 10}" * length for i, length in enumerate(lengths)]
    data = b"".join(code.encode() + ENDS[terminator] for code in codes)
    expected = [
        code if len(code) <= max_length else Discarded(DiscardReason.TOO_LONG) for code in codes
    ]
    assert feed_in_pieces(CodeFramer(terminator, max_length), data, cuts) == expected


def test_an_over_long_run_is_reported_at_once_and_memory_stays_bounded() -> None:
    framer = CodeFramer(Terminator.CR, max_length=100)
    assert framer.feed(b"x" * 100) == []
    assert framer.feed(b"x") == [Discarded(DiscardReason.TOO_LONG)]
    for _ in range(1000):  # a line that never ends: reported once, nothing kept
        assert framer.feed(b"y" * 1000) == []
        assert not framer.pending
    assert framer.feed(b"tail\rnext\r") == ["next"]


def test_crlf_mode_holds_a_cr_that_may_start_the_terminator() -> None:
    framer = CodeFramer(Terminator.CRLF, max_length=4)
    assert framer.feed(b"abcd\r") == []  # 4 bytes and half a terminator: not too long
    assert framer.feed(b"\n") == ["abcd"]
    assert framer.feed(b"ab\rc\r\n") == ["abc"]  # a lone CR inside is a control: stripped


def test_cr_lf_between_codes_gives_no_empty_code() -> None:
    assert CodeFramer(Terminator.ANY).feed(b"\r\n\r\none\r\n\n\rtwo\n") == ["one", "two"]
    assert CodeFramer(Terminator.CR).feed(b"\r\r   \rone\r") == ["one"]


@pytest.mark.parametrize(
    "text", ["张三 社会保障卡", "办件编号：SB20261207000123", "龍門客棧", "€ 100", "𠀀"]
)
def test_gb18030_is_the_fallback_when_the_bytes_are_not_utf8(text: str) -> None:
    payload = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        payload.decode("utf-8")
    assert decode_code(payload) == text
    assert CodeFramer().feed(payload + b"\r") == [text]


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1))
def test_chinese_text_survives_either_encoding(text: str) -> None:
    assert decode_code(text.encode()) == text
    payload = text.encode("gb18030")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        assert decode_code(payload) == text
    else:
        assume(False)  # valid UTF-8 by chance: UTF-8 wins, by design


def test_utf8_wins_when_the_bytes_are_valid_utf8() -> None:
    assert decode_code("社保".encode()) == "社保"
    assert decode_code(b"https://hub.example/v1") == "https://hub.example/v1"


@pytest.mark.parametrize("payload", [b"\xff\xfe\xfd", b"abc\x80", b"\x81", b"\xfe\x39"])
def test_bytes_in_neither_encoding_are_discarded(payload: bytes) -> None:
    assert decode_code(payload) == Discarded(DiscardReason.UNDECODABLE)
    assert CodeFramer().feed(payload + b"\rok\r") == [Discarded(DiscardReason.UNDECODABLE), "ok"]


def test_control_characters_and_byte_order_marks_are_stripped() -> None:
    assert decode_code(b"\x02ABC\x03") == "ABC"  # STX/ETX framing some scanners add
    assert decode_code(b"\xef\xbb\xbfABC") == "ABC"  # a UTF-8 BOM
    assert decode_code(b"A\tB\x1bC\x7f") == "ABC"
    assert decode_code(b"\x02\x03") is None
    assert decode_code(b"  ") is None
    assert decode_code(b" A B ") == " A B "  # spaces inside a code are the code's


def test_reset_reports_a_partial_code_only() -> None:
    framer = CodeFramer(Terminator.CRLF)
    assert framer.reset() is None
    framer.feed(b"\r")
    assert framer.reset() is None  # half a terminator is not a code
    framer.feed(b"SB2026")
    assert framer.pending
    assert framer.reset() == Discarded(DiscardReason.INCOMPLETE)
    assert framer.feed(b"next\r\n") == ["next"]


def test_framer_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        CodeFramer(max_length=0)
    with pytest.raises(ValueError):
        CodeFramer("tab")  # type: ignore[arg-type]


# --- classification -------------------------------------------------------------------------------


def test_a_receipts_code_is_a_receipt_with_its_reference() -> None:
    url = progress_url("https://hub.example.gov.cn", "SB20261207000123")
    code = classify(url)
    assert code == ScannedCode(ScanKind.RECEIPT, url, "SB20261207000123")


def test_an_appointment_slips_code_is_an_appointment() -> None:
    url = appointment_url("http://127.0.0.1:8702", "A7K29QX4X")
    assert classify(url) == ScannedCode(ScanKind.APPOINTMENT, url, "A7K29QX4X")


def test_a_code_printed_by_another_terminal_of_the_hub_is_recognised() -> None:
    url = progress_url("https://gateway.other-district.example:8443/kiosk", "L-T0042-20261207-0001")
    assert classify(url).reference == "L-T0042-20261207-0001"


def test_blanks_around_a_code_do_not_matter() -> None:
    url = progress_url("https://hub.example.gov.cn", "SB20261207000123")
    assert classify(f"  {url} ").kind is ScanKind.RECEIPT


@pytest.mark.parametrize(
    "text",
    [
        ID_NUMBER,
        "https://evil.example/v1/progress/SB20261207000123?c=AAAA",  # foreign: wrong check
        progress_url("https://hub.example", "SB20261207000123").replace("?c=", "?c=Z"),
        "https://hub.example/v1/documents/A7K29QX4",
        "https://hub.example/v2/progress/SB20261207000123?c=JGA2",
        "WIFI:S:kiosk;T:WPA;P:secret;;",
        "6901234567892",
        "张三 11010519491231002X",
        "EID1:short",  # an e-ID prefix on what is not one
        "EID2:hS2x7Qm0vXk4JrN9bWc1Tz8pLd6Ye3Ua5Fg0Ho2Ki7M",
    ],
)
def test_anything_else_is_unknown_and_its_repr_and_description_leak_nothing(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = classify(text)
    assert code.kind is ScanKind.UNKNOWN
    assert code.reference is None
    assert code.text == text
    shown = [repr(code), str(code), f"{code}", f"{code!r}", repr([code]), describe(code)]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test.scanner").info("scanned %s %r %s", code, code, describe(code))
    shown += caplog.messages
    for line in shown:
        assert text not in line
        assert all(part not in line for part in ("1101", "https", "张", "secret", "SB2026"))
        # Nothing longer than the length's digits: no run of the code's characters.
        assert not re.search(r"\d{3,}", line)
    assert describe(code) == f"unknown code, {len(text)} characters"
    assert repr(code) == f"ScannedCode(kind=unknown, length={len(text)})"


def test_a_receipts_repr_shows_no_reference_either() -> None:
    code = classify(progress_url("https://hub.example.gov.cn", "SB20261207000123"))
    assert "SB2026" not in repr(code) and "SB2026" not in describe(code)
    assert describe(code) == f"receipt code, {len(code.text)} characters"


E_ID = "EID1:hS2x7Qm0vXk4JrN9bWc1Tz8pLd6Ye3Ua5Fg0Ho2Ki7M"


def test_an_e_id_code_is_e_id_and_carries_the_code_for_the_hub() -> None:
    assert classify(E_ID) == ScannedCode(ScanKind.E_ID, E_ID, E_ID)
    assert ScanKind.E_ID.value == "e_id"


def test_blanks_around_an_e_id_code_are_left_out_of_what_goes_to_the_hub() -> None:
    code = classify(f" {E_ID}  ")
    assert (code.kind, code.reference, code.text) == (ScanKind.E_ID, E_ID, f" {E_ID}  ")


@given(st.from_regex(E_ID_PATTERN, fullmatch=True))
def test_every_code_of_the_e_id_form_is_e_id(code: str) -> None:
    assert classify(code).kind is ScanKind.E_ID


@pytest.mark.parametrize(
    "text",
    [
        progress_url("https://hub.example.gov.cn", "SB20261207000123"),
        appointment_url("http://127.0.0.1:8702", "A7K29QX4X"),
        ID_NUMBER,
        E_ID.lower(),
        E_ID[:-22],  # too short a token
    ],
)
def test_nothing_else_is_taken_for_an_e_id_code(text: str) -> None:
    assert classify(text).kind is not ScanKind.E_ID


def test_an_e_id_codes_repr_and_description_leak_nothing(caplog: pytest.LogCaptureFixture) -> None:
    code = classify(E_ID)
    shown = [repr(code), str(code), f"{code}", repr([code]), describe(code)]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test.scanner").info("scanned %s %r %s", code, code, describe(code))
    shown += caplog.messages
    token = E_ID.removeprefix("EID1:")
    for line in shown:
        assert "EID1" not in line
        # No run of the token, however short a piece of it: eight characters in a row are enough.
        assert not any(token[i : i + 8] in line for i in range(len(token) - 7))
    assert describe(code) == f"e_id code, {len(E_ID)} characters"
    assert repr(code) == f"ScannedCode(kind=e_id, length={len(E_ID)})"

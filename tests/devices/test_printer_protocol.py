"""Printer protocol: DLE EOT byte validation and decoding, receipt layout on 58 and 80 mm paper."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.base import Align, DeviceState, Feed, FieldLine, QrCode, Receipt, Rule, TextLine
from devices.printer.protocol import (
    PAPER_58MM,
    PAPER_80MM,
    Paper,
    PrinterReason,
    PrintFeed,
    PrintLine,
    PrintQr,
    ReceiptLayoutError,
    StatusReplyError,
    StatusRequest,
    decode_status,
    device_state,
    encode_text,
    is_valid_status_byte,
    layout_field,
    layout_receipt,
    paper_for,
    qr_module_dots,
    sanitize_text,
    status_byte,
    status_request,
    text_columns,
    wrap_text,
)
from flows.wording import segment

# --- DLE EOT --------------------------------------------------------------------------------------


def test_requests_are_dle_eot_n() -> None:
    assert [status_request(kind) for kind in StatusRequest] == [
        b"\x10\x04\x01",
        b"\x10\x04\x02",
        b"\x10\x04\x03",
        b"\x10\x04\x04",
    ]


def test_exactly_the_sixteen_bytes_of_pattern_0xx1xx10_are_valid() -> None:
    # Bits 2, 3, 5 and 6 are free; everything else is fixed, so 2**4 bytes pass.
    expected = {
        0x12 | b2 | b3 | b5 | b6
        for b2 in (0, 4)
        for b3 in (0, 8)
        for b5 in (0, 32)
        for b6 in (0, 64)
    }
    assert {b for b in range(256) if is_valid_status_byte(b)} == expected
    assert {0x12, 0x1E, 0x72, 0x7E, 0x1A, 0x16, 0x32} <= expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (0x00, "no fixed bits"),
        (0xFF, "bits 0 and 7 set"),
        (0x13, "bit 0 set"),
        (0x92, "bit 7 set"),
        (0x10, "bit 1 missing"),
        (0x02, "bit 4 missing"),
        (0x04, "echo of our own EOT"),
        (0x01, "echo of n"),
    ],
)
def test_garbage_bytes_are_rejected(value: int, why: str) -> None:
    assert not is_valid_status_byte(value), why
    with pytest.raises(StatusReplyError):
        status_byte(bytes((value,)))


def test_status_byte_takes_the_last_byte_and_rejects_empty_replies() -> None:
    assert status_byte(b"\x12") == 0x12
    assert status_byte(b"\xff\x1e") == 0x1E  # stale noise in front of the real reply
    with pytest.raises(StatusReplyError):
        status_byte(b"")
    with pytest.raises(StatusReplyError):
        status_byte(b"\x10\x04\x01")  # our request echoed back by a loop-back cable


def test_decode_rejects_an_invalid_byte_in_any_position() -> None:
    for position in range(4):
        replies = [0x12, 0x12, 0x12, 0x12]
        replies[position] = 0x00
        with pytest.raises(StatusReplyError):
            decode_status(*replies)


def test_decoding_reads_each_documented_bit() -> None:
    status = decode_status(0x1A, 0x7E, 0x7A, 0x7E)
    assert status.offline
    assert status.cover_open
    assert status.feed_button
    assert status.paper_end_stop
    assert status.error
    assert status.cutter_error
    assert status.unrecoverable_error
    assert status.auto_recoverable_error
    assert status.paper_near_end
    assert status.paper_end
    quiet = decode_status(0x12, 0x12, 0x12, 0x12)
    assert not any(vars(quiet).values())


@pytest.mark.parametrize(
    ("replies", "state"),
    [
        ((0x12, 0x12, 0x12, 0x12), DeviceState.ok()),
        ((0x12, 0x12, 0x12, 0x1E), DeviceState.degraded("paper_near_end")),
        ((0x12, 0x12, 0x12, 0x16), DeviceState.degraded("paper_near_end")),  # one sensor bit
        ((0x1A, 0x32, 0x12, 0x72), DeviceState.fault("paper_out")),
        ((0x1A, 0x32, 0x12, 0x7E), DeviceState.fault("paper_out")),  # near end and end together
        ((0x12, 0x12, 0x12, 0x72), DeviceState.fault("paper_out")),  # roll sensor alone
        ((0x1A, 0x16, 0x12, 0x12), DeviceState.fault("cover_open")),
        ((0x1A, 0x36, 0x12, 0x72), DeviceState.fault("cover_open")),  # cover wins over paper
        ((0x1A, 0x52, 0x1A, 0x12), DeviceState.fault("cutter_error")),
        ((0x1A, 0x52, 0x32, 0x12), DeviceState.fault("unrecoverable_error")),
        ((0x1A, 0x52, 0x52, 0x12), DeviceState.fault("auto_recoverable_error")),
        ((0x1A, 0x12, 0x12, 0x12), DeviceState.fault("offline")),  # off-line, no known cause
        ((0x1A, 0x1A, 0x12, 0x12), DeviceState.fault("offline")),  # FEED button held
    ],
)
def test_status_maps_to_device_state(
    replies: tuple[int, int, int, int], state: DeviceState
) -> None:
    assert device_state(decode_status(*replies)) == state


def test_reasons_are_the_heartbeat_strings() -> None:
    assert DeviceState.fault(PrinterReason.PAPER_OUT).reason == "paper_out"
    assert PrinterReason.NO_RESPONSE.value == "no_response"


# --- layout ---------------------------------------------------------------------------------------


def test_paper_widths() -> None:
    assert paper_for(58) == Paper(58, 32, 384)
    assert paper_for(80) == Paper(80, 48, 576)
    with pytest.raises(ValueError, match="57"):
        paper_for(57)


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("张*", 3),
        ("1101**********002X", 18),
        ("社会保险参保证明", 16),
        ("No.123 参保", 11),
        ("·×—", 6),  # ambiguous-width: full-width cells in Chinese mode
        ("，。", 4),
    ],
)
def test_columns_count_wide_characters_twice(text: str, columns: int) -> None:
    assert text_columns(text) == columns


def test_field_line_pushes_the_value_to_the_right_edge() -> None:
    for paper in (PAPER_58MM, PAPER_80MM):
        (line,) = layout_field("姓名", "张*", paper.columns)
        assert line.startswith("姓名 ")
        assert line.endswith(" 张*")
        assert text_columns(line) == paper.columns


def test_long_field_value_wraps_below_its_label_flush_right() -> None:
    lines = layout_field("参保地", "北京市东城区社会保险事业管理中心", PAPER_58MM.columns)
    assert lines == ["参保地", "北京市东城区社会保险事业管理中心"]
    lines = layout_field("办理事项", "城乡居民基本养老保险参保登记及缴费档次变更", 32)
    assert lines[0] == "办理事项"
    assert all(text_columns(line) <= 32 for line in lines)
    assert text_columns(lines[-1]) == 32  # right-aligned: padded on the left to the edge
    assert (
        "".join(line.strip() for line in lines[1:]) == "城乡居民基本养老保险参保登记及缴费档次变更"
    )


def test_field_value_sits_on_the_last_line_of_a_wrapped_label() -> None:
    lines = layout_field("承诺件材料容缺受理说明及补交期限（工作日）", "5", 32)
    assert len(lines) == 2
    assert lines[-1].endswith(" 5")
    assert text_columns(lines[-1]) == 32


def test_wrapping_keeps_latin_words_and_keeps_punctuation_off_line_starts() -> None:
    assert wrap_text("Please keep this receipt until the case is done", 20) == [
        "Please keep this",
        "receipt until the",
        "case is done",
    ]
    lines = wrap_text("本证明可通过扫描下方二维码核验真伪。如有疑问请咨询", 32)
    assert lines == ["本证明可通过扫描下方二维码核验真", "伪。如有疑问请咨询"]
    assert all(
        not line.startswith(("。", "，"))
        for line in wrap_text("一二三四五六七八九十一二三四五六，七", 32)
    )


def test_wrapping_prefers_a_space_in_chinese_text() -> None:
    assert wrap_text("XX镇便民服务中心 24小时自助服务区", 32, segment) == [
        "XX镇便民服务中心",
        "24小时自助服务区",
    ]


@pytest.mark.parametrize(
    ("text", "columns", "old", "new"),
    [
        # Columns: every Chinese character and mark takes 2, ASCII 1.
        ("您可以办理养老", 12, ["您可以办理养", "老"], ["您可以办理", "养老"]),
        ("参保险种：失业保险", 14, ["参保险种：失业", "保险"], ["参保险种：", "失业保险"]),
        (
            "本证明可通过扫描下方二维码核验真伪。如有疑问请咨询",
            32,
            ["本证明可通过扫描下方二维码核验真", "伪。如有疑问请咨询"],
            ["本证明可通过扫描下方二维码", "核验真伪。如有疑问请咨询"],
        ),
    ],
)
def test_words_of_the_issue_stay_whole_on_paper_where_they_used_to_split(
    text: str, columns: int, old: list[str], new: list[str]
) -> None:
    assert wrap_text(text, columns) == old  # no word breaker: any two characters may part
    assert wrap_text(text, columns, segment) == new


def test_opening_punctuation_never_ends_a_printed_line() -> None:
    assert wrap_text("请备齐材料（原件）", 12, segment) == ["请备齐材料", "（原件）"]
    # A word and the closing mark after it go down together.
    assert wrap_text("参保险种（失业保险）", 18, segment) == ["参保险种", "（失业保险）"]


def test_a_printed_word_wider_than_the_line_is_cut() -> None:
    assert wrap_text("失业保险", 6, segment) == ["失业保", "险"]
    assert wrap_text("（失业保险）", 6, segment) == ["（失业", "保险）"]
    assert wrap_text("SB2024110500123", 6, segment) == ["SB2024", "110500", "123"]


def test_a_word_breaker_whose_pieces_do_not_rejoin_the_text_is_a_layout_error() -> None:
    with pytest.raises(ReceiptLayoutError, match="rejoin"):
        wrap_text("养老保险", 4, lambda text: ["养老"])


def test_the_receipt_layout_breaks_between_the_words_it_is_given() -> None:
    receipt = Receipt((TextLine("参保险种：城镇职工基本养老保险、失业保险"),))
    lines = [
        item.text
        for item in layout_receipt(receipt, PAPER_58MM, segment)
        if isinstance(item, PrintLine)
    ]
    assert lines == ["参保险种：城镇职工基本养老保险、", "失业保险"]
    field = Receipt((FieldLine("参保险种", "城镇职工基本养老保险、失业保险、工伤保险"),))
    values = [
        item.text.strip()
        for item in layout_receipt(field, PAPER_58MM, segment)
        if isinstance(item, PrintLine)
    ]
    assert values == ["参保险种", "城镇职工基本养老保险、失业保险、", "工伤保险"]


_WRAP_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["养老", "失业保险", "核验真伪", "城镇职工基本养老保险", "SB2024", "No.5"]),
        st.sampled_from(list("，。（）《》、“”：")),
        st.text(" \u3000", min_size=1, max_size=2),
        st.text(max_size=4),
    ),
    max_size=12,
).map("".join)


@given(_WRAP_TEXT, st.integers(2, 40), st.booleans())
def test_wrapping_never_loses_nor_reorders_a_character(
    text: str, columns: int, with_words: bool
) -> None:
    clean = sanitize_text(text)
    lines = wrap_text(text, columns, segment if with_words else None)
    # Each line is the next stretch of the (sanitized) text; only spaces and the text's own
    # line breaks lie between two lines.
    position = 0
    for line in lines:
        found = clean.find(line, position)
        assert found >= 0 and not clean[position:found].strip(), (clean, lines)
        position = found + len(line)
    assert not clean[position:].strip()
    assert all(text_columns(line) <= columns for line in lines)


def test_control_characters_never_reach_the_printer() -> None:
    # A hub string with an embedded ESC @ would reset the printer mid-receipt.
    assert encode_text("A\x1b@B\x1d\x56\x00") == b"A@BV"
    assert encode_text("中文") == bytes.fromhex("d6d0cec4")
    assert encode_text("¥5") == "¥5".encode("gb18030")  # not python-escpos' code-page path


def _sample() -> Receipt:
    return Receipt(
        (
            TextLine("社会保险参保证明", Align.CENTER, emphasis=True, large=True),
            Rule(),
            FieldLine("姓名", "张*"),
            FieldLine("公民身份号码", "1101**********002X"),
            FieldLine("参保地", "北京市东城区社会保险事业管理中心"),
            TextLine("本证明可通过扫描下方二维码核验真伪。如有疑问，请咨询服务中心窗口工作人员。"),
            QrCode("https://si.example.gov.cn/verify?c=A7K29QX4", caption="扫码核验"),
            Feed(2),
        )
    )


@pytest.mark.parametrize("paper", [PAPER_58MM, PAPER_80MM])
def test_every_laid_out_line_fits_its_paper(paper: Paper) -> None:
    lines = [item for item in layout_receipt(_sample(), paper) if isinstance(item, PrintLine)]
    assert lines
    for line in lines:
        assert text_columns(line.text) * (2 if line.large else 1) <= paper.columns, line


def test_58_and_80_mm_layouts_differ_where_they_should() -> None:
    narrow = layout_receipt(_sample(), PAPER_58MM)
    wide = layout_receipt(_sample(), PAPER_80MM)
    assert PrintLine("-" * 32) in narrow
    assert PrintLine("-" * 48) in wide
    assert PrintLine("社会保险参保证明", Align.CENTER, bold=True, large=True) in narrow
    # The long field fits one line on 80 mm and takes two on 58 mm.
    assert sum("管理中心" in item.text for item in wide if isinstance(item, PrintLine)) == 1
    assert PrintLine("参保地") in narrow


def test_large_text_wraps_at_half_the_columns() -> None:
    items = layout_receipt(Receipt((TextLine("城乡居民养老保险缴费凭证", large=True),)), PAPER_58MM)
    assert [item.text for item in items if isinstance(item, PrintLine)] == [
        "城乡居民养老保险",
        "缴费凭证",
    ]


def test_qr_gets_a_quiet_zone_and_a_centred_caption() -> None:
    items = layout_receipt(Receipt((QrCode("https://a.gov.cn/x", caption="扫码核验"),)), PAPER_80MM)
    assert items == (
        PrintFeed(1),
        PrintQr("https://a.gov.cn/x", 8),
        PrintFeed(1),
        PrintLine("扫码核验", Align.CENTER),
    )


def test_qr_module_size_shrinks_with_data_and_rejects_what_cannot_fit() -> None:
    assert qr_module_dots("https://si.example.gov.cn/verify?c=A7K29QX4", PAPER_58MM) == 8
    long_url = "https://si.example.gov.cn/verify?" + "c" * 300
    # 333 bytes need version 14 at level M: 73 modules + 8 quiet = 81 -> 576 // 81, 384 // 81.
    assert qr_module_dots(long_url, PAPER_80MM) == 7
    assert qr_module_dots(long_url, PAPER_58MM) == 4
    with pytest.raises(ReceiptLayoutError):
        qr_module_dots("x" * 500, PAPER_58MM)


def test_feeds_longer_than_one_command_are_split() -> None:
    assert layout_receipt(Receipt((Feed(300),)), PAPER_80MM) == (PrintFeed(255), PrintFeed(45))
    assert layout_receipt(Receipt((Feed(0),)), PAPER_80MM) == ()


def test_qr_data_that_is_not_unicode_text_is_a_layout_error() -> None:
    # A lone surrogate has no UTF-8 form, so no printer can be sent it; it used to escape as a
    # UnicodeEncodeError instead of the layout's own error.
    with pytest.raises(ReceiptLayoutError):
        qr_module_dots("\ud800", PAPER_80MM)
    with pytest.raises(ReceiptLayoutError):
        layout_receipt(Receipt((QrCode("https://a.gov.cn/\udfff"),)), PAPER_58MM)


def test_text_is_composed_after_control_characters_are_dropped() -> None:
    # Composing first left "N" and its combining grave apart (a stray control character stood
    # between them), so the mark printed in a full-width cell of its own instead of as "Ǹ"; and
    # sanitizing the result again changed it.
    assert sanitize_text("N\x1f\u0300") == "\u01f8"
    assert sanitize_text("\u034a\x1f\u0316") == "\u0316\u034a"  # canonical order of marks
    assert sanitize_text(sanitize_text("e\u200b\u0301x")) == sanitize_text("e\u200b\u0301x")


def test_a_hanging_line_wraps_under_its_words_not_under_its_box() -> None:
    """A checklist entry that wraps continues under its name, not under "□ 7."."""
    text = "□ 7. 申请人社会保障卡或银行账户复印件一份以及其他需要说明的材料"
    lines = [
        item.text
        for item in layout_receipt(Receipt((TextLine(text, hang=5),)), paper_for(58))
        if isinstance(item, PrintLine)
    ]
    assert len(lines) >= 2 and lines[0].startswith("□ 7. ")
    indent = " " * text_columns("□ 7. ")
    assert all(line.startswith(indent) and line[len(indent)] != " " for line in lines[1:])
    assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", "")
    assert all(text_columns(line) <= paper_for(58).columns for line in lines)
    # Without a hang the same text starts every line at the margin.
    plain = [item.text for item in layout_receipt(Receipt((TextLine(text),)), paper_for(58))
             if isinstance(item, PrintLine)]
    assert not plain[1].startswith(" ")

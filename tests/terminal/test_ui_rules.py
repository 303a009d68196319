"""The UI's pure rules, without a window: sizes per screen, menu grids, line breaks, QR modules."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ui_support import SIZES

from terminal.ui.linebreak import break_lines, number_items, tokens
from terminal.ui.qr import QUIET_ZONE_MODULES, qr_matrix
from terminal.ui.theme import MIN_TOUCH_PX, Metrics, menu_grid


@pytest.mark.parametrize("size", SIZES)
def test_targets_are_finger_sized_at_every_supported_size(size: tuple[int, int]) -> None:
    m = Metrics(*size)
    assert m.button_height >= MIN_TOUCH_PX
    assert m.tile_height >= MIN_TOUCH_PX
    assert m.bar_height > MIN_TOUCH_PX  # the language switch fits inside the top bar
    assert m.font_body >= 16  # readable on a 7" 800x480 panel at arm's length


def test_sizes_follow_the_shorter_side_so_rotation_keeps_type_the_same() -> None:
    assert Metrics(1920, 1080).font_body == Metrics(1080, 1920).font_body
    assert Metrics(1920, 1080).font_body > Metrics(800, 480).font_body
    assert Metrics(800, 480, scale=1.4).font_body > Metrics(800, 480).font_body


def test_six_errands_make_a_three_by_two_grid_on_a_landscape_screen() -> None:
    m = Metrics(1920, 1080)
    grid = menu_grid(6, 1850, 600, m)
    assert grid.columns == 3
    assert m.tile_height <= grid.tile_height <= m.tile_max_height


def test_a_portrait_screen_lists_errands_as_full_width_tiles() -> None:
    m = Metrics(1080, 1920)
    assert menu_grid(6, 1000, 1400, m).columns == 1


def test_five_rating_levels_sit_in_one_row_when_they_fit() -> None:
    assert menu_grid(5, 1850, 600, Metrics(1920, 1080)).columns == 5
    assert menu_grid(5, 770, 260, Metrics(800, 480)).columns == 5


def test_a_longer_menu_fits_at_a_compact_height_before_it_scrolls() -> None:
    m = Metrics(1920, 1080)
    grid = menu_grid(12, 1850, 580, m)
    assert grid.columns == 4
    assert m.tile_compact_height <= grid.tile_height < m.tile_height


def test_a_menu_too_long_for_the_screen_scrolls_in_comfortably_wide_tiles() -> None:
    m = Metrics(800, 480)
    grid = menu_grid(12, 770, 190, m)
    assert grid.tile_height == m.tile_height
    # Three columns, not the five that would just fit: narrow tiles wrap titles into towers.
    assert grid.columns == 3
    assert menu_grid(12, 1000, 300, Metrics(1080, 1920)).columns == 2


def width_in_chars(text: str) -> float:
    """Every character one unit wide: easy to reason about in tests."""
    return float(len(text))


def every_character_a_word(text: str) -> list[str]:
    """The breaker as it was before it knew words: any two Chinese characters may part."""
    return list(text)


def test_chinese_breaks_between_words() -> None:
    assert break_lines("社保医保养老高频事项", 4, width_in_chars) == "社保医保\n养老高频\n事项"


@pytest.mark.parametrize(
    ("text", "width", "word", "old", "new"),
    [
        ("您可以办理养老金", 6, "养老", "您可以办理养\n老金", "您可以办理\n养老金"),
        ("参保险种：失业保险", 7, "失业保险", "参保险种：失业\n保险", "参保险种：\n失业保险"),
        ("可凭验证码核验真伪。", 6, "核验真伪", "可凭验证码核\n验真伪。", "可凭验证码\n核验真伪。"),
    ],
)
def test_words_of_the_issue_stay_whole_where_the_old_breaker_split_them(
    text: str, width: int, word: str, old: str, new: str
) -> None:
    before = break_lines(text, width, width_in_chars, words=every_character_a_word)
    assert before == old and word not in before.split("\n")[-1]  # split, as reported
    after = break_lines(text, width, width_in_chars)
    assert after == new
    assert any(word in line for line in after.split("\n"))


def test_a_word_goes_down_with_the_closing_mark_that_may_not_open_a_line() -> None:
    # "失业保险" fits the first line, but "）" may not start the next: the word moves down with
    # it, whole, rather than being split as a breaker that knows no words splits it.
    assert break_lines("参保险种（失业保险）", 9, width_in_chars) == "参保险种\n（失业保险）"
    assert (
        break_lines("参保险种（失业保险）", 9, width_in_chars, words=every_character_a_word)
        == "参保险种（失业\n保险）"
    )


def test_a_closing_bracket_never_starts_a_line() -> None:
    # "申请办理（承诺件" fills 8 columns; the "）" takes the last word down with it, and the
    # lonely "件）" that would leave takes the whole bracket down.
    assert break_lines("申请办理（承诺件）", 8, width_in_chars) == "申请办理\n（承诺件）"


def test_an_opening_bracket_never_ends_a_line() -> None:
    assert break_lines("请备齐材料（原件）", 6, width_in_chars) == "请备齐材料\n（原件）"


def test_a_full_stop_stays_with_its_sentence() -> None:
    text = "您的材料清单未能打印。工作人员已收到通知。"
    lines = break_lines(text, 10, width_in_chars).split("\n")
    assert not any(line.startswith(("。", "，")) for line in lines)
    assert all(len(line) <= 10 for line in lines)


def test_latin_words_and_numbers_stay_whole() -> None:
    text = "Case number SB2024110500123 ready"
    assert break_lines(text, 16, width_in_chars) == "Case number\nSB2024110500123\nready"
    assert tokens("证件号1101**********002X") == ["证件", "号", "1101**********002X"]
    assert tokens("城镇职工 No.5") == ["城镇职工", " ", "No.5"]


def test_a_word_longer_than_the_line_is_cut_rather_than_overflowing() -> None:
    lines = break_lines("ABCDEFGHIJKLMNOP", 6, width_in_chars).split("\n")
    assert lines == ["ABCDEF", "GHIJKL", "MNOP"]
    # A Chinese word wider than the line is cut too, where it fits and leaves no character
    # alone on the last line.
    assert break_lines("失业保险", 3, width_in_chars) == "失业\n保险"
    assert break_lines("失业保险费", 3, width_in_chars) == "失业保\n险费"


def test_a_word_too_wide_for_any_line_is_cut_inside_rather_than_against_the_punctuation() -> None:
    # "（失业保险）" cannot fit 3 columns whole; cutting inside the word keeps "（" off a line
    # end and "）" off a line start, where cutting anywhere would not.
    assert break_lines("（失业保险）", 3, width_in_chars) == "（失业\n保险）"


def test_existing_line_breaks_are_kept() -> None:
    assert break_lines("第一行\n第二行", 10, width_in_chars) == "第一行\n第二行"


def test_balanced_lines_leave_no_lonely_last_word() -> None:
    text = "社会保险参保证明打印"
    assert break_lines(text, 9, width_in_chars) == "社会保险参保证明\n打印"
    assert break_lines(text, 9, width_in_chars, balanced=True) == "社会保险参保\n证明打印"
    # Balancing never adds a line.
    assert break_lines("满意", 9, width_in_chars, balanced=True) == "满意"


def test_the_scan_screen_keeps_pai_wan_whole() -> None:
    # "还有下一页请点“再拍一页”，拍完点“这份拍好了”。" broke as 拍 / 完 on the scan screen.
    text = "已拍2页。还有下一页请点“再拍一页”，拍完点“这份拍好了”。"
    for width in range(8, len(text)):
        lines = break_lines(text, width, width_in_chars).split("\n")
        assert not any(a.endswith("拍") and b.startswith("完")
                       for a, b in itertools.pairwise(lines)), (width, lines)


def test_a_paragraph_never_ends_in_one_character_alone() -> None:
    # The scan screen's title showed "请将材料正面朝上放在高拍仪" over a lonely "下".
    text = "请将材料正面朝上放在高拍仪下"
    assert break_lines(text, 13, width_in_chars) == "请将材料正面朝上放在\n高拍仪下"
    # A closing mark does not make a lonely character company.
    assert break_lines(text + "。", 13, width_in_chars).split("\n")[-1] == "高拍仪下。"
    # Where no narrower line helps in as many lines, the first breaking stands.
    assert break_lines("社会保险参保证明打印", 9, width_in_chars) == "社会保险参保证明\n打印"
    assert break_lines("参保证明 A", 5, width_in_chars) == "参保证明\nA"


def test_each_string_is_measured_once_however_many_widths_balancing_tries() -> None:
    # Font measurement is the expensive part on the device: the bisection must not repeat it.
    measured: list[str] = []

    def counting(text: str) -> float:
        measured.append(text)
        return float(len(text))

    text = "本证明由政务服务自助终端打印，可扫码或凭验证码核验真伪。如有疑问请咨询窗口工作人员。"
    break_lines(text, 15, counting, balanced=True)
    assert len(measured) == len(set(measured))
    assert len(measured) < 3 * len(text)


def test_a_word_breaker_whose_pieces_do_not_rejoin_the_text_is_refused() -> None:
    with pytest.raises(ValueError, match="rejoin"):
        break_lines("养老保险", 2, width_in_chars, words=lambda text: ["养老"])


_WRAP_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["养老", "失业保险", "核验真伪", "城镇职工基本养老保险", "SB2024", "No.5"]),
        st.sampled_from(list("，。（）《》、“”：")),
        st.text(" \u3000", min_size=1, max_size=2),
        st.text(max_size=4),
    ),
    max_size=12,
).map("".join)


@given(_WRAP_TEXT, st.integers(1, 16), st.booleans())
def test_breaking_never_loses_nor_reorders_a_character(
    text: str, width: int, balanced: bool
) -> None:
    lines = break_lines(text, width, width_in_chars, balanced=balanced).split("\n")
    # Each line is the next stretch of the text; only spaces (and the text's own line breaks)
    # lie between two lines: joined, they give back the text less the spaces at the breaks.
    position = 0
    for line in lines:
        found = text.find(line, position)
        assert found >= 0 and not text[position:found].strip(), (text, lines)
        position = found + len(line)
    assert not text[position:].strip()
    # No line is wider than asked, unless it is one character wider on its own.
    assert all(len(line) <= width or len(line) == 1 for line in lines)


def test_items_the_content_numbered_keep_their_numbers_apart_from_the_text() -> None:
    assert number_items(("1. 居民身份证（原件）", "2. 户口簿")) == [
        ("1.", "居民身份证（原件）"),
        ("2.", "户口簿"),
    ]
    assert number_items(("（1）照片", "（2）表格")) == [("（1）", "照片"), ("（2）", "表格")]


def test_unnumbered_lists_get_numbers_and_a_single_paragraph_none() -> None:
    assert number_items(("年满60周岁", "未领取其他养老金")) == [
        ("1.", "年满60周岁"),
        ("2.", "未领取其他养老金"),
    ]
    assert number_items(("不收费",)) == [(None, "不收费")]
    # A number that is part of the sentence is not a list number.
    assert number_items(("15年以上", "60周岁")) == [("1.", "15年以上"), ("2.", "60周岁")]


def test_qr_matrix_is_square_with_a_quiet_zone() -> None:
    matrix = qr_matrix("https://zwfw.example.gov.cn/guide/pension-claim")
    size = len(matrix)
    assert all(len(row) == size for row in matrix)
    border = QUIET_ZONE_MODULES
    assert not any(matrix[r][c] for r in range(border) for c in range(size))  # top quiet zone
    # The top-left finder pattern: a dark 7x7 ring starting right after the quiet zone.
    assert all(matrix[border][border + c] for c in range(7))
    assert not matrix[border + 1][border + 1]

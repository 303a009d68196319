"""Translator: TOML catalogues per language, dotted keys, parameters, fallbacks, UI strings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from flows.steps import t
from terminal.i18n import TranslationError, Translator

SHIPPED_LOCALES = Path(__file__).resolve().parents[2] / "terminal" / "locales"


def write(root: Path, lang: str, name: str, text: str) -> None:
    folder = root / lang
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    write(
        tmp_path,
        "zh_CN",
        "flows.toml",
        """
        [identity]
        name = "姓名：{name}"
        greeting = "您好，{who}"
        [identity.card]
        title = "请插卡"
        [level]
        five = "非常满意"
        only_zh = "仅中文"
        """,
    )
    write(tmp_path, "zh_CN", "ui.toml", '[ui]\ncountdown = "{seconds} 秒后自动退出"\n')
    write(
        tmp_path,
        "en",
        "flows.toml",
        """
        [identity]
        name = "Name: {name}"
        greeting = "Hello, {who}"
        [identity.card]
        title = "Insert your card"
        [level]
        five = "Very satisfied"
        """,
    )
    write(tmp_path, "en", "ui.toml", '[ui]\ncountdown = "Ending in {seconds} s"\n')
    return tmp_path


def test_nested_tables_become_dotted_keys_across_files(locales: Path) -> None:
    tr = Translator.load(locales)
    assert tr.text(t("identity.card.title"), "zh_CN") == "请插卡"
    assert tr.text(t("identity.card.title"), "en") == "Insert your card"
    assert tr.text(t("ui.countdown", seconds="30"), "en") == "Ending in 30 s"
    assert "identity.card.title" in tr.keys("en")


def test_languages_put_the_default_first(locales: Path) -> None:
    assert Translator.load(locales).languages == ("zh_CN", "en")


def test_parameters_are_filled_and_nested_texts_translated_in_the_same_language(
    locales: Path,
) -> None:
    tr = Translator.load(locales)
    assert tr.text(t("identity.name", name="张*"), "zh_CN") == "姓名：张*"
    nested = t("identity.greeting", who=t("level.five"))
    assert tr.text(nested, "zh_CN") == "您好，非常满意"
    assert tr.text(nested, "en") == "Hello, Very satisfied"


def test_a_key_missing_in_english_falls_back_to_chinese(locales: Path) -> None:
    assert Translator.load(locales).text(t("level.only_zh"), "en") == "仅中文"


def test_an_unknown_language_falls_back_to_chinese(locales: Path) -> None:
    assert Translator.load(locales).text(t("level.five"), "fr") == "非常满意"


def test_a_missing_key_shows_the_key_and_logs_only_the_key(
    locales: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tr = Translator.load(locales)
    with caplog.at_level(logging.WARNING, logger="terminal.i18n"):
        shown = tr.text(t("nowhere.to_be_found", name="张三", id="11010519491231002X"), "en")
    assert shown == "nowhere.to_be_found"
    assert "nowhere.to_be_found" in caplog.text
    # Parameters may be personal data: they never reach the log.
    assert "张三" not in caplog.text and "11010519491231002X" not in caplog.text


def test_a_missing_parameter_stays_visible_instead_of_crashing(
    locales: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tr = Translator.load(locales)
    with caplog.at_level(logging.WARNING, logger="terminal.i18n"):
        assert tr.text(t("identity.name"), "en") == "Name: {name}"
    assert "identity.name" in caplog.text


def test_extra_tables_merge_and_win_over_files(locales: Path) -> None:
    tr = Translator.load(
        locales,
        extra={
            "zh_CN": {"errand.proof.title": "参保证明", "level.five": "很满意"},
            "en": {"errand.proof.title": "Enrolment proof"},
        },
    )
    assert tr.text(t("errand.proof.title"), "en") == "Enrolment proof"
    assert tr.text(t("errand.proof.title"), "zh_CN") == "参保证明"
    assert tr.text(t("level.five"), "zh_CN") == "很满意"


def test_a_key_defined_twice_in_one_language_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "zh_CN", "a.toml", '[x]\ny = "一"\n')
    write(tmp_path, "zh_CN", "b.toml", 'x.y = "二"\n')
    with pytest.raises(TranslationError, match=r"x\.y"):
        Translator.load(tmp_path)


def test_a_non_string_value_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "zh_CN", "a.toml", "[x]\ncount = 3\n")
    with pytest.raises(TranslationError, match=r"x\.count"):
        Translator.load(tmp_path)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "en", "broken.toml", "[x\n")
    with pytest.raises(TranslationError, match=r"broken\.toml"):
        Translator.load(tmp_path)


def test_problems_lists_missing_keys_and_placeholder_mismatches(tmp_path: Path) -> None:
    tr = Translator(
        {
            "zh_CN": {"a": "{n} 个", "b": "乙", "c": "丙"},
            "en": {"a": "{count} items", "c": "C", "d": "only English"},
        }
    )
    assert tr.problems() == [
        "en: missing b",
        "en: d is not in zh_CN",
        "en: a placeholders differ from zh_CN",
    ]


def test_the_shipped_ui_strings_are_complete_in_both_languages() -> None:
    tr = Translator.load(SHIPPED_LOCALES)
    ui_problems = [p for p in tr.problems() if " ui." in p]
    assert ui_problems == []
    for key in ("ui.brand", "ui.countdown", "ui.qr_hint", "ui.language.switch"):
        assert tr.has(key, "zh_CN") and tr.has(key, "en"), key


def test_the_language_switch_is_labelled_in_the_language_it_switches_to() -> None:
    tr = Translator.load(SHIPPED_LOCALES)
    assert tr.text(t("ui.language.switch"), "zh_CN") == "English"
    assert tr.text(t("ui.language.switch"), "en") == "中文"


def test_the_shipped_countdown_reads_naturally() -> None:
    tr = Translator.load(SHIPPED_LOCALES)
    assert tr.text(t("ui.countdown", seconds="30"), "zh_CN") == "30 秒后自动退出"
    assert tr.text(t("ui.countdown", seconds="30"), "en") == "Ending in 30 s"

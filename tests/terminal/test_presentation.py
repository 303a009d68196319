"""describe(): the automation API's picture of a screen, in display order and display language."""

from __future__ import annotations

import json

import pytest

from flows.engine import MODE_TOGGLE
from flows.help_call import HELP_CALL, HELP_CANCEL
from flows.steps import (
    Action,
    ActionStyle,
    Attract,
    Guide,
    GuideSection,
    HelpStatus,
    Menu,
    Message,
    Progress,
    Tone,
    View,
    t,
)
from terminal.i18n import Translator
from terminal.presentation import LANG_TOGGLE, MORE_TIME, SPEAK, describe, present


@pytest.fixture
def tr() -> Translator:
    return Translator(
        {
            "zh_CN": {
                "ui.brand": "24小时自助服务",
                "ui.countdown": "{seconds} 秒后自动退出",
                "ui.qr_hint": "扫码保存到手机",
                "ui.language.switch": "English",
                "ui.mode.elder": "长辈模式",
                "ui.speech.read": "朗读",
                "ui.speech.repeat": "再听一遍",
                "ui.mode.normal": "标准模式",
                "ui.more_time": "我需要更多时间",
                "ui.help.call": "呼叫帮助",
                "attract.title": "欢迎",
                "attract.insert": "请插入社会保障卡",
                "menu.title": "请选择事项",
                "menu.hello": "您好，{name}",
                "errand.proof": "打印参保证明",
                "errand.pension": "养老金查询",
                "nav.back": "返回",
                "guide.title": "办事指南",
                "guide.materials": "申请材料",
                "guide.id_card": "身份证原件",
                "guide.photo": "照片{count}张",
                "guide.fees": "收费标准",
                "guide.free": "不收费",
                "guide.scan": "扫码查看",
                "paper.title": "打印机缺纸",
                "paper.detail": "请稍后再试",
                "busy.title": "正在打印",
            },
            "en": {
                "ui.brand": "24-Hour Self-Service",
                "ui.countdown": "Ending in {seconds} s",
                "ui.qr_hint": "Scan to keep it",
                "ui.language.switch": "中文",
                "ui.mode.elder": "Large text",
                "ui.speech.read": "Read aloud",
                "ui.speech.repeat": "Say again",
                "ui.mode.normal": "Normal text",
                "ui.more_time": "I need more time",
                "ui.help.call": "Call staff",
                "attract.title": "Welcome",
                "menu.title": "Choose an errand",
                "menu.hello": "Hello, {name}",
                "errand.proof": "Print enrolment proof",
                "nav.back": "Back",
            },
        }
    )


def test_an_attract_screen_lists_brand_title_lines_and_the_language_switch(
    tr: Translator,
) -> None:
    view = View(Attract("attract", t("attract.title"), lines=(t("attract.insert"),)))
    assert describe(view, tr, "zh_CN") == {
        "screen": "attract",
        "kind": "attract",
        "title": "欢迎",
        "texts": ["24小时自助服务", "欢迎", "请插入社会保障卡"],
        "targets": [
            {"id": HELP_CALL, "label": "呼叫帮助", "enabled": True},
            {"id": SPEAK, "label": "朗读", "enabled": True},
            {"id": MODE_TOGGLE, "label": "长辈模式", "enabled": True},
            {"id": LANG_TOGGLE, "label": "English", "enabled": True},
        ],
        "language": "zh_CN",
        "countdown_s": None,
        "tone": None,
        "mode": "normal",
        "spoken": None,
    }


def test_a_menu_lists_options_then_actions_then_the_switch_in_english(tr: Translator) -> None:
    view = View(
        Menu(
            "errand_menu",
            t("menu.title"),
            options=(
                Action("errand.proof", t("errand.proof")),
                Action("errand.pension", t("errand.pension"), enabled=False),
            ),
            lines=(t("menu.hello", name="张*"),),
            actions=(Action("back", t("nav.back"), style=ActionStyle.SECONDARY),),
        ),
        countdown_s=12,
    )
    description = describe(view, tr, "en")
    assert description["title"] == "Choose an errand"
    # The countdown sits in the top bar, right after the service name.
    assert description["texts"] == [
        "24-Hour Self-Service",
        "Ending in 12 s",
        "Choose an errand",
        "Hello, 张*",
    ]
    assert description["targets"] == [
        {"id": "errand.proof", "label": "Print enrolment proof", "enabled": True},
        # Missing in English: the Chinese text rather than a bare key.
        {"id": "errand.pension", "label": "养老金查询", "enabled": False},
        {"id": "back", "label": "Back", "enabled": True},
        # With the countdown showing, one touch buys more time (WCAG 2.2.1).
        {"id": MORE_TIME, "label": "I need more time", "enabled": True},
        {"id": HELP_CALL, "label": "Call staff", "enabled": True},
        {"id": SPEAK, "label": "Read aloud", "enabled": True},
        {"id": MODE_TOGGLE, "label": "Large text", "enabled": True},
        {"id": LANG_TOGGLE, "label": "中文", "enabled": True},
    ]
    assert description["language"] == "en"
    assert description["countdown_s"] == 12


def test_a_guide_flattens_its_sections_and_captions_its_qr_code(tr: Translator) -> None:
    view = View(
        Guide(
            "guide",
            t("guide.title"),
            sections=(
                GuideSection(
                    t("guide.materials"), (t("guide.id_card"), t("guide.photo", count="2"))
                ),
                GuideSection(t("guide.fees"), (t("guide.free"),)),
            ),
            qr_data="https://example.gov.cn/g/1",
            qr_caption=t("guide.scan"),
        )
    )
    assert describe(view, tr, "zh_CN")["texts"] == [
        "24小时自助服务",
        "办事指南",
        "申请材料",
        "身份证原件",
        "照片2张",
        "收费标准",
        "不收费",
        "扫码查看",
    ]


def test_a_qr_code_without_its_own_caption_gets_the_default_hint(tr: Translator) -> None:
    view = View(Guide("guide", t("guide.title"), sections=(), qr_data="https://example.gov.cn"))
    assert describe(view, tr, "en")["texts"][-1] == "Scan to keep it"
    no_qr = View(Guide("guide", t("guide.title"), sections=()))
    assert "扫码保存到手机" not in describe(no_qr, tr, "zh_CN")["texts"]


def test_a_message_reports_its_tone(tr: Translator) -> None:
    view = View(
        Message("error.printer", t("paper.title"), lines=(t("paper.detail"),), tone=Tone.ERROR)
    )
    description = describe(view, tr, "zh_CN")
    assert description["kind"] == "message"
    assert description["tone"] == "error"
    assert description["texts"] == ["24小时自助服务", "打印机缺纸", "请稍后再试"]


def test_progress_with_nothing_to_touch_still_offers_the_language_switch(tr: Translator) -> None:
    description = describe(View(Progress("printing", t("busy.title"))), tr, "zh_CN")
    assert [target["id"] for target in description["targets"]] == [
        HELP_CALL, SPEAK, MODE_TOGGLE, LANG_TOGGLE]


def test_bounds_are_added_per_target_when_given(tr: Translator) -> None:
    view = View(
        Menu("m", t("menu.title"), options=(Action("errand.proof", t("errand.proof")),))
    )
    description = describe(
        view, tr, "zh_CN", bounds={"errand.proof": (10, 20, 300, 120), LANG_TOGGLE: None}
    )
    assert description["targets"][0]["bounds"] == [10, 20, 300, 120]
    assert description["targets"][1]["bounds"] is None  # scrolled out of sight


def test_the_description_is_plain_json_and_the_same_every_time(tr: Translator) -> None:
    view = View(Menu("m", t("menu.title"), options=(Action("a", t("errand.proof")),)), 5)
    first = describe(view, tr, "zh_CN")
    assert json.loads(json.dumps(first, ensure_ascii=False)) == first
    assert describe(view, tr, "zh_CN") == first


def test_the_model_keeps_styles_for_the_renderer(tr: Translator) -> None:
    view = View(
        Message(
            "m",
            t("paper.title"),
            actions=(
                Action("retry", t("nav.back"), style=ActionStyle.PRIMARY),
                Action("stop", t("nav.back"), style=ActionStyle.DANGER),
            ),
        )
    )
    model = present(view, tr, "zh_CN")
    assert [a.style for a in model.actions] == ["primary", "danger"]
    assert model.toggle.id == LANG_TOGGLE


def test_elder_mode_is_reported_and_the_switch_offers_the_way_back(tr: Translator) -> None:
    view = View(Progress("printing", t("busy.title")), elder=True)
    description = describe(view, tr, "zh_CN")
    assert description["mode"] == "elder"
    assert description["targets"][1] == {"id": SPEAK, "label": "再听一遍", "enabled": True}
    assert description["targets"][2] == {"id": MODE_TOGGLE, "label": "标准模式", "enabled": True}


def test_an_open_help_call_shows_its_strip_and_its_button(tr: Translator) -> None:
    status = HelpStatus("h-1", (t("busy.title"),), Tone.SUCCESS, t("ui.more_time"), True)
    model = present(View(Progress("printing", t("busy.title")), help=status), tr, "zh_CN")
    assert model.help_lines == (model.title,)
    assert model.texts[1] == model.title  # the strip comes first, under the top bar
    assert model.help_cancel is not None and model.help_cancel.id == HELP_CANCEL
    assert HELP_CANCEL in [target.id for target in model.targets]
    assert model.help_tone == "success"


def test_speech_says_the_title_and_instructions_but_never_a_value_about_the_resident(
    tr: Translator,
) -> None:
    view = View(
        Menu(
            "m",
            t("menu.title"),
            options=(Action("errand.proof", t("errand.proof")),),
            lines=(t("menu.hello", name="张*"), t("paper.detail")),
        )
    )
    model = present(view, tr, "zh_CN")
    # The greeting carries a masked name: not said aloud in a public place, masked or not.
    assert model.speech == "请选择事项\n请稍后再试"

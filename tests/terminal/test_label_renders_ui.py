"""The real KioskUi under Xvfb never renders a text narrower than one character: labels pass
through their parents' widths while the layouts above them settle (1 px, 30 px, Kivy's default
100 px), and rendered there a text came out one character a line, every character measured."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

import pytest
from ui_child import run_ui_child

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed"),
]

SIZE = (800, 480)

# In a child process: Kivy's window cannot be made twice in one process.
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    from terminal.ui.boot import KivySettings, configure_kivy

    configure_kivy(KivySettings(home=Path(sys.argv[1]), size=(int(sys.argv[2]), int(sys.argv[3]))))

    from kivy.clock import Clock
    from kivy.core.text import LabelBase

    from flows.steps import Action, Attract, Guide, GuideSection, PublicNotice, View, t
    from terminal.app import LOCALES_DIR
    from terminal.i18n import Translator
    from kivy.core.window import Window

    from terminal.ui import geometry
    from terminal.ui.app import KioskUi
    from terminal.ui.widgets import TextLabel

    renders = []
    render = LabelBase.render

    def counted(self, real=False):
        width = self.text_size[0]
        renders.append({"text": self.text.replace("\\n", "")[:12], "width": width,
                        "em": float(self.options["font_size"]), "real": real})
        return render(self, real)

    LabelBase.render = counted

    NOTICE = PublicNotice(t("停水通知"), t("12月8日9:00至12:00，大厅饮水机停用。" * 3))
    ATTRACT = View(Attract("attract", t("attract.title"), lines=(t("请插入社会保障卡"),),
                           notice=NOTICE))
    GUIDE = View(Guide("guide", t("城乡居民基本养老保险参保登记"), sections=(
        GuideSection(t("申请材料"), tuple(t(f"{n}. 居民身份证 原件1份") for n in range(1, 6))),
        GuideSection(t("办理条件"), (t("年满16周岁、不是国家机关和事业单位工作人员" * 2),)),
    ), actions=(Action("back", t("返回")),)))
    ui = KioskUi(Translator.load(LOCALES_DIR))
    seen = {}

    def step(index):
        def run(_dt):
            if index in (1, 2):
                seen[("attract", "guide")[index - 1]] = list(renders)
            renders.clear()
            if index == 2:
                # A label left narrower than one character never draws: the layout check says so.
                ui._root.add_widget(TextLabel("1", 40, size_hint=(None, None), width=12,
                                              height=60, pos=(10, 10)))
                Clock.schedule_once(step(3), 0.5)
                return
            if index == 3:
                seen["issues"] = geometry.layout_issues(ui._root, Window.size)
                ui.stop()
                return
            ui.show((ATTRACT, GUIDE)[index])
            Clock.schedule_once(step(index + 1), 0.8)
        return run

    Clock.schedule_once(step(0), 0.5)
    ui.run()
    print(json.dumps(seen))
""")


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("label-renders")
    seen: dict[str, Any] = run_ui_child(
        CHILD, SIZE, str(workdir / "kivy"), *map(str, SIZE))
    return seen


@pytest.mark.parametrize("screen", ["attract", "guide"])
def test_no_text_is_rendered_narrower_than_one_character(
    renders: dict[str, Any], screen: str,
) -> None:
    shown = renders[screen]
    assert any(r["real"] for r in shown), "nothing was drawn"
    narrow = [r for r in shown if r["width"] is not None and r["width"] < r["em"]]
    assert narrow == [], narrow


def test_a_label_left_narrower_than_one_character_is_a_layout_issue(
    renders: dict[str, Any],
) -> None:
    assert any("is not drawn: 12 px wide" in issue for issue in renders["issues"]), renders

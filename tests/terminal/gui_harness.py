"""GUI test harness: the real KioskUi plus the automation API, stepping through scripted screens.

The screens are synthetic (SCENARIO, DEMO_TEXTS): made up to stress the layout, some of them
showing what the terminal does not have (a help button, a "staff have been told" message), so
test_gui.py files their screenshots under artifacts/screenshots/synthetic-layout/.

Run as a subprocess (Kivy's window cannot be restarted in one process):
    python tests/terminal/gui_harness.py --size 1920x1080 --port-file P --taps-file T --home DIR
Every tap reaching ``on_tap`` is appended to the taps file; a tap on one of the current step's
``advance`` targets moves to the next step (after the last step, back to the first), any other
tap re-shows the step with its countdown one second lower, as the session engine's tick does.
Importing this module does not import Kivy: the test reads ``SCENARIO`` from it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from flows.steps import (
    Action,
    ActionStyle,
    Attract,
    Confirm,
    Done,
    FieldKind,
    Form,
    FormField,
    Guide,
    GuideSection,
    HelpStatus,
    Menu,
    Message,
    Progress,
    Scan,
    ShowQr,
    SummaryRow,
    Tone,
    View,
    t,
)
from simulator.display import parse_size

REPO = Path(__file__).resolve().parents[2]

P, S = ActionStyle.PRIMARY, ActionStyle.SECONDARY

# Realistic content in both languages, under "demo." so it cannot collide with flows.toml.
DEMO_TEXTS: dict[str, dict[str, str]] = {
    "zh_CN": {
        "demo.attract.title": "欢迎使用24小时自助服务",
        "demo.attract.insert": "请将社会保障卡插入屏幕下方的读卡器",
        "demo.attract.scope": "社保、医保、养老等高频事项，全程自助办理，无需排队",
        "demo.attract.guides": "办事指南",
        "demo.attract.help": "呼叫帮办",
        "demo.index.title": "办事指南目录",
        "demo.index.hint": "共12项，可翻页查看",
        "demo.index.1": "社会保障卡申领",
        "demo.index.2": "社会保障卡挂失",
        "demo.index.3": "城乡居民养老保险参保登记",
        "demo.index.4": "养老保险待遇申领",
        "demo.index.5": "医疗保险参保登记",
        "demo.index.6": "医保异地就医备案",
        "demo.index.7": "失业保险金申领",
        "demo.index.8": "就业困难人员认定",
        "demo.index.9": "残疾人两项补贴申请",
        "demo.index.10": "高龄津贴申请",
        "demo.index.11": "最低生活保障申请",
        "demo.index.12": "临时救助申请",
        "demo.menu.title": "请选择要办理的事项",
        "demo.menu.greeting": "您好，{name}（证件号 {id}）",
        "demo.menu.proof": "打印社保参保证明",
        "demo.menu.pension": "养老金发放查询",
        "demo.menu.medical": "医保缴费记录",
        "demo.menu.apply": "申请办理（承诺件）",
        "demo.menu.progress": "办件进度查询",
        "demo.menu.appointment": "预约窗口办理",
        "demo.nav.back": "返回",
        "demo.nav.home": "返回首页",
        "demo.guide.title": "城乡居民基本养老保险待遇申领",
        "demo.guide.intro": "请一次性备齐以下材料；缺少次要材料的，可选择容缺承诺办理。",
        "demo.guide.eligibility": "办理条件",
        "demo.guide.eligibility.age": "年满60周岁、累计缴费满15年的城乡居民基本养老保险参保人",
        "demo.guide.eligibility.other": "未领取其他基本养老保险待遇",
        "demo.guide.materials": "申请材料",
        "demo.guide.m1": "居民身份证原件",
        "demo.guide.m2": "社会保障卡原件",
        "demo.guide.m3": "户口簿首页及本人页复印件",
        "demo.guide.m4": "近期免冠一寸彩色照片2张",
        "demo.guide.m5": "本人银行账户（一类卡）复印件",
        "demo.guide.m6": "《城乡居民基本养老保险待遇申领表》",
        "demo.guide.m7": "委托他人办理的，需提供授权委托书及代办人身份证原件",
        "demo.guide.m8": "有补缴记录的，需提供补缴凭证",
        "demo.guide.deadline": "办理时限",
        "demo.guide.deadline.text": "承诺件，{days}个工作日内办结",
        "demo.guide.fees": "收费标准",
        "demo.guide.fees.text": "不收费",
        "demo.guide.place": "办理地点",
        "demo.guide.place.text": "各乡镇（街道）便民服务中心社保窗口，或在本机自助申请",
        "demo.guide.qr": "扫码查看完整指南",
        "demo.guide.print": "打印材料清单",
        "demo.guide.apply": "开始申请",
        "demo.progress.title": "正在打印，请稍候",
        "demo.progress.line": "打印完成后，请在出纸口取走材料清单",
        "demo.progress.cancel": "取消",
        "demo.paper.title": "打印机缺纸，暂时无法打印",
        "demo.paper.line1": (
            "您的材料清单未能打印。工作人员已收到通知，请稍后再试，"
            "或返回指南页面扫码保存清单。"
        ),
        "demo.paper.line2": "如需帮助，请按“呼叫帮办”。",
        "demo.paper.retry": "重新打印",
        "demo.paper.done": "完成",
        "demo.rating.title": "请对本次服务进行评价",
        "demo.rating.case": "办件编号 {case}",
        "demo.rating.5": "非常满意",
        "demo.rating.4": "满意",
        "demo.rating.3": "基本满意",
        "demo.rating.2": "不满意",
        "demo.rating.1": "非常不满意",
        "demo.rating.skip": "跳过",
        "demo.confirm.title": "请确认办理",
        "demo.confirm.errand": "办理事项",
        "demo.confirm.errand.value": "社会保险参保证明打印",
        "demo.confirm.place": "打印地点",
        "demo.confirm.place.value": "瑞安市塘下镇便民服务中心24小时自助区",
        "demo.confirm.privacy": "打印的证明上，姓名和证件号码将部分隐去",
        "demo.confirm.go": "确认打印",
        "demo.done.title": "办理完成",
        "demo.done.line": "请取走您的社会保障卡和打印的凭条",
        "demo.qr.title": "扫码带走办事指南",
        "demo.qr.caption": "用手机扫描二维码，随时查看所需材料",
        "demo.qr.line": "无需登录，二维码长期有效",
        "demo.form.title": "请填写联系方式",
        "demo.form.line": "用于办理结果通知，不会用于其他用途",
        "demo.form.phone.label": "手机号码",
        "demo.form.day.label": "预约日期",
        "demo.form.delivery.label": "领取方式",
        "demo.form.delivery.mail": "免费邮寄",
        "demo.form.delivery.pickup": "窗口领取",
        "demo.form.next": "下一步",
        "demo.scan.material": "材料2/6：户口簿（户主页和本人页）",
        "demo.scan.title": "请将材料正面朝上放在高拍仪下",
        "demo.scan.blank": "没有拍到材料：请把材料放在高拍仪下方的白框内再拍。",
        "demo.scan.pages": "已拍1页。还有下一页请点“再拍一页”，拍完点“这份拍好了”。",
        "demo.scan.add": "再拍一页",
        "demo.scan.retake": "重拍上一页",
        "demo.scan.done": "这份拍好了",
    },
    "en": {
        "demo.attract.title": "Welcome to 24-hour self-service",
        "demo.attract.insert": (
            "Please insert your social security card into the reader below the screen"
        ),
        "demo.attract.scope": (
            "Social insurance, medical insurance and pension errands: all self-service, no queue"
        ),
        "demo.attract.guides": "Service guides",
        "demo.attract.help": "Call for help",
        "demo.index.title": "Service guide index",
        "demo.index.hint": "12 services in all",
        "demo.index.1": "Apply for a social security card",
        "demo.index.2": "Report a lost social security card",
        "demo.index.3": "Enrol in the residents' pension",
        "demo.index.4": "Claim the basic pension",
        "demo.index.5": "Enrol in medical insurance",
        "demo.index.6": "Register medical care in another city",
        "demo.index.7": "Claim unemployment benefit",
        "demo.index.8": "Certify as hard to employ",
        "demo.index.9": "Apply for the two disability allowances",
        "demo.index.10": "Apply for the old-age allowance",
        "demo.index.11": "Apply for minimum living support",
        "demo.index.12": "Apply for temporary assistance",
        "demo.menu.title": "Choose an errand",
        "demo.menu.greeting": "Hello, {name} (ID {id})",
        "demo.menu.proof": "Print social insurance enrolment proof",
        "demo.menu.pension": "Pension payment records",
        "demo.menu.medical": "Medical insurance contributions",
        "demo.menu.apply": "Lodge an application",
        "demo.menu.progress": "Check case progress",
        "demo.menu.appointment": "Book a staffed window",
        "demo.nav.back": "Back",
        "demo.nav.home": "Home",
        "demo.guide.title": "Claiming the basic pension for urban and rural residents",
        "demo.guide.intro": (
            "Please bring all of these at once; a missing secondary material can be covered "
            "by a written commitment."
        ),
        "demo.guide.eligibility": "Who can apply",
        "demo.guide.eligibility.age": (
            "Members of the residents' basic pension scheme aged 60 or over with at least "
            "15 years of contributions"
        ),
        "demo.guide.eligibility.other": "Not receiving any other basic pension",
        "demo.guide.materials": "Materials to bring",
        "demo.guide.m1": "Resident ID card (original)",
        "demo.guide.m2": "Social security card (original)",
        "demo.guide.m3": "Copy of the household register: front page and your own page",
        "demo.guide.m4": "Two recent 1-inch colour photos without headwear",
        "demo.guide.m5": "Copy of your own bank card (Class I account)",
        "demo.guide.m6": "The completed pension claim form",
        "demo.guide.m7": (
            "If someone applies for you: a signed power of attorney and the agent's ID card "
            "(original)"
        ),
        "demo.guide.m8": "If you made back-payments: the payment receipts",
        "demo.guide.deadline": "Time limit",
        "demo.guide.deadline.text": "Application case, completed within {days} working days",
        "demo.guide.fees": "Fees",
        "demo.guide.fees.text": "Free of charge",
        "demo.guide.place": "Where",
        "demo.guide.place.text": (
            "The social insurance window of any township service centre, or apply on this "
            "terminal"
        ),
        "demo.guide.qr": "Scan for the full guide",
        "demo.guide.print": "Print the checklist",
        "demo.guide.apply": "Start the application",
        "demo.progress.title": "Printing, please wait",
        "demo.progress.line": "When it is done, take the checklist from the slot below",
        "demo.progress.cancel": "Cancel",
        "demo.paper.title": "The printer is out of paper",
        "demo.paper.line1": (
            "Your checklist could not be printed. Staff have been told. Please try again later, "
            "or go back to the guide and scan its QR code to keep the list."
        ),
        "demo.paper.line2": 'For help, press "Call for help".',
        "demo.paper.retry": "Print again",
        "demo.paper.done": "Done",
        "demo.rating.title": "Please rate this service",
        "demo.rating.case": "Case number {case}",
        "demo.rating.5": "Very satisfied",
        "demo.rating.4": "Satisfied",
        "demo.rating.3": "Fairly satisfied",
        "demo.rating.2": "Dissatisfied",
        "demo.rating.1": "Very dissatisfied",
        "demo.rating.skip": "Skip",
        "demo.confirm.title": "Please confirm",
        "demo.confirm.errand": "Service",
        "demo.confirm.errand.value": "Print social insurance proof",
        "demo.confirm.place": "Printed at",
        "demo.confirm.place.value": "Tangxia Town Service Centre, 24-hour self-service area",
        "demo.confirm.privacy": "Name and ID number are partly hidden on the proof",
        "demo.confirm.go": "Print",
        "demo.done.title": "All done",
        "demo.done.line": "Please take your card and your printout",
        "demo.qr.title": "Take the guide with you",
        "demo.qr.caption": "Scan the code with your phone to see the materials any time",
        "demo.qr.line": "No login needed; the code does not expire",
        "demo.form.title": "Your contact details",
        "demo.form.line": "Used only to tell you the result",
        "demo.form.phone.label": "Mobile number",
        "demo.form.day.label": "Appointment date",
        "demo.form.delivery.label": "How to receive it",
        "demo.form.delivery.mail": "Free mail delivery",
        "demo.form.delivery.pickup": "Pick up at the window",
        "demo.form.next": "Next",
        "demo.scan.material": "Material 2 of 6: household register (head's and own page)",
        "demo.scan.title": "Place the material face up under the camera",
        "demo.scan.blank": "Nothing was captured: place the material inside the white frame.",
        "demo.scan.pages": "1 page taken. Tap Add a page for the next, or This one is done.",
        "demo.scan.add": "Add a page",
        "demo.scan.retake": "Retake the last page",
        "demo.scan.done": "This one is done",
    },
}


def _page_thumbnail() -> bytes:
    """A small JPEG like a scanned page's thumbnail: a white sheet with grey lines of text."""
    import io  # noqa: PLC0415

    from PIL import Image, ImageDraw  # noqa: PLC0415

    page = Image.new("RGB", (226, 320), "white")
    draw = ImageDraw.Draw(page)
    for y in range(30, 300, 18):
        draw.rectangle((20, y, 200 - (y % 50), y + 6), fill=(90, 90, 90))
    out = io.BytesIO()
    page.save(out, "JPEG", quality=80)
    return out.getvalue()


@dataclass(frozen=True)
class Step:
    """One scripted screen and the targets that move the script on."""

    view: View
    advance: frozenset[str]


def _a(id_: str, key: str, style: ActionStyle = S, enabled: bool = True) -> Action:
    return Action(id_, t(key), enabled, style)


SCENARIO: tuple[Step, ...] = (
    Step(
        View(
            Attract(
                "attract",
                t("demo.attract.title"),
                lines=(t("demo.attract.insert"), t("demo.attract.scope")),
                actions=(
                    _a("attract.guides", "demo.attract.guides"),
                    _a("attract.help", "demo.attract.help"),
                ),
            )
        ),
        frozenset({"attract.guides"}),
    ),
    Step(
        View(
            Menu(
                "guide.index",
                t("demo.index.title"),
                # More tiles than a small screen holds: the menu scrolls, and touches on tiles
                # inside a scrolling view take Kivy's delayed path.
                options=tuple(_a(f"index.{i}", f"demo.index.{i}") for i in range(1, 13)),
                lines=(t("demo.index.hint"),),
                actions=(_a("nav.back", "demo.nav.back"), _a("nav.home", "demo.nav.home")),
            ),
            countdown_s=60,
        ),
        frozenset({"nav.home"}),
    ),
    Step(
        View(
            Menu(
                "errands.menu",
                t("demo.menu.title"),
                options=(
                    _a("errand.proof", "demo.menu.proof"),
                    _a("errand.pension", "demo.menu.pension"),
                    _a("errand.medical", "demo.menu.medical"),
                    _a("errand.apply", "demo.menu.apply"),
                    _a("errand.progress", "demo.menu.progress"),
                    _a("errand.appointment", "demo.menu.appointment"),
                ),
                lines=(t("demo.menu.greeting", name="张*", id="1101**********002X"),),
                actions=(_a("nav.back", "demo.nav.back"), _a("nav.home", "demo.nav.home")),
            ),
            countdown_s=45,
        ),
        frozenset({"errand.apply"}),
    ),
    Step(
        View(
            Guide(
                "guide.pension_claim",
                t("demo.guide.title"),
                sections=(
                    GuideSection(
                        t("demo.guide.eligibility"),
                        (t("demo.guide.eligibility.age"), t("demo.guide.eligibility.other")),
                    ),
                    GuideSection(
                        t("demo.guide.materials"),
                        tuple(t(f"demo.guide.m{i}") for i in range(1, 9)),
                    ),
                    GuideSection(
                        t("demo.guide.deadline"), (t("demo.guide.deadline.text", days="5"),)
                    ),
                    GuideSection(t("demo.guide.fees"), (t("demo.guide.fees.text"),)),
                    GuideSection(t("demo.guide.place"), (t("demo.guide.place.text"),)),
                ),
                qr_data="https://zwfw.example.gov.cn/guide/pension-claim?v=2024.11",
                qr_caption=t("demo.guide.qr"),
                lines=(t("demo.guide.intro"),),
                actions=(
                    _a("nav.back", "demo.nav.back"),
                    _a("guide.print", "demo.guide.print", P),
                    _a("guide.apply", "demo.guide.apply", P),
                ),
            ),
            countdown_s=110,
        ),
        frozenset({"guide.print"}),
    ),
    Step(
        View(
            Progress(
                "print.progress",
                t("demo.progress.title"),
                lines=(t("demo.progress.line"),),
                actions=(_a("print.cancel", "demo.progress.cancel"),),
            )
        ),
        frozenset({"print.cancel"}),
    ),
    Step(
        View(
            Message(
                "print.paper_out",
                t("demo.paper.title"),
                lines=(t("demo.paper.line1"), t("demo.paper.line2")),
                actions=(
                    _a("print.retry", "demo.paper.retry", P, enabled=False),
                    _a("attract.help", "demo.attract.help"),
                    _a("nav.done", "demo.paper.done", P),
                ),
                tone=Tone.ERROR,
            ),
            countdown_s=20,
            # A help call answered (the strip under the top bar), on the busiest screen.
            help=HelpStatus("h-1", (t("help.coming.title", staff="王工", minutes="5"),
                                    t("help.coming.body")), Tone.SUCCESS, t("help.cancel"), True),
        ),
        frozenset({"nav.done"}),
    ),
    Step(
        View(
            Menu(
                "rating",
                t("demo.rating.title"),
                options=tuple(
                    _a(f"rating.{level}", f"demo.rating.{level}") for level in range(5, 0, -1)
                ),
                lines=(t("demo.rating.case", case="SB2024110500123"),),
                actions=(_a("rating.skip", "demo.rating.skip"),),
            ),
            countdown_s=30,
        ),
        frozenset({"rating.skip"}),
    ),
    Step(
        View(
            Confirm(
                "demo.confirm",
                t("demo.confirm.title"),
                rows=(
                    SummaryRow(t("demo.confirm.errand"), t("demo.confirm.errand.value")),
                    SummaryRow(t("demo.confirm.place"), t("demo.confirm.place.value")),
                ),
                lines=(t("demo.confirm.privacy"),),
                actions=(_a("confirm", "demo.confirm.go", P), _a("nav.back", "demo.nav.back")),
            ),
            countdown_s=40,
        ),
        frozenset({"confirm"}),
    ),
    Step(
        View(
            Done(
                "demo.done",
                t("demo.done.title"),
                lines=(t("demo.done.line"),),
                actions=(_a("nav.done", "demo.paper.done", P),),
            )
        ),
        frozenset({"nav.done"}),
    ),
    Step(
        View(
            ShowQr(
                "demo.qr",
                t("demo.qr.title"),
                qr_data="https://zwfw.example.gov.cn/guide/pension-claim?v=2024.11",
                qr_caption=t("demo.qr.caption"),
                lines=(t("demo.qr.line"),),
                actions=(_a("nav.back", "demo.nav.back"),),
            )
        ),
        frozenset({"nav.back"}),
    ),
    Step(
        View(
            Form(
                "demo.form",
                t("demo.form.title"),
                fields=(
                    FormField("phone", t("demo.form.phone.label"), FieldKind.DIGITS,
                              shown="138****5678"),
                    FormField("day", t("demo.form.day.label"), FieldKind.DATE,
                              shown="2026-12-1_", error=t("form.error.date")),
                    FormField(
                        "delivery", t("demo.form.delivery.label"), FieldKind.CHOICE,
                        choices=(
                            _a("choice.delivery.mail", "demo.form.delivery.mail"),
                            _a("choice.delivery.pickup", "demo.form.delivery.pickup"),
                        ),
                    ),
                ),
                focus="day",
                lines=(t("demo.form.line"),),
                actions=(_a("nav.back", "demo.nav.back"), _a("form.next", "demo.form.next", P)),
            )
        ),
        frozenset({"form.next"}),
    ),
    Step(
        View(
            Scan(
                "demo.scan",
                t("demo.scan.title"),
                t("demo.scan.material"),
                pages=1,
                lines=(t("demo.scan.blank"), t("demo.scan.pages")),
                actions=(_a("capture", "demo.scan.add"), _a("retake", "demo.scan.retake"),
                         _a("done", "demo.scan.done", P), _a("nav.back", "demo.nav.back")),
                thumbnail=_page_thumbnail(),
                tone=Tone.WARNING,
            )
        ),
        frozenset({"done"}),
    ),
)


def mm_per_px(size: tuple[int, int]) -> float:
    """The reference screen's real pixel pitch, as the simulator configures it."""
    from simulator.rig import REFERENCE_DIAGONALS_IN  # noqa: PLC0415
    from terminal.config import DisplaySettings  # noqa: PLC0415

    width, height = size
    return DisplaySettings(width=width, height=height,
                           diagonal_in=REFERENCE_DIAGONALS_IN[size]).mm_per_px


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, required=True, help="WIDTHxHEIGHT")
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--taps-file", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True, help="private KIVY_HOME")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from terminal.ui.boot import KivySettings, configure_kivy  # noqa: PLC0415 - before Kivy

    configure_kivy(KivySettings(home=args.home, size=args.size))

    # Kivy may be imported only now that it is configured.
    from terminal.automation import AutomationEndpoints, AutomationServer  # noqa: PLC0415
    from terminal.i18n import Translator  # noqa: PLC0415
    from terminal.ui.app import KioskUi  # noqa: PLC0415

    translator = Translator.load(REPO / "terminal" / "locales", extra=DEMO_TEXTS)
    ui = KioskUi(translator, mm_per_px=mm_per_px(args.size))
    position = 0

    shown = SCENARIO[0].view
    elder = False

    def on_tap(target: str) -> None:
        nonlocal position, shown, elder
        with args.taps_file.open("a", encoding="utf-8") as taps:
            taps.write(f"{shown.screen.screen} {target}\n")
        if target == "mode.toggle":
            # As the session engine does: the same screen, in the other mode.
            elder = not elder
            shown = replace(shown, elder=elder)
        elif target == "more_time":
            # As the session engine does: the timer starts again and the countdown goes.
            shown = replace(shown, countdown_s=None)
        elif target in SCENARIO[position].advance:
            position = (position + 1) % len(SCENARIO)
            shown = replace(SCENARIO[position].view, elder=elder)
        elif shown.countdown_s is not None:
            # As the session engine does every second: the same screen, one second less.
            shown = replace(shown, countdown_s=shown.countdown_s - 1)
        ui.show(shown)

    ui.on_tap = on_tap
    server = AutomationServer(
        AutomationEndpoints(
            describe=ui.current_description,
            tap=ui.tap,
            screenshot=ui.screenshot_png,
            touch=ui.touch_at,
            layout=ui.layout_issues,
            text=ui.text,
        ),
        timeout_s=10.0,
    )
    server.start()
    ui.show(shown)
    # Written last and atomically: the test starts talking once it sees the port.
    partial = args.port_file.with_suffix(".partial")
    partial.write_text(str(server.port), encoding="utf-8")
    partial.replace(args.port_file)
    ui.run()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

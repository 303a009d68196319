"""Printed receipts: the masked proof of an instant errand and the guide's checklist."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
import unicodedata
from pathlib import Path

import pytest
from flows_support import DOCUMENT, HOLDER, receipt_strings

from devices.base import Align, CardHolder, FieldLine, QrCode, Receipt, TextLine
from devices.printer.protocol import (
    PAPER_58MM,
    PAPER_80MM,
    PrintLine,
    PrintQr,
    layout_receipt,
    text_columns,
)
from flows.catalogue import (
    CatalogueItem,
    Department,
    ItemKind,
    Localised,
    Material,
    ServiceGuide,
    Theme,
    parse_catalogue,
)
from flows.clock import CHINA_ZONE, FakeClock
from flows.hub import DocumentField, ErrandDocument
from flows.receipt import guide_receipt, proof_receipt

PENSION_OFFICE = Department(
    "human_resources",
    Localised("社会保险经办机构", "Social insurance agency"),
    Localised("便民服务中心人社窗口", "The social insurance window at the service centre"),
)
GUIDE_ITEM = CatalogueItem(
    id="enroll",
    kind=ItemKind.APPLICATION,
    title=Localised("城乡居民基本养老保险参保登记", "Pension enrollment"),
    flow="guide",
    theme=Theme("social_insurance", Localised("社会保障", "Social insurance")),
    department=PENSION_OFFICE,
    guide=ServiceGuide(
        materials=(
            Material("id_card", Localised("居民身份证", "ID card")),
            Material(
                "household",
                Localised("户口簿", "Hukou"),
                Localised("户主页和本人页", "Head's page and yours"),
                copies=1,
            ),
            Material("photo", Localised("一寸照片", "Photo"), originals=2, deferrable=True),
            Material(
                "power_of_attorney",
                Localised("授权委托书", "Power of attorney"),
                Localised("委托他人代办的", "If someone applies for you"),
                optional=True,
            ),
        ),
        conditions=(Localised("年满16周岁", "Aged 16 or over"), Localised("非在校学生", "x")),
        time_limit_working_days=5,
        fees=Localised("不收费", "Free"),
        legal_basis=(Localised("《国务院关于建立统一的城乡居民基本养老保险制度的意见》", "x"),),
        guide_url="https://zwfw.example.com/guide/enroll",
    ),
)
CONTENT = Path(__file__).resolve().parents[2] / "terminal/content/catalogue.toml"
NOW = FakeClock().now()  # 2025-03-14 01:30 UTC, 09:30 in Beijing


def fields(receipt: Receipt) -> dict[str, str]:
    return {b.label: b.value for b in receipt.blocks if isinstance(b, FieldLine)}


def proof(document: ErrandDocument = DOCUMENT, holder: CardHolder = HOLDER) -> Receipt:
    return proof_receipt(document, holder, terminal_id="T-0001", printed_at=NOW, zone=CHINA_ZONE)


def test_proof_layout() -> None:
    receipt = proof()
    title = receipt.blocks[0]
    assert title == TextLine("社会保险参保证明", Align.CENTER, emphasis=True, large=True)
    printed = fields(receipt)
    assert printed["姓名"] == "欧***"
    assert printed["公民身份号码"] == "1101**********002X"
    assert printed["参保险种"] == "城乡居民基本养老保险"
    assert printed["累计缴费月数"] == "180"
    assert printed["办件编号"] == "CASE-2025-000123"
    assert printed["验证码"] == "7K3Q-9XPA"
    assert printed["终端编号"] == "T-0001"
    assert printed["打印时间"] == "2025-03-14 09:30:00"  # local time, not UTC
    qr = [b for b in receipt.blocks if isinstance(b, QrCode)]
    assert qr == [QrCode("https://hub.example.com/verify/7K3Q9XPA", "扫码核验")]
    footer = receipt.blocks[-1]
    assert isinstance(footer, TextLine) and "核验" in footer.text


def test_proof_never_carries_the_full_name_or_number() -> None:
    text = "\n".join(receipt_strings(proof()))
    assert "11010519491231002X" not in text and "欧阳娜娜" not in text
    assert "A12345678" not in text  # nor the card number
    assert "1101**********002X" in text and "欧***" in text


def test_proof_masks_personal_data_the_hub_sent_by_mistake() -> None:
    leaky = dataclasses.replace(
        DOCUMENT,
        title="欧阳娜娜的社会保险参保证明",
        fields=(
            DocumentField("证件号码", "11010519491231002x"),
            DocumentField("备注", "参保人欧阳娜娜，身份证11010519491231002X"),
        ),
    )
    text = "\n".join(receipt_strings(proof(leaky)))
    assert "欧阳娜娜" not in text
    assert "11010519491231002" not in text
    assert "参保人欧***，身份证1101**********002X" in text


FULL_WIDTH_NUMBER = "".join(chr(ord(c) + 0xFEE0) for c in "11010519491231002x")


@pytest.mark.parametrize(
    "leaky",
    [
        # Found by fuzzing: the printer drops zero-width characters, the scrubber did not.
        dataclasses.replace(DOCUMENT, fields=(DocumentField("备注", "欧阳\u200b娜娜"),
                                              DocumentField("号码", "1101051949\u200b1231002X"))),
        # Full-width digits print as the number they are.
        dataclasses.replace(DOCUMENT, fields=(DocumentField("号码", FULL_WIDTH_NUMBER),)),
        # Found by fuzzing: the case number and verification code were printed unscrubbed.
        dataclasses.replace(DOCUMENT, case_number="11010519491231002X"),
        dataclasses.replace(DOCUMENT, verification_code="欧阳娜娜"),
    ],
)
def test_proof_masks_personal_data_however_the_hub_writes_it(leaky: ErrandDocument) -> None:
    text = unicodedata.normalize("NFKC", "".join(
        ch for ch in "\n".join(receipt_strings(proof(leaky))) if ch != "\u200b")).upper()
    assert "欧阳娜娜" not in text and "11010519491231002X" not in text


def test_a_verification_link_carrying_the_number_is_left_off_the_paper() -> None:
    leaky = dataclasses.replace(
        DOCUMENT, verify_url="https://hub.example.com/verify?id=11010519491231002X")
    receipt = proof(leaky)
    assert not [b for b in receipt.blocks if isinstance(b, QrCode)]
    assert "11010519491231002X" not in "\n".join(receipt_strings(receipt))
    assert fields(receipt)["验证码"] == "7K3Q-9XPA"  # still verifiable by its code


def test_proof_printed_time_follows_the_configured_zone() -> None:
    receipt = proof_receipt(DOCUMENT, HOLDER, terminal_id="T-0001", printed_at=NOW, zone=dt.UTC)
    assert fields(receipt)["打印时间"] == "2025-03-14 01:30:00"


@pytest.mark.parametrize(("name", "masked"), [("王", "王"), ("张三", "张*")])
def test_short_names(name: str, masked: str) -> None:
    receipt = proof(holder=dataclasses.replace(HOLDER, name=name))
    assert fields(receipt)["姓名"] == masked
    # A one-character name is its own mask; the document's own text is left as the hub wrote it.
    assert fields(receipt)["参保状态"] == "正常参保"


def guide(item: CatalogueItem = GUIDE_ITEM) -> Receipt:
    return guide_receipt(item, terminal_id="T-0001", printed_at=NOW, zone=CHINA_ZONE)


def test_guide_receipt_lists_every_material_at_once() -> None:
    receipt = guide()
    assert receipt.blocks[0] == TextLine("一次性告知单", Align.CENTER, emphasis=True, large=True)
    text = receipt_strings(receipt)
    assert "城乡居民基本养老保险参保登记" in text
    assert "申请材料（共4项，请一次备齐）" in text
    assert "□ 1. 居民身份证 原件1份" in text
    assert "□ 2. 户口簿 原件1份、复印件1份" in text
    assert "      说明：户主页和本人页" in text
    assert "□ 3. 一寸照片 原件2份（可容缺）" in text
    assert "□ 4. 授权委托书 原件1份（视情形）" in text
    assert "      适用情形：委托他人代办的" in text
    # Each mark is explained once, under the list.
    assert sum("（可容缺）的材料" in line for line in text) == 1
    assert sum("（视情形）的材料" in line for line in text) == 1
    conditions = [line for line in text if line.startswith("（")]
    assert conditions == ["（1）年满16周岁", "（2）非在校学生"]
    printed = fields(receipt)
    assert printed["办结时限"] == "5个工作日"
    assert printed["收费标准"] == "不收费"
    assert printed["终端编号"] == "T-0001"
    assert printed["打印时间"] == "2025-03-14 09:30:00"
    assert "办理部门：社会保险经办机构" in text
    assert "办理地点：便民服务中心人社窗口" in text
    assert "《国务院关于建立统一的城乡居民基本养老保险制度的意见》" in text
    assert QrCode("https://zwfw.example.com/guide/enroll", "扫码查看办事指南") in receipt.blocks


def test_guide_receipt_prints_the_sections_in_reading_order() -> None:
    text = receipt_strings(guide())
    order = ["申请材料（共4项，请一次备齐）", "受理条件", "办结时限", "办理部门：社会保险经办机构",
             "设定依据", "扫码查看办事指南", "打印时间"]
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order)


def test_guide_receipt_without_marks_has_no_legend() -> None:
    plain = dataclasses.replace(
        GUIDE_ITEM.guide,
        materials=(Material("id_card", Localised("居民身份证", "ID card"), copies=3),),
        time_limit_working_days=0,
    )
    receipt = guide(dataclasses.replace(GUIDE_ITEM, guide=plain))
    text = receipt_strings(receipt)
    assert "□ 1. 居民身份证 原件1份、复印件3份" in text
    assert not any("的材料" in line for line in text)
    assert fields(receipt)["办结时限"] == "即时办结"  # 0 working days: a 即办件


def test_every_shipped_guide_prints_on_both_papers() -> None:
    with CONTENT.open("rb") as f:
        catalogue = parse_catalogue(tomllib.load(f))
    for item in catalogue.items:
        receipt = guide(item)
        text = "\n".join(receipt_strings(receipt))
        assert "None" not in text and item.title.zh in text
        for paper in (PAPER_58MM, PAPER_80MM):
            lines = [i.text for i in layout_receipt(receipt, paper) if isinstance(i, PrintLine)]
            assert all(text_columns(line) <= paper.columns for line in lines)
            assert sum(isinstance(i, PrintQr) for i in layout_receipt(receipt, paper)) == 1

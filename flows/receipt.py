"""What goes on paper: the printed proof of an instant errand and the 一次性告知单 of a guide.

Receipts are printed in Chinese whatever the display language: they are official papers shown to
offices that read Chinese. The holder's name and ID number are printed masked only, never in full
(GB/T 35273 7.2 applies to paper as to screens).
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from devices.base import (
    Align,
    CardHolder,
    Feed,
    FieldLine,
    QrCode,
    Receipt,
    ReceiptBlock,
    Rule,
    TextLine,
)
from flows.catalogue import CatalogueItem, Material
from flows.hub import ErrandDocument
from flows.identity import mask_id_number, mask_name, normalise_id_number

PRINTED_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def proof_receipt(
    document: ErrandDocument,
    holder: CardHolder,
    *,
    terminal_id: str,
    printed_at: dt.datetime,
    zone: dt.tzinfo,
) -> Receipt:
    """The proof an instant errand prints: identity masked, the hub's facts, how to verify it."""
    scrub = _Scrubber(holder)
    blocks: list[ReceiptBlock] = [
        TextLine(scrub(document.title), Align.CENTER, emphasis=True, large=True),
        Rule(),
        FieldLine("姓名", mask_name(holder.name)),
        FieldLine("公民身份号码", mask_id_number(holder.id_number)),
    ]
    blocks += [FieldLine(scrub(f.label), scrub(f.value)) for f in document.fields]
    # A verification link that carries the holder's number or name is not printed at all: masked,
    # it would no longer verify anything; the verification code still does.
    link_is_clean = scrub(document.verify_url) == document.verify_url
    blocks += [
        Rule(),
        FieldLine("办件编号", scrub(document.case_number)),
        FieldLine("验证码", scrub(document.verification_code)),
        FieldLine("终端编号", terminal_id),
        FieldLine("打印时间", _local(printed_at, zone)),
        QrCode(document.verify_url, "扫码核验") if link_is_clean else Feed(0),
        TextLine("本证明由政务服务自助终端打印，可扫码或凭验证码核验真伪。" if link_is_clean
                 else "本证明由政务服务自助终端打印，可凭验证码核验真伪。", Align.CENTER),
    ]
    return Receipt(tuple(blocks))


def guide_receipt(
    item: CatalogueItem, *, terminal_id: str, printed_at: dt.datetime, zone: dt.tzinfo
) -> Receipt:
    """The 一次性告知单: every material as a checklist, then conditions, time limit, fees, where to
    go and the legal basis, all at once; the item's texts only, no personal data."""
    guide = item.guide
    department = item.department
    materials = guide.materials
    blocks: list[ReceiptBlock] = [
        TextLine("一次性告知单", Align.CENTER, emphasis=True, large=True),
        TextLine(item.title.zh, Align.CENTER, emphasis=True),
        Rule(),
        TextLine(f"申请材料（共{len(materials)}项，请一次备齐）", emphasis=True),
    ]
    for number, material in enumerate(materials, start=1):
        blocks += _material_lines(number, material)
    if any(material.deferrable for material in materials):
        blocks.append(TextLine("标注（可容缺）的材料可先行受理，承诺后限期补交。"))
    if any(material.optional for material in materials):
        blocks.append(TextLine("标注（视情形）的材料由适用情形所列申请人提供。"))
    blocks += [
        Rule(),
        TextLine("受理条件", emphasis=True),
        *(TextLine(f"（{n}）{condition.zh}", hang=3)
          for n, condition in enumerate(guide.conditions, 1)),
        Rule(),
        FieldLine("办结时限", _time_limit(guide.time_limit_working_days)),
        FieldLine("收费标准", guide.fees.zh),
        TextLine(f"办理部门：{department.name.zh}", hang=5),
        TextLine(f"办理地点：{department.where.zh}", hang=5),
        TextLine("设定依据", emphasis=True),
        *(TextLine(basis.zh) for basis in guide.legal_basis),
        Rule(),
        QrCode(guide.guide_url, "扫码查看办事指南"),
        FieldLine("终端编号", terminal_id),
        FieldLine("打印时间", _local(printed_at, zone)),
        TextLine("本告知单不含个人信息。", Align.CENTER),
    ]
    return Receipt(tuple(blocks))


def _material_lines(number: int, material: Material) -> list[ReceiptBlock]:
    """One checklist entry: a box to tick, the name, how many of what, its marks; notes below."""
    counts = "、".join(
        f"{label}{count}份"
        for label, count in (("原件", material.originals), ("复印件", material.copies))
        if count > 0
    )
    marks = ("（可容缺）" if material.deferrable else "") + (
        "（视情形）" if material.optional else ""
    )
    box = f"□ {number}. "
    # A long name or note wraps under its own words, not under the box to tick.
    lines: list[ReceiptBlock] = [
        TextLine(f"{box}{material.name.zh} {counts}{marks}", hang=len(box))
    ]
    if material.notes is not None:
        # For an optional material the notes say who brings it; for the others, how.
        label = "适用情形" if material.optional else "说明"
        indent = " " * (len(box) + 1)  # □ prints two columns wide
        lines.append(TextLine(f"{indent}{label}：{material.notes.zh}", hang=len(indent)))
    return lines


def _time_limit(working_days: int) -> str:
    return "即时办结" if working_days == 0 else f"{working_days}个工作日"


def _local(when: dt.datetime, zone: dt.tzinfo) -> str:
    return when.astimezone(zone).strftime(PRINTED_TIME_FORMAT)


class _Scrubber:
    """Masks the holder's full name or ID number wherever a hub text carries it by mistake.

    The hub promises record facts only, but a proof leaves the building on paper, so the terminal
    does not take that promise on trust. The search sees the text as the paper will: characters
    the printer drops (zero-width, control, format) are dropped first, so "欧阳\u200b娜娜" cannot
    slip past as something else than 欧阳娜娜, and full-width digits are read as the digits
    they print as.
    """

    def __init__(self, holder: CardHolder) -> None:
        self._replacements: list[tuple[str, str]] = []
        number = normalise_id_number(holder.id_number)
        if number:
            self._replacements.append((_folded(number), mask_id_number(number)))
        name = unicodedata.normalize("NFC", holder.name.strip())
        # A one-character name is its own mask; replacing that character would garble the text.
        if len(name) > 1:
            self._replacements.append((_folded(name), mask_name(name)))

    def __call__(self, text: str) -> str:
        text = _printable(text)
        for full, masked in self._replacements:
            # Found in a folded copy of the same length, replaced in the text itself.
            folded = _folded(text)
            start = folded.find(full)
            while start >= 0:
                text = text[:start] + masked + text[start + len(full):]
                folded = folded[:start] + masked + folded[start + len(full):]
                start = folded.find(full, start + len(masked))
        return text


def _printable(text: str) -> str:
    """The text without what a printer drops (control, format, surrogate, private, unassigned
    characters), composed: what the paper will show, character for character."""
    kept = "".join(ch for ch in text
                   if ch in "\n\t" or unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    return unicodedata.normalize("NFC", kept)


_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _folded(text: str) -> str:
    """One character for one: full-width and other compatibility forms as the plain character
    they stand for, upper-cased, so ``１１０１…ｘ`` matches ``1101…X``."""
    out = []
    for ch in text:
        plain = unicodedata.normalize("NFKC", ch).upper()
        out.append(plain if len(plain) == 1 else ch)
    return "".join(out)

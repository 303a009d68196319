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
from flows.catalogue import CatalogueItem
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
    """The 一次性告知单: every material at once, the time limit, fees, basis; no personal data."""
    guide = item.guide
    if guide is None:
        raise ValueError(f"catalogue item {item.id!r} has no service guide")
    blocks: list[ReceiptBlock] = [
        TextLine("一次性告知单", Align.CENTER, emphasis=True, large=True),
        TextLine(item.title.zh, Align.CENTER, emphasis=True),
        Rule(),
        TextLine("申请材料", emphasis=True),
    ]
    for number, material in enumerate(guide.materials, start=1):
        notes = f"（{material.notes.zh}）" if material.notes is not None else ""
        mark = "〔可容缺〕" if material.deferrable else ""
        blocks.append(TextLine(f"{number}. {material.name.zh}{notes}{mark}"))
    if any(material.deferrable for material in guide.materials):
        blocks.append(TextLine("标注〔可容缺〕的材料可先行受理，承诺后限期补交。"))
    blocks += [
        Rule(),
        FieldLine("办结时限", f"{guide.time_limit_working_days}个工作日"),
        FieldLine("收费标准", guide.fees.zh),
        TextLine(f"办理部门：{guide.department.zh}"),
        TextLine("设定依据", emphasis=True),
        *(TextLine(basis.zh) for basis in guide.legal_basis),
        Rule(),
        QrCode(guide.guide_url, "扫码查看办事指南"),
        FieldLine("终端编号", terminal_id),
        FieldLine("打印时间", _local(printed_at, zone)),
        TextLine("本告知单不含个人信息。", Align.CENTER),
    ]
    return Receipt(tuple(blocks))


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

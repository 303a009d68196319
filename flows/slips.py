"""The paper the errands after the proof print: an application's receipt (受理回执), a progress
slip, an appointment slip and a 办不成事 report's slip.

In Chinese whatever the display language, like every receipt. Nothing identifies the resident
beyond a masked name where one is printed at all; phone numbers and addresses are printed masked;
the QR codes carry only a case number, a local reference or an appointment code.
"""

from __future__ import annotations

import datetime as dt

from contracts.codes import appointment_url, progress_url
from devices.base import Align, FieldLine, QrCode, Receipt, ReceiptBlock, Rule, TextLine
from flows.catalogue import CatalogueItem
from flows.hub import Appointment, CaseProgress, CaseStatus, Delivery

PRINTED_TIME_FORMAT = "%Y-%m-%d %H:%M"

STATUS_ZH: dict[CaseStatus, str] = {
    CaseStatus.QUEUED: "已在本终端登记，待发送",
    CaseStatus.NOT_SUBMITTED: "未能提交，请到窗口办理",
    CaseStatus.RECEIVED: "已收件",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.IN_REVIEW: "审查中",
    CaseStatus.AWAITING_MATERIALS: "待补齐容缺材料",
    CaseStatus.APPROVED: "已办结（准予）",
    CaseStatus.REJECTED: "已办结（不予）",
    CaseStatus.DELIVERED: "已送达",
}


def local_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _local(when: dt.datetime, zone: dt.tzinfo) -> str:
    return when.astimezone(zone).strftime(PRINTED_TIME_FORMAT)


def _footer(terminal_id: str, printed_at: dt.datetime, zone: dt.tzinfo) -> list[ReceiptBlock]:
    return [FieldLine("终端编号", terminal_id), FieldLine("打印时间", _local(printed_at, zone))]


def progress_slip(
    progress: CaseProgress,
    item: CatalogueItem | None,
    *,
    links_base: str,
    terminal_id: str,
    printed_at: dt.datetime,
    zone: dt.tzinfo,
) -> Receipt:
    """办件进度: the case's status and dates, and the QR to look it up again."""
    blocks: list[ReceiptBlock] = [
        TextLine("办件进度", Align.CENTER, emphasis=True, large=True),
        Rule(),
        FieldLine("办件编号", progress.case_number),
        FieldLine("事项名称", item.title.zh if item is not None else progress.item_id),
        FieldLine("当前状态", STATUS_ZH[progress.status]),
        FieldLine("收件日期", local_date(progress.received_on)),
    ]
    if progress.promised_by is not None:
        blocks.append(FieldLine("承诺办结", local_date(progress.promised_by)))
    blocks += [
        FieldLine("状态更新", _local(progress.updated_at, zone)),
        Rule(),
        QrCode(progress_url(links_base, progress.case_number), "扫码查询办件进度"),
        *_footer(terminal_id, printed_at, zone),
        TextLine("本凭条不含个人信息。", Align.CENTER),
    ]
    return Receipt(tuple(blocks))


def application_receipt(
    *,
    item: CatalogueItem,
    reference: str,
    case_number: str | None,
    receiving_place: str,
    authority: str,
    cross_region: bool,
    received_on: dt.date,
    promised_by: dt.date,
    deferred: tuple[tuple[str, dt.date], ...],
    scanned: tuple[tuple[str, int], ...],
    delivery: Delivery,
    delivery_text: str,
    phone_masked: str,
    links_base: str,
    terminal_id: str,
    printed_at: dt.datetime,
    zone: dt.tzinfo,
) -> Receipt:
    """受理回执: what was lodged, where it goes, by when, what follows, and how to follow it.

    ``case_number`` None: the hub could not be reached; the receipt says the application is
    stored on this terminal and will be sent automatically, under the local ``reference``.
    """
    queued = case_number is None
    blocks: list[ReceiptBlock] = [
        TextLine("申请受理回执", Align.CENTER, emphasis=True, large=True),
        TextLine(item.title.zh, Align.CENTER, emphasis=True),
        Rule(),
    ]
    if queued:
        blocks += [
            FieldLine("登记编号", reference),
            TextLine("网络暂时中断：您的申请已加密保存在本终端，恢复后自动提交，无需再次办理。"
                     "办件编号将在提交后生成，可凭本回执扫码查询。", hang=0),
        ]
    else:
        blocks += [FieldLine("办件编号", case_number or ""), FieldLine("登记编号", reference)]
    blocks += [FieldLine("收件地点", receiving_place), FieldLine("办理机关", authority)]
    if cross_region:
        blocks.append(TextLine("本件为异地通办：本地收件，由属地办理机关审批，结果按约定送达。",
                               hang=0))
    blocks += [
        FieldLine("收件日期", local_date(received_on)),
        FieldLine("承诺办结", f"{local_date(promised_by)}（{item.guide.time_limit_working_days}"
                              "个工作日，法定节假日顺延）"),
        Rule(),
        TextLine("已提交材料", emphasis=True),
        *(TextLine(f"✓ {name}（{pages}页）", hang=2) for name, pages in scanned),
    ]
    if deferred:
        blocks.append(TextLine("容缺后补材料（请在期限内补交，逾期将影响办理）", emphasis=True))
        blocks += [TextLine(f"□ {name}：{local_date(until)}前", hang=2)
                   for name, until in deferred]
    blocks += [
        Rule(),
        FieldLine("送达方式", "免费邮寄" if delivery is Delivery.MAIL else "窗口领取"),
        TextLine(delivery_text, hang=0),
        FieldLine("联系电话", phone_masked),
        Rule(),
        QrCode(progress_url(links_base, case_number or reference), "扫码查询办件进度"),
        *_footer(terminal_id, printed_at, zone),
    ]
    return Receipt(tuple(blocks))


def appointment_slip(
    appointment: Appointment,
    *,
    service: str,
    site: str,
    links_base: str,
    terminal_id: str,
    printed_at: dt.datetime,
    zone: dt.tzinfo,
) -> Receipt:
    """预约凭条: what, where, when, and the QR staff scan at the window."""
    when = (f"{local_date(appointment.day)} "
            f"{appointment.start:%H:%M}-{appointment.end:%H:%M}")
    blocks: list[ReceiptBlock] = [
        TextLine("预约凭条", Align.CENTER, emphasis=True, large=True),
        Rule(),
        FieldLine("预约事项", service),
        FieldLine("办理地点", site),
        FieldLine("预约时间", when),
        FieldLine("预约编号", appointment.code),
        Rule(),
        QrCode(appointment_url(links_base, appointment.code), "到窗口出示此码"),
        TextLine("请按时携带本人身份证件和申请材料到窗口办理；如需取消，请持卡在终端上操作。",
                 hang=0),
        *_footer(terminal_id, printed_at, zone),
    ]
    return Receipt(tuple(blocks))


def report_slip(
    *,
    reference: str,
    hub_reference: str | None,
    problem: str,
    item: str,
    callback_by: dt.datetime | None,
    phone_masked: str,
    terminal_id: str,
    printed_at: dt.datetime,
    zone: dt.tzinfo,
) -> Receipt:
    """办不成事反映凭条: the reference, what was reported, and when someone calls back."""
    blocks: list[ReceiptBlock] = [
        TextLine("“办不成事”反映凭条", Align.CENTER, emphasis=True, large=True),
        Rule(),
        FieldLine("反映编号", hub_reference or reference),
        FieldLine("反映问题", problem),
    ]
    if item:
        blocks.append(FieldLine("涉及事项", item))
    if phone_masked:
        blocks.append(FieldLine("回访电话", phone_masked))
    if callback_by is not None:
        blocks.append(FieldLine("回复时限", f"{_local(callback_by, zone)}前"))
    else:
        blocks.append(TextLine("网络暂时中断：您的反映已保存在本终端，恢复后自动提交。", hang=0))
    blocks += [
        Rule(),
        TextLine("我们将安排专人跟进，帮您把事办成。也可拨打12345政务服务热线。", hang=0),
        *_footer(terminal_id, printed_at, zone),
    ]
    return Receipt(tuple(blocks))

"""Guide: one item's service guide (办事指南), every material listed at once (一次性告知),
printed as a checklist or taken away as a QR code.

Needs no identity: it runs from the errand menu and from browsing the guides without a card.
The heading counts the materials ("共5项"); the UI pages the guide with plain 上一页 / 第1/2页 /
下一页 buttons where the screen cannot show it all, so a resident sees there is more without
knowing what a scroll bar is (only the UI knows how much fits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from flows.catalogue import CatalogueItem, Material
from flows.device_text import first_unusable, printer_line
from flows.event_names import EventType
from flows.operations_events import code, errand_failed, event
from flows.platform import Finish, Flow, FlowResult, common_action, step, tapped
from flows.receipt import guide_receipt
from flows.steps import (
    Effect,
    EffectDone,
    Event,
    Failed,
    Guide,
    GuideSection,
    Message,
    PrintReceipt,
    Progress,
    Text,
    Transition,
    t,
)


class GuideFlow(Flow):
    """Shows the guide of ``arg`` (a CatalogueItem with a guide); back returns to the caller."""

    NAME = "guide"
    INITIAL = "guide"
    STEPS = (
        step("guide", Guide, to=("guide", "printing"), ends=True),
        step("printing", Progress, awaits=PrintReceipt, to=("guide", "print_failed")),
        step("print_failed", Message, to=("printing", "guide")),
    )

    def start(self) -> Transition:
        return self._show()

    def step_guide(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"print_guide": self._print, "back": Finish})

    def step_printing(self, ev: Event) -> FlowResult | None:
        assert isinstance(ev, EffectDone)
        item = self._item()
        if isinstance(ev.outcome, Failed):
            reason = code(ev.outcome.reason)
            failed = errand_failed(item, "print_guide", reason)
            return Transition(self.print_failed(reason, "back"), (failed,))
        printed = event(EventType.RECEIPT_PRINTED, kind="guide", errand_id=item.id)
        return self._show(printed=True, effects=(printed,))

    def step_print_failed(self, ev: Event) -> FlowResult | None:
        return tapped(ev, {"retry": self._print, "back": self._show})

    # --- screens ---------------------------------------------------------------------------------

    def _show(self, *, printed: bool = False, effects: Iterable[Effect] = ()) -> Transition:
        item = self._item()
        guide = item.guide
        total = len(guide.materials)
        sections = [GuideSection(
            self.text("guide", "materials", count=str(total)),
            tuple(_material_line(item, material, n)
                  for n, material in enumerate(guide.materials, start=1)),
        )]
        # The materials come first, where the eye lands; what the service is and how the marks
        # read follow them, or a long summary pushes the list below the fold.
        about: list[Text] = []
        if item.summary is not None:
            about.append(t(item.key("summary")))
        about.append(self.text("guide", "all_at_once", count=str(total)))
        if any(material.deferrable for material in guide.materials):
            about.append(self.text("guide", "deferrable_hint"))
        sections.append(GuideSection(self.text("guide", "about"), tuple(about)))
        sections += self._facts(item)
        lines: list[Text] = []
        if printed:
            lines.append(self.text("guide", "printed"))
        down = first_unusable(frozenset({"printer"}), self.ctx.devices)
        printing = self.action("guide", "print_guide", primary=down is None)
        if down is not None:
            # Say why there is no printing, and that the QR code still takes the guide away.
            printing = dataclasses.replace(printing, enabled=False)
            lines.append(self.text("guide", "no_printing", reason=printer_line(down[1])))
        actions = (printing, common_action("back"))
        screen = Guide(
            self.screen_id("guide"),
            t(item.title_key),
            tuple(sections),
            qr_data=guide.guide_url,
            qr_caption=self.text("guide", "qr_caption"),
            lines=tuple(lines),
            actions=actions,
            # Reading a full guide takes longer than pressing a button.
            idle_timeout_s=2 * self.ctx.idle_timeout_s,
        )
        return Transition(screen, tuple(effects))

    def _facts(self, item: CatalogueItem) -> list[GuideSection]:
        guide = item.guide
        days = guide.time_limit_working_days
        limit = (
            self.text("guide", "time_limit_value", days=str(days))
            if days > 0
            else self.text("guide", "on_the_spot")
        )
        return [
            GuideSection(
                self.text("guide", "conditions"),
                tuple(
                    t(item.key("conditions", str(n)))
                    for n in range(1, len(guide.conditions) + 1)
                ),
            ),
            GuideSection(self.text("guide", "time_limit"), (limit,)),
            GuideSection(self.text("guide", "fees"), (t(item.key("fees")),)),
            GuideSection(
                self.text("guide", "department"),
                (t(item.department.name_key), t(item.department.where_key)),
            ),
            GuideSection(
                self.text("guide", "legal_basis"),
                tuple(
                    t(item.key("legal_basis", str(n)))
                    for n in range(1, len(guide.legal_basis) + 1)
                ),
            ),
        ]

    def _print(self) -> Transition:
        receipt = guide_receipt(
            self._item(),
            terminal_id=self.ctx.terminal_id,
            printed_at=self.ctx.clock.now(),
            zone=self.ctx.zone,
        )
        screen = Progress(self.screen_id("printing"), self.text("printing", "title"))
        return Transition(screen, (PrintReceipt(receipt),))

    def _item(self) -> CatalogueItem:
        if not isinstance(self.arg, CatalogueItem):
            raise TypeError("the guide flow needs a catalogue item")
        return self.arg


def _material_line(item: CatalogueItem, material: Material, number: int) -> Text:
    """"2. 户口簿 原件1份、复印件1份（说明）〔可容缺〕": what, how many, and its marks in words."""
    return t(
        "guide.guide.material",
        index=str(number),
        name=t(item.key("materials", material.id, "name")),
        counts=_counts(material),
        notes=(
            t("guide.guide.notes", notes=t(item.key("materials", material.id, "notes")))
            if material.notes is not None
            else ""
        ),
        marks=_marks(material),
    )


def _counts(material: Material) -> Text:
    if material.originals and material.copies:
        return t("guide.guide.originals_and_copies", originals=str(material.originals),
                 copies=str(material.copies))
    if material.copies:
        return t("guide.guide.copies", copies=str(material.copies))
    return t("guide.guide.originals", originals=str(material.originals))


def _marks(material: Material) -> Text | str:
    if material.deferrable and material.optional:
        return t("guide.guide.deferrable_and_optional")
    if material.deferrable:
        return t("guide.guide.deferrable")
    if material.optional:
        return t("guide.guide.optional")
    return ""

"""Home: the identified resident's menu of errands; each item runs the flow the catalogue names."""

from __future__ import annotations

from flows.catalogue import Catalogue, CatalogueItem
from flows.device_text import device_line, first_unusable
from flows.event_names import EventType
from flows.operations_events import event
from flows.platform import (
    Call,
    EndReason,
    EndSession,
    Flow,
    FlowContext,
    FlowResult,
    common_action,
    step,
)
from flows.steps import Action, Event, Menu, Returned, Tap, Transition, t

# Flows a catalogue item may name: those that take an item and that this menu can call.
ERRAND_FLOWS = frozenset({"proof", "guide", "intake"})
# Services on the menu beside the catalogue's items, each a flow of its own (target service.<flow>).
SERVICE_FLOWS: tuple[str, ...] = ("progress", "appointment", "report")
MENU_GUIDES = 6  # tiles on the errand menu: errands first, then the most used guides
MIN_MENU_GUIDES = 3  # however many errands there are, the guides asked for most stay on it


class HomeFlow(Flow):
    """The errand menu; an errand's flow runs on top of it and comes back here when done."""

    NAME = "home"
    INITIAL = "menu"
    STEPS = (
        step("menu", Menu, calls=(*sorted(ERRAND_FLOWS), *SERVICE_FLOWS, "guides"), ends=True),
    )

    def start(self) -> Transition:
        return self._menu()

    def step_menu(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._menu()
        if not isinstance(ev, Tap):
            return None
        if ev.target == "finish":
            return EndSession(EndReason.DONE)
        if ev.target == "guides":
            return Call("guides")
        service = ev.target.removeprefix("service.")
        if ev.target.startswith("service.") and service in SERVICE_FLOWS:
            return Call(service)
        item = self.ctx.catalogue.item(ev.target.removeprefix("errand."))
        if not ev.target.startswith("errand.") or item is None:
            return None
        flow = item.flow
        if flow == "guide":
            return Call(flow, item, (event(EventType.GUIDE_VIEWED, item_id=item.id),))
        return Call(flow, item)

    def _menu(self) -> Transition:
        options = (
            *(_errand(item, self.ctx) for item in menu_items(self.ctx.catalogue)),
            *(_service(name, self.ctx) for name in SERVICE_FLOWS),
        )
        browse = Action("guides", self.text("menu", "guides"))
        screen = Menu(
            self.screen_id("menu"),
            self.text("menu", "title"),
            options,
            (self.text("menu", "body"),),
            (browse, common_action("finish")),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)


def menu_items(catalogue: Catalogue) -> tuple[CatalogueItem, ...]:
    """What the identified resident's menu offers: every errand done here with the card, then the
    guides residents ask for most; every other guide is one tap away ("browse all guides")."""
    errands = tuple(item for item in catalogue.items if item.flow != "guide")
    guides = tuple(item for item in catalogue.most_used(len(catalogue.items))
                   if item.flow == "guide")
    return errands + guides[: max(MIN_MENU_GUIDES, MENU_GUIDES - len(errands))]


def _service(name: str, ctx: FlowContext) -> Action:
    """A service of the menu (progress, appointments, reports), unavailable while a device it
    needs is down."""
    flow = ctx.flows.get(name)
    down = first_unusable(flow.NEEDS, ctx.devices) if flow is not None else None
    label = t(f"home.menu.service.{name}")
    if down is None:
        return Action(f"service.{name}", label)
    return Action(f"service.{name}", t("home.menu.unavailable", errand=label,
                                       reason=device_line(*down)), enabled=False)


def _errand(item: CatalogueItem, ctx: FlowContext) -> Action:
    """An item on the menu; unavailable, saying why in words, while a device it needs is down."""
    flow = ctx.flows.get(item.flow)
    down = first_unusable(flow.NEEDS, ctx.devices) if flow is not None else None
    if down is None:
        return Action(f"errand.{item.id}", t(item.title_key))
    label = t("home.menu.unavailable", errand=t(item.title_key), reason=device_line(*down))
    return Action(f"errand.{item.id}", label, enabled=False)

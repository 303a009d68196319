"""Guides: browse every service guide without identifying, by theme, by department or the most
used, then open one (the guide flow). Starts from a tap on the attract screen, or from home."""

from __future__ import annotations

from flows.catalogue import CatalogueItem
from flows.event_names import EventType
from flows.operations_events import event
from flows.platform import Call, Finish, Flow, FlowContext, FlowResult, common_action, step
from flows.steps import Action, Event, Menu, Returned, Tap, Text, Transition, t

MOST_USED = 8  # how many items the "most used" list shows


class GuidesFlow(Flow):
    """The guide index; ``back`` on its first screen returns to whatever started it."""

    NAME = "guides"
    INITIAL = "browse"
    STEPS = (
        step("browse", Menu, to=("departments", "items"), ends=True),
        step("departments", Menu, to=("browse", "items")),
        step("items", Menu, to=("browse", "departments"), calls=("guide",)),
    )

    def __init__(self, ctx: FlowContext, arg: object = None) -> None:
        super().__init__(ctx, arg)
        self._listing: tuple[Text, tuple[CatalogueItem, ...]] = (t(""), ())
        self._from_departments = False

    def start(self) -> Transition:
        return self._browse()

    def step_browse(self, ev: Event) -> FlowResult | None:
        if not isinstance(ev, Tap):
            return None
        catalogue = self.ctx.catalogue
        if ev.target == "back":
            return Finish()
        if ev.target == "departments":
            return self._departments()
        self._from_departments = False
        if ev.target == "most_used":
            return self._items(self.text("items", "most_used"), catalogue.most_used(MOST_USED))
        theme = catalogue.theme(ev.target.removeprefix("theme."))
        if not ev.target.startswith("theme.") or theme is None:
            return None
        title = t(theme.title_key)
        return self._items(title, catalogue.items_in_theme(theme.id))

    def step_departments(self, ev: Event) -> FlowResult | None:
        if not isinstance(ev, Tap):
            return None
        if ev.target == "back":
            return self._browse()
        department = self.ctx.catalogue.department(ev.target.removeprefix("department."))
        if not ev.target.startswith("department.") or department is None:
            return None
        self._from_departments = True
        title = t(department.name_key)
        return self._items(title, self.ctx.catalogue.items_of_department(department.id))

    def step_items(self, ev: Event) -> FlowResult | None:
        if isinstance(ev, Returned):
            return self._items(*self._listing)
        if not isinstance(ev, Tap):
            return None
        if ev.target == "back":
            return self._departments() if self._from_departments else self._browse()
        item = self.ctx.catalogue.item(ev.target.removeprefix("item."))
        if not ev.target.startswith("item.") or item is None:
            return None
        return Call("guide", item, (event(EventType.GUIDE_VIEWED, item_id=item.id),))

    # --- screens ---------------------------------------------------------------------------------

    def _browse(self) -> Transition:
        catalogue = self.ctx.catalogue
        options = (
            Action("most_used", self.text("browse", "most_used")),
            *(Action(f"theme.{theme.id}", t(theme.title_key))
              for theme in catalogue.themes if catalogue.items_in_theme(theme.id)),
            Action("departments", self.text("browse", "departments")),
        )
        screen = Menu(
            self.screen_id("browse"),
            self.text("browse", "title"),
            options,
            (self.text("browse", "body"),),
            (common_action("back"),),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

    def _departments(self) -> Transition:
        catalogue = self.ctx.catalogue
        options = tuple(
            Action(f"department.{d.id}", t(d.name_key))
            for d in catalogue.departments
            if catalogue.items_of_department(d.id)
        )
        screen = Menu(
            self.screen_id("departments"),
            self.text("departments", "title"),
            options,
            (),
            (common_action("back"),),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

    def _items(self, title: Text, items: tuple[CatalogueItem, ...]) -> Transition:
        self._listing = (title, items)
        options = tuple(Action(f"item.{item.id}", t(item.title_key)) for item in items)
        screen = Menu(
            self.screen_id("items"),
            title,
            options,
            (self.text("items", "body", count=str(len(options))),),
            (common_action("back"),),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

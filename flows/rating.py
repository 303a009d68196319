"""Rating: the national 好差评 scale after an errand, tied to its case number; ends the session."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.rating import RATING_LEVELS, RatingLevel
from flows import farewells
from flows.event_names import EventType
from flows.operations_events import event
from flows.platform import EndReason, EndSession, Flow, FlowResult, common_action, step
from flows.steps import Action, Effect, Event, Menu, SubmitRating, Tap, Transition, t


@dataclass(frozen=True)
class RatingRequest:
    """What is being rated: the errand and the case number the hub issued (not personal)."""

    errand_id: str
    case_number: str


class RatingFlow(Flow):
    """Offers the five levels and a skip; either way the session ends with thanks."""

    NAME = "rating"
    INITIAL = "choose"
    STEPS = (step("choose", Menu, ends=True),)

    def start(self) -> Transition:
        request = self._request()
        options = tuple(Action(level.action_id, t(level.key)) for level in RATING_LEVELS)
        screen = Menu(
            self.screen_id("choose"),
            self.text("choose", "title"),
            options,
            (
                self.text("choose", "body"),
                self.text("choose", "case_number", case_number=request.case_number),
            ),
            (common_action("skip"),),
            self.ctx.idle_timeout_s,
        )
        return Transition(screen)

    def step_choose(self, ev: Event) -> FlowResult | None:
        if not isinstance(ev, Tap):
            return None
        request = self._request()
        if ev.target == "skip":
            skipped = event(EventType.RATING_SKIPPED, errand_id=request.errand_id)
            return EndSession(EndReason.DONE, farewell=farewells.THANKS, effects=(skipped,))
        level = RatingLevel.for_action(ev.target)
        if level is None:
            return None
        effects: tuple[Effect, ...] = (
            SubmitRating(request.errand_id, request.case_number, level),
            event(EventType.RATING_SUBMITTED, errand_id=request.errand_id, level=level.value),
        )
        return EndSession(EndReason.DONE, farewell=farewells.THANKS, effects=effects)

    def _request(self) -> RatingRequest:
        if not isinstance(self.arg, RatingRequest):
            raise TypeError("the rating flow needs a RatingRequest")
        return self.arg

"""Each effect's worker lane and whether a step waits for its outcome, declared in one place.

The engine reads ``awaited`` to know which outcome a step is waiting for (and to end a session
whose outcome never comes); the terminal's effect runner reads ``lane`` to pick the worker. An
effect type missing here fails at import, so a new effect can never leave a resident on a progress
screen that nothing will ever move on.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from flows.steps import (
    AskHub,
    CapturePage,
    CheckPrinter,
    Effect,
    Lodge,
    Maintain,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    ResolveCode,
    RunErrand,
    SubmitRating,
)


@dataclass(frozen=True)
class EffectSpec:
    """``lane``: the worker that performs it (one per device or service, so two jobs never share
    a wire); ``awaited``: a step waits for its ``EffectDone`` (else it is fire and forget)."""

    lane: str
    awaited: bool


EFFECTS: Mapping[type, EffectSpec] = MappingProxyType(
    {
        ReadCard: EffectSpec("card", awaited=True),
        CheckPrinter: EffectSpec("printer", awaited=True),
        PrintReceipt: EffectSpec("printer", awaited=True),
        RunErrand: EffectSpec("hub", awaited=True),
        AskHub: EffectSpec("hub", awaited=True),
        ResolveCode: EffectSpec("hub", awaited=True),
        # Its own lane: a self-test probes every device in turn and may take seconds.
        Maintain: EffectSpec("maintenance", awaited=True),
        # Its own lane: a slow hub must not hold up the resident's other questions, and the
        # queue writes and fsyncs before it answers.
        Lodge: EffectSpec("queue", awaited=True),
        CapturePage: EffectSpec("camera", awaited=True),
        # Queued in the outbox as the session ends: nobody is left to wait for it.
        SubmitRating: EffectSpec("store", awaited=False),
        RecordEvent: EffectSpec("store", awaited=False),
    }
)

LANES: tuple[str, ...] = tuple(dict.fromkeys(spec.lane for spec in EFFECTS.values()))


def spec_of(effect: Effect) -> EffectSpec:
    return EFFECTS[type(effect)]


def is_awaited(effect: Effect) -> bool:
    return EFFECTS[type(effect)].awaited


_declared = set(EFFECTS)
_union = set(typing.get_args(Effect))
if _declared != _union:
    missing = sorted(t.__name__ for t in _union - _declared)
    extra = sorted(t.__name__ for t in _declared - _union)
    raise TypeError(f"effects without a declared lane: {missing}; declared but no effect: {extra}")

"""The national 好差评 scale: five levels, 5 非常满意 down to 1 非常不满意; the one rating type.

The wording and the number of levels are nationally unified (国办发〔2019〕51号) and may not be
changed locally, so they are fixed here. Flows offer them, the outbox submits them and the
heartbeat counts them ("1".."5" on the wire, ``wire``); the locale files carry the same words
under ``key`` and a test holds them to it.
"""

from __future__ import annotations

import enum


class RatingLevel(enum.IntEnum):
    """One level of the scale; the value is the national number of the level."""

    VERY_SATISFIED = 5
    SATISFIED = 4
    BASICALLY_SATISFIED = 3
    DISSATISFIED = 2
    VERY_DISSATISFIED = 1

    @property
    def official_name(self) -> str:
        """The national wording, shown in zh_CN and printed."""
        return _OFFICIAL_NAMES[self]

    @property
    def key(self) -> str:
        """Translation key of the level's label."""
        return f"rating.level.{self.value}"

    @property
    def action_id(self) -> str:
        """Touch target id on the rating screen."""
        return f"rating.{self.value}"

    @property
    def wire(self) -> str:
        """The level as the heartbeat's counters spell it."""
        return str(self.value)

    @property
    def poor(self) -> bool:
        """不满意 and 非常不满意 count as 差评, which the hub follows up (回访, 整改)."""
        return self <= RatingLevel.DISSATISFIED

    @classmethod
    def for_action(cls, action_id: str) -> RatingLevel | None:
        """The level a rating-screen target stands for, or None if it is not one."""
        return next((level for level in cls if level.action_id == action_id), None)


_OFFICIAL_NAMES = {
    RatingLevel.VERY_SATISFIED: "非常满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
}

# In display order: best first, as the national rating pages show them.
RATING_LEVELS: tuple[RatingLevel, ...] = tuple(sorted(RatingLevel, reverse=True))

"""The national 好差评 scale: five levels, from 5 非常满意 down to 1 非常不满意, as data.

The wording and the number of levels are nationally unified (国办发〔2019〕51号) and may not be
changed locally, so they are fixed here; the locale files carry the same words under ``key`` and
a test holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RatingLevel:
    """One level of the scale; ``official_name`` is the national wording, shown in zh_CN."""

    level: int
    official_name: str

    @property
    def key(self) -> str:
        """Translation key of the level's label."""
        return f"rating.level.{self.level}"

    @property
    def action_id(self) -> str:
        """Touch target id on the rating screen."""
        return f"rating.{self.level}"

    @property
    def poor(self) -> bool:
        """不满意 and 非常不满意 count as 差评, which the hub follows up (回访, 整改)."""
        return self.level <= 2


# In display order: best first, as the national rating pages show them.
RATING_LEVELS: tuple[RatingLevel, ...] = (
    RatingLevel(5, "非常满意"),
    RatingLevel(4, "满意"),
    RatingLevel(3, "基本满意"),
    RatingLevel(2, "不满意"),
    RatingLevel(1, "非常不满意"),
)


def level_for_action(action_id: str) -> RatingLevel | None:
    """The level a rating-screen target stands for, or None if it is not one."""
    return next((level for level in RATING_LEVELS if level.action_id == action_id), None)

"""How a simulated case moves on: received -> accepted -> in review -> approved -> delivered.

A case's timeline is fixed when it is received, from a SHA-256 of its reference (so the same
submission moves at the same pace in every run), and its status at any moment is read off the
timeline against the hub's clock, which tests move forward with ``SimHub.advance``. Nothing runs
in the background: a case advances because the clock did.

The pace, from receipt: accepted (已受理) 5-30 minutes later; in review 1-4 hours after that;
decided 6-48 hours after that (2 hours at most for a 即办 item), but by 17:00 on the promised
day if the review began before then; delivered 12-48 hours after approval. A case with a
deferred material (容缺) goes to ``awaiting_materials`` once accepted and stays there until the
material arrives (``SimHub.supply_materials``); its review starts then. A case staff mark rejected
(``SimHub.reject_case``) ends at ``rejected`` when it is decided, and is never delivered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from flows.hub import CaseStatus

_MINUTE = 60
_HOUR = 60 * _MINUTE
_CLOSING_TIME = dt.time(17, 0)


@dataclass(frozen=True)
class Pace:
    """The delays of one case, in seconds, drawn once when it is received."""

    accept_after_s: int
    review_after_s: int
    decide_after_s: int
    deliver_after_s: int


def pace_for(reference: str, time_limit_working_days: int) -> Pace:
    """The delays of the case lodged under ``reference``; the same reference, the same pace."""
    digest = hashlib.sha256(b"sim-hub/progress/v1\x00" + reference.encode("utf-8")).digest()
    draws = [int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4)]

    def between(draw: int, low: int, high: int) -> int:
        return low + draw % (high - low + 1)

    decide_max = 2 * _HOUR if time_limit_working_days == 0 else 48 * _HOUR
    return Pace(
        accept_after_s=between(draws[0], 5 * _MINUTE, 30 * _MINUTE),
        review_after_s=between(draws[1], 1 * _HOUR, 4 * _HOUR),
        decide_after_s=between(draws[2], min(6 * _HOUR, decide_max // 2), decide_max),
        deliver_after_s=between(draws[3], 12 * _HOUR, 48 * _HOUR),
    )


@dataclass(frozen=True)
class Timeline:
    """What is known of a case to tell its status: when things happened or will happen."""

    received_at: dt.datetime
    promised_by: dt.date
    pace: Pace
    awaits_materials: bool  # a material was deferred
    materials_supplied_at: dt.datetime | None
    rejected: bool

    def status_at(self, now: dt.datetime) -> tuple[CaseStatus, dt.datetime]:
        """The status at ``now`` and since when it has held (``updated_at``)."""
        steps = self._steps()
        status, since = CaseStatus.RECEIVED, self.received_at
        for step_status, at in steps:
            if at is None or at > now:
                break
            status, since = step_status, at
        return status, since

    def _steps(self) -> list[tuple[CaseStatus, dt.datetime | None]]:
        accepted = self.received_at + dt.timedelta(seconds=self.pace.accept_after_s)
        steps: list[tuple[CaseStatus, dt.datetime | None]] = [(CaseStatus.ACCEPTED, accepted)]
        review_from: dt.datetime | None = accepted
        if self.awaits_materials:
            steps.append((CaseStatus.AWAITING_MATERIALS, accepted))
            supplied = self.materials_supplied_at
            review_from = None if supplied is None else max(accepted, supplied)
        if review_from is None:
            return steps  # waits for the material, however long the clock runs
        in_review = review_from + dt.timedelta(seconds=self.pace.review_after_s)
        decided = in_review + dt.timedelta(seconds=self.pace.decide_after_s)
        promise_ends = self._promise_ends()
        if in_review <= promise_ends:
            # Decided by the promised day; a review that starts after it (the material came
            # late) takes its own time.
            decided = min(decided, promise_ends)
        steps.append((CaseStatus.IN_REVIEW, in_review))
        if self.rejected:
            steps.append((CaseStatus.REJECTED, decided))
            return steps
        steps.append((CaseStatus.APPROVED, decided))
        steps.append(
            (CaseStatus.DELIVERED, decided + dt.timedelta(seconds=self.pace.deliver_after_s))
        )
        return steps

    def _promise_ends(self) -> dt.datetime:
        return dt.datetime.combine(self.promised_by, _CLOSING_TIME, self.received_at.tzinfo)

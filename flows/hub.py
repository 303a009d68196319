"""The one narrow port to the government service platform (the hub), and what crosses it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


class HubError(Exception):
    """Base of hub errors; ``reason`` is a stable code shown to nobody but translated on screen."""

    reason = "hub_error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message or self.reason)
        if reason is not None:
            self.reason = reason


class HubUnavailable(HubError):
    """The hub did not answer in time or could not be reached; worth trying again later."""

    reason = "hub_unavailable"


# Why the hub may refuse an errand, each with its own message on screen; an adapter reports any
# other refusal as the generic "refused", so an unknown string never reaches a translation key.
REFUSAL_REASONS = frozenset(
    {"not_enrolled", "suspended", "deceased", "invalid_id", "unknown_errand"}
)
# Answers that trying again will not change: the known refusals, a refusal without a known reason
# (``refused``) and an answer the terminal cannot use (``bad_answer``). The resident is told it is
# final, not "try again later".
FINAL_REFUSALS = REFUSAL_REASONS | {"refused", "bad_answer"}


class ErrandRefused(HubError):
    """The hub answered but will not do this errand for this person.

    ``reason`` is one of ``REFUSAL_REASONS``, or ``refused`` when the hub gave no known reason.
    """

    reason = "refused"


@dataclass(frozen=True)
class DocumentField:
    """One labelled fact on an issued document, e.g. 参保险种 / 城镇职工基本养老保险."""

    label: str
    value: str


@dataclass(frozen=True, repr=False)
class ErrandDocument:
    """What an instant errand returns: a proof to print, checkable at the hub by its code.

    ``fields`` carry no full name or ID number: the hub returns record facts only, and the
    terminal prints the holder's identity masked from the card.
    """

    errand_id: str
    title: str  # as printed, in Chinese: 社会保险参保证明
    case_number: str  # 办件编号 the rating attaches to
    verification_code: str  # printed, and encoded in the QR with ``verify_url``
    verify_url: str
    issued_at: dt.datetime
    fields: tuple[DocumentField, ...]

    def __repr__(self) -> str:
        return f"ErrandDocument({self.errand_id!r}, case={self.case_number!r})"


@dataclass(frozen=True)
class RatingSubmission:
    """A 好差评 rating: level 5 = 非常满意 down to 1 = 非常不满意, tied to the case number."""

    case_number: str
    errand_id: str
    level: int
    terminal_id: str
    rated_at: dt.datetime


class ServiceHub(Protocol):
    """The calls the terminal makes to the hub; each has its own timeout and raises HubError."""

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        """Run an instant errand (一证通办) and return the document to print."""
        ...

    def submit_rating(self, rating: RatingSubmission) -> None:
        """Record a rating; idempotent on (case_number)."""
        ...

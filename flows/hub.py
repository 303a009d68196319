"""The one narrow port to the government service platform (the hub), and what crosses it."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from devices.base import CardHolder


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


# Why the hub may not resolve an e-ID code into a person: it timed out on the phone's screen
# (expired), it was resolved once already (used: a code identifies one session only), or the hub
# never issued it (unknown: a foreign hub's code, made up, or damaged).
CODE_REFUSAL_REASONS = frozenset({"code_expired", "code_used", "code_unknown"})
# Why the hub may refuse an errand, each with its own message on screen; an adapter reports any
# other refusal as the generic "refused", so an unknown string never reaches a translation key.
REFUSAL_REASONS = (
    frozenset(
        {
            "not_enrolled", "suspended", "deceased", "invalid_id", "unknown_errand",
            "slot_taken", "case_unknown", "materials_incomplete", "not_eligible",
            "already_booked",
        }
    )
    | CODE_REFUSAL_REASONS
)  # fmt: skip
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


# --- applications (承诺件), progress, appointments and 办不成事 reports --------------------------
#
# Everything below crosses the same port. Values marked personal (an ID number, a phone number,
# an address, a scanned page) never reach a repr, a log line or an event.


class MaterialOutcome(enum.StrEnum):
    """What became of one material of an application at the terminal."""

    SCANNED = "scanned"  # pages attached
    DEFERRED = "deferred"  # 容缺: the resident committed to bring it by a deadline
    NOT_APPLICABLE = "not_applicable"  # an optional material that does not apply to them


class Delivery(enum.StrEnum):
    MAIL = "mail"  # free mail (免费寄递) to the address the hub has on record
    PICKUP = "pickup"  # collected at a named service centre


@dataclass(frozen=True, repr=False)
class ScannedPage:
    """One page of a material as captured: a JPEG, cropped and compressed. Personal data."""

    material_id: str
    page: int  # 1-based within its material
    jpeg: bytes

    def __repr__(self) -> str:
        return f"ScannedPage({self.material_id!r}, {self.page}, <{len(self.jpeg)} bytes>)"


@dataclass(frozen=True)
class MaterialEntry:
    """One material of an application: its outcome and, when deferred, the promised date."""

    material_id: str
    outcome: MaterialOutcome
    pages: int = 0
    deferred_until: dt.date | None = None


@dataclass(frozen=True, repr=False)
class CaseSubmission:
    """An application as lodged at the terminal (收受分离: the terminal receives, the authority
    decides). ``reference`` is the terminal's own local reference, unique per terminal and the
    hub's idempotency key: a submission sent twice makes one case."""

    reference: str  # e.g. "T-0001-20261207-0007"; printed while the case number is not known
    item_id: str
    id_number: str  # personal
    phone: str  # personal: 11 digits
    delivery: Delivery
    pickup_site: str  # the centre's id when delivery is PICKUP, else ""
    materials: tuple[MaterialEntry, ...]
    pages: tuple[ScannedPage, ...]  # personal
    terminal_id: str
    submitted_at: dt.datetime

    def __repr__(self) -> str:
        return f"CaseSubmission({self.reference!r}, {self.item_id!r}, <redacted>)"


@dataclass(frozen=True)
class CaseAccepted:
    """The hub's answer to a submission: the case number (办件编号) and who decides it."""

    reference: str
    case_number: str
    authority: str  # the processing authority, in Chinese, as printed
    received_at: dt.datetime
    # 异地通办: the authority is in another region than the centre that received the case.
    cross_region: bool = False


class CaseStatus(enum.StrEnum):
    """Where a case stands; what a progress lookup may show to anyone holding the receipt."""

    QUEUED = "queued"  # stored on the terminal, not yet at the hub
    # Stored on the terminal, then refused by the hub (or unreadable): never a case there; the
    # applicant takes the receipt to a window. The terminal's own status, like QUEUED.
    NOT_SUBMITTED = "not_submitted"
    RECEIVED = "received"  # 已收件
    ACCEPTED = "accepted"  # 已受理
    IN_REVIEW = "in_review"  # 审查中
    AWAITING_MATERIALS = "awaiting_materials"  # 待补齐容缺材料
    APPROVED = "approved"  # 已办结（准予）
    REJECTED = "rejected"  # 已办结（不予）
    DELIVERED = "delivered"  # 已送达 / 已领取


@dataclass(frozen=True)
class CaseProgress:
    """A case's status and dates; nothing personal, so a scanned receipt may show it."""

    case_number: str  # or the local reference while only that is known
    item_id: str
    status: CaseStatus
    received_on: dt.date
    updated_at: dt.datetime
    promised_by: dt.date | None = None


@dataclass(frozen=True, repr=False)
class PostalAddress:
    """The delivery address the hub has on record; personal, shown only masked."""

    text: str

    def __repr__(self) -> str:
        return "PostalAddress(<redacted>)"


@dataclass(frozen=True)
class Slot:
    """An appointment period at a centre on a day, with the places still free."""

    slot_id: str
    day: dt.date
    start: dt.time
    end: dt.time
    free: int


@dataclass(frozen=True)
class Appointment:
    """A booked appointment (预约); ``code`` goes into the slip's QR, nothing personal in it."""

    appointment_id: str
    code: str
    service_id: str
    site_id: str
    day: dt.date
    start: dt.time
    end: dt.time


@dataclass(frozen=True, repr=False)
class Report:
    """A 办不成事 report: what could not be done, where, and a phone for the call back."""

    reference: str  # the terminal's idempotency key
    problem: str  # one of the fixed list's ids
    item_id: str  # the item concerned, or ""
    phone: str  # personal, "" when none was given
    terminal_id: str
    screen: str  # the screen it was filed from (no personal data in screen ids)
    filed_at: dt.datetime

    def __repr__(self) -> str:
        return f"Report({self.reference!r}, {self.problem!r}, <redacted>)"


@dataclass(frozen=True)
class ReportFiled:
    """The hub's answer to a report: its reference and when someone will call back."""

    reference: str
    hub_reference: str
    callback_by: dt.datetime


class SlotTaken(ErrandRefused):
    """The chosen slot filled up between choosing and confirming."""

    reason = "slot_taken"


class CaseUnknown(ErrandRefused):
    """No case has that number (a foreign or mistyped code)."""

    reason = "case_unknown"


class ApplicationHub(Protocol):
    """The calls for applications, progress, appointments and reports (same rules as
    ``ServiceHub``: each has its own timeout and raises HubError)."""

    def delivery_address(self, id_number: str) -> PostalAddress | None:
        """The address on record for free mail delivery; None when there is none."""
        ...

    def submit_case(self, submission: CaseSubmission) -> CaseAccepted:
        """Lodge an application with its pages; idempotent on ``submission.reference``."""
        ...

    def case_progress(self, reference: str) -> CaseProgress:
        """A case by its number or by the terminal's local reference; CaseUnknown if none."""
        ...

    def cases_of(self, id_number: str) -> tuple[CaseProgress, ...]:
        """The resident's cases, newest first."""
        ...

    def slots(self, service_id: str, site_id: str, day: dt.date) -> tuple[Slot, ...]:
        """The periods of one day at one centre for one service, with free places."""
        ...

    def book(self, id_number: str, service_id: str, site_id: str, slot_id: str) -> Appointment:
        """Book a slot; SlotTaken when it filled up meanwhile."""
        ...

    def appointments_of(self, id_number: str) -> tuple[Appointment, ...]:
        """The resident's appointments still to come."""
        ...

    def cancel(self, id_number: str, appointment_id: str) -> None:
        """Cancel one of the resident's appointments; idempotent."""
        ...

    def file_report(self, report: Report) -> ReportFiled:
        """File a 办不成事 report; idempotent on ``report.reference``."""
        ...


# --- identity: e-ID codes (电子社保卡 / 一码办) ---------------------------------------------------


class CodeRefused(ErrandRefused):
    """The hub will not resolve this e-ID code; ``reason`` is one of ``CODE_REFUSAL_REASONS``.

    Final for this code: the resident needs a fresh one from their phone, not another try.
    """

    reason = "code_unknown"


class CodeExpired(CodeRefused):
    """The code was valid once, but its short life is over."""

    reason = "code_expired"


class CodeUsed(CodeRefused):
    """The code was resolved before (here or at another terminal); each is good for one use."""

    reason = "code_used"


class CodeUnknown(CodeRefused):
    """The hub never issued this code: another hub's, made up, damaged, or not an e-ID code."""

    reason = "code_unknown"


class IdentityHub(Protocol):
    """Identification through the hub (same rules as ``ServiceHub``: a timeout, HubError)."""

    def resolve_code(self, code: str, terminal_id: str) -> CardHolder:
        """Who an e-ID code (``contracts.codes.E_ID_PATTERN``, as scanned) stands for.

        The code is opaque: only the hub can tell. It resolves once, within its short life:
        CodeUsed, CodeExpired or CodeUnknown otherwise, HubUnavailable when the hub cannot be
        asked. The holder has ``document`` E_CODE, no card number, the ID number's first six
        digits as ``region_code`` and no expiry.
        """
        ...


class Hub(ServiceHub, ApplicationHub, IdentityHub, Protocol):
    """Everything the terminal asks the hub: the reference adapter implements all of it."""

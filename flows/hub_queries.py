"""What a flow may ask the hub in one ``AskHub`` effect, each with the result it is answered with.

One effect for every question keeps the effect list (flows.effect_specs) short; the effect
runner maps each query to its ``ApplicationHub`` call. Queries that carry the resident's ID
number are personal data and never show it in a repr.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flows.hub import CaseSubmission, Report


@dataclass(frozen=True)
class CaseQuery:
    """A case by its number or a terminal's local reference -> ``CaseProgress``."""

    reference: str


@dataclass(frozen=True, repr=False)
class CasesQuery:
    """The resident's cases -> ``tuple[CaseProgress, ...]``, newest first."""

    id_number: str

    def __repr__(self) -> str:
        return "CasesQuery(<redacted>)"


@dataclass(frozen=True, repr=False)
class AddressQuery:
    """The resident's delivery address on record -> ``PostalAddress | None``."""

    id_number: str

    def __repr__(self) -> str:
        return "AddressQuery(<redacted>)"


@dataclass(frozen=True)
class SlotsQuery:
    """Appointment periods of one day -> ``tuple[Slot, ...]``."""

    service_id: str
    site_id: str
    day: dt.date


@dataclass(frozen=True, repr=False)
class BookSlot:
    """Book a period -> ``Appointment``; fails ``slot_taken`` when it filled up meanwhile."""

    id_number: str
    service_id: str
    site_id: str
    slot_id: str

    def __repr__(self) -> str:
        return f"BookSlot({self.service_id!r}, {self.slot_id!r}, <redacted>)"


@dataclass(frozen=True, repr=False)
class AppointmentsQuery:
    """The resident's appointments still to come -> ``tuple[Appointment, ...]``."""

    id_number: str

    def __repr__(self) -> str:
        return "AppointmentsQuery(<redacted>)"


@dataclass(frozen=True, repr=False)
class CancelAppointment:
    """Cancel one of the resident's appointments -> ``None``."""

    id_number: str
    appointment_id: str

    def __repr__(self) -> str:
        return f"CancelAppointment({self.appointment_id!r}, <redacted>)"


HubQuery = (
    CaseQuery | CasesQuery | AddressQuery | SlotsQuery | BookSlot | AppointmentsQuery
    | CancelAppointment
)

# What ``Lodge`` hands to the terminal's submission queue.
Lodgeable = CaseSubmission | Report

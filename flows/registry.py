"""The flow registry: every flow by name, checked once that every call names a known flow."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flows.appointment import AppointmentFlow
from flows.guide import GuideFlow
from flows.guides import GuidesFlow
from flows.home import ERRAND_FLOWS, HomeFlow
from flows.identify import IdentifyFlow
from flows.intake import IntakeFlow
from flows.maintenance import MaintenanceFlow
from flows.platform import Flow, FlowError
from flows.progress import ProgressFlow
from flows.proof import ProofFlow
from flows.rating import RatingFlow
from flows.report import ReportFlow
from flows.slip import SlipFlow

FLOWS: Mapping[str, type[Flow]] = MappingProxyType(
    {
        flow.NAME: flow
        for flow in (
            IdentifyFlow, HomeFlow, ProofFlow, GuideFlow, GuidesFlow, RatingFlow, SlipFlow,
            ProgressFlow, ReportFlow, AppointmentFlow, IntakeFlow, MaintenanceFlow,
        )
    }
)


def _check() -> None:
    for flow in FLOWS.values():
        for spec in flow.SPEC.values():
            unknown = spec.calls - set(FLOWS)
            if unknown:
                raise FlowError(f"{flow.NAME}.{spec.id} calls unknown flows {sorted(unknown)}")
    if not set(FLOWS) >= ERRAND_FLOWS:
        raise FlowError(f"errand flows not registered: {sorted(ERRAND_FLOWS - set(FLOWS))}")


_check()

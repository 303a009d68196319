"""Hypothesis profiles for the fuzz suite, and the count of examples each property really ran.

``make test`` runs these properties under the ``bounded`` profile (a few hundred examples each,
so the whole directory stays a small part of a test run); ``make fuzz`` sets ``KIOSK_FUZZ=1`` and
runs them under ``fuzz``: 100,000 examples per property (``KIOSK_FUZZ_EXAMPLES`` to change it),
no deadline, a fresh random seed. Both
share one example database under ``.hypothesis/`` at the repository root, so a failure ``make
fuzz`` found is replayed first by every later ``make test`` until it is fixed.

Properties use a plain ``@given`` and leave ``max_examples`` to the profile.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.statistics import collector

FUZZ_ENV = "KIOSK_FUZZ"
BOUNDED_EXAMPLES = 200
# At least 100,000 per property; KIOSK_FUZZ_EXAMPLES asks for more (or, to try a change, fewer).
FUZZ_EXAMPLES = int(os.environ.get("KIOSK_FUZZ_EXAMPLES", "100000"))
_REPO = Path(__file__).resolve().parents[2]
# The path hypothesis itself would pick when run from the repository root, made independent of
# the directory pytest happens to be started from.
_DATABASE = DirectoryBasedExampleDatabase(_REPO / ".hypothesis" / "examples")

settings.register_profile(
    "bounded",
    max_examples=BOUNDED_EXAMPLES,
    # Generous: a loaded two-core machine must not fail a test run on timing, but a parser that
    # turns quadratic (or a regex that backtracks) on a few kilobytes still trips it.
    deadline=dt.timedelta(seconds=2),
    database=_DATABASE,
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=False,
    database=_DATABASE,
    print_blob=True,
    # Slow examples are expected among 100,000 and say nothing about correctness.
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZING = os.environ.get(FUZZ_ENV, "") not in ("", "0")
settings.load_profile("fuzz" if FUZZING else "bounded")


# --- counts -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PropertyRun:
    """What hypothesis really ran for one property (from its run statistics)."""

    nodeid: str
    valid: int  # ran to the end: passed, or raised only what the property allows
    invalid: int  # rejected by assume() or a filter, or ran out of generated data
    failing: int  # raised something the property does not allow (shrinking reruns these)
    seconds: float
    stopped_because: str

    @property
    def ran(self) -> int:
        return self.valid + self.invalid + self.failing


_RUNS = pytest.StashKey[list[PropertyRun]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUNS] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.fuzz)


def _property_run(nodeid: str, stats: dict[str, Any]) -> PropertyRun:
    # The statistics dict is what hypothesis hands its own pytest plugin for
    # --hypothesis-show-statistics: one list of test cases per phase (reuse, generate, shrink,
    # explain), each with its status. Counting those is counting calls that really happened.
    statuses: dict[str, int] = {}
    seconds = 0.0
    for key, phase in stats.items():
        if not key.endswith("-phase"):
            continue
        seconds += float(phase.get("duration-seconds", 0.0))
        for case in phase.get("test-cases", ()):
            statuses[case["status"]] = statuses.get(case["status"], 0) + 1
    return PropertyRun(
        nodeid=nodeid,
        valid=statuses.get("valid", 0),
        invalid=statuses.get("invalid", 0) + statuses.get("overrun", 0),
        failing=statuses.get("interesting", 0),
        seconds=seconds,
        stopped_because=str(stats.get("stopped-because", "")),
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # trylast: entered inside hypothesis' own wrapper, so our collector is the innermost one; it
    # passes the statistics on, and --hypothesis-show-statistics keeps working.
    passed_on = cast(Callable[[dict[str, Any]], None] | None, collector.value)

    def note(stats: dict[str, Any]) -> None:
        item.config.stash[_RUNS].append(_property_run(item.nodeid, stats))
        if passed_on is not None:
            passed_on(stats)

    with collector.with_value(note):  # type: ignore[arg-type]
        return (yield)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    runs = terminalreporter.config.stash.get(_RUNS, [])
    if not runs:
        return
    total = sum(run.ran for run in runs)
    seconds = sum(run.seconds for run in runs)
    if not FUZZING:
        terminalreporter.write_line(
            f"fuzz (bounded profile): {len(runs)} properties, {total:,} examples, {seconds:.1f} s"
        )
        return
    terminalreporter.section(f"fuzz: examples per property (profile fuzz, {FUZZ_EXAMPLES:,} max)")
    name_width = max(len(_short(run.nodeid)) for run in runs)
    header = (
        f"{'property':<{name_width}}  {'ran':>9}  {'valid':>9}  {'invalid':>8}  {'failing':>7}"
        f"  {'seconds':>8}  stopped because"
    )
    terminalreporter.write_line(header)
    terminalreporter.write_line("-" * len(header))
    for run in runs:
        terminalreporter.write_line(
            f"{_short(run.nodeid):<{name_width}}  {run.ran:>9,}  {run.valid:>9,}  "
            f"{run.invalid:>8,}  {run.failing:>7,}  {run.seconds:>8.1f}  {run.stopped_because}"
        )
    terminalreporter.write_line("-" * len(header))
    terminalreporter.write_line(
        f"{'total (' + str(len(runs)) + ' properties)':<{name_width}}  {total:>9,}  "
        f"{sum(r.valid for r in runs):>9,}  {sum(r.invalid for r in runs):>8,}  "
        f"{sum(r.failing for r in runs):>7,}  {seconds:>8.1f}"
    )


def _short(nodeid: str) -> str:
    return nodeid.removeprefix("tests/fuzz/")

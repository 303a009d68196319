"""Start-up: process start until the attract screen is ready (READY=1), against a bare Kivy window.

    .venv/bin/python -m bench.startup [--runs 5] [--size 1920x1080]

Both sides are started the same way on the same Xvfb display, each as ``python -m ...`` with
NOTIFY_SOCKET pointing at our datagram socket: the terminal exactly as the simulator starts it
(``python -m terminal --config ...``, virtual devices, automation API on), the baseline as
``python -m bench.bare_kivy`` (Kivy configured as the terminal configures it, READY=1 after the
first frame). The clock runs from just before the fork until READY=1 arrives. Runs alternate
(bare first, then terminal first), after one discarded warm-up of each, so drift on a shared
machine hits both sides alike; medians are reported. The terminal keeps one state directory
across its runs, as a kiosk does across boots.

The repository's packages are byte-compiled first, as a release is at install time (deploy/IMAGE.md:
the kiosk runs with PYTHONDONTWRITEBYTECODE=1 from read-only slots); Kivy's are, like any
installed package. Without it, a checkout run with PYTHONDONTWRITEBYTECODE=1 compiled some 70
modules from source on every start (~60 ms), a cost no kiosk pays and the baseline never had.

The terminal's own log lines split its time into phases: until Kivy's banner (Python and the
terminal's imports before Kivy), until "terminal ... starting" (Kivy, the window, the UI), and
until READY=1 (first screen built, laid out and settled).
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    DEFAULT_SIZE,
    MB,
    REPO,
    BenchEnv,
    BenchError,
    Child,
    Verdict,
    median,
    stop_on_sigterm,
)
from simulator.display import parse_size

BUDGET_RATIO = 2.5
# What the terminal imports from this repository (everything else is an installed package).
PACKAGES = ("contracts", "devices", "flows", "terminal")
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PHASES = (
    ("before Kivy (Python, terminal imports)", "INFO kivy: Kivy: v"),
    ("Kivy, window, UI build", "INFO terminal.app: terminal "),
    ("first screen until settled", "INFO terminal.app: first screen ready: attract"),
)


@dataclass
class StartupFigures:
    bare_s: list[float] = field(default_factory=list)
    terminal_s: list[float] = field(default_factory=list)
    bare_rss_kib: list[int] = field(default_factory=list)
    terminal_rss_kib: list[int] = field(default_factory=list)
    phases_s: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return median(self.terminal_s) / median(self.bare_s)


def _log_phases(child: Child, started_wall: float) -> dict[str, float]:
    """Seconds spent in each phase, from the child's own log (wall clock, ms resolution)."""
    lines = child.log_path.read_text(errors="replace").splitlines()
    phases: dict[str, float] = {}
    previous = started_wall
    for name, marker in PHASES:
        line = next((each for each in lines if marker in each), None)
        match = _STAMP.match(line) if line is not None else None
        if match is None:
            break  # the log changed shape: report what could be found
        at = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        phases[name] = at - previous
        previous = at
    return phases


def _one_bare(env: BenchEnv) -> tuple[float, int]:
    child = env.spawn_bare_kivy()
    try:
        seconds = env.wait_ready(child)
        return seconds, child.rss_kib()
    finally:
        env.stop(child)


def _one_terminal(env: BenchEnv, state_dir: Path) -> tuple[float, int, dict[str, float]]:
    child, _ = env.spawn_terminal(state_dir)
    started_wall = time.time() - (time.monotonic() - child.started)
    try:
        seconds = env.wait_ready(child)
        rss = child.rss_kib()
    finally:
        env.stop(child)
    return seconds, rss, _log_phases(child, started_wall)


def byte_compile() -> None:
    """Byte-compile the terminal's packages as an installed release is; up-to-date files are
    left alone, so only the first run after a change pays for it."""
    for package in PACKAGES:
        if not compileall.compile_dir(REPO / package, quiet=1):
            raise BenchError(f"{package}: byte-compiling failed")


def measure(env: BenchEnv, runs: int, warmups: int = 1) -> StartupFigures:
    byte_compile()
    figures = StartupFigures()
    state_dir = env.workdir / "startup-terminal"
    for index in range(warmups + runs):
        keep = index >= warmups
        # Alternate which side goes first, so a slow spell of the machine hits both alike.
        for side in ("bare", "terminal") if index % 2 == 0 else ("terminal", "bare"):
            if side == "bare":
                seconds, rss = _one_bare(env)
                if keep:
                    figures.bare_s.append(seconds)
                    figures.bare_rss_kib.append(rss)
            else:
                seconds, rss, phases = _one_terminal(env, state_dir)
                if keep:
                    figures.terminal_s.append(seconds)
                    figures.terminal_rss_kib.append(rss)
                    for name, value in phases.items():
                        figures.phases_s.setdefault(name, []).append(value)
    return figures


def report(figures: StartupFigures) -> Verdict:
    bare, term = median(figures.bare_s), median(figures.terminal_s)
    n = len(figures.terminal_s)
    print(f"start-up, process start -> READY=1 (median of {n} interleaved runs each, "
          f"after 1 warm-up each; terminal byte-compiled as installed)")
    print(f"  bare Kivy window   {bare * 1000:8.0f} ms   runs: "
          + " ".join(f"{s * 1000:.0f}" for s in figures.bare_s))
    print(f"  terminal           {term * 1000:8.0f} ms   runs: "
          + " ".join(f"{s * 1000:.0f}" for s in figures.terminal_s))
    ratio = figures.ratio
    passed = ratio <= BUDGET_RATIO
    print(f"  ratio terminal / bare Kivy  {ratio:5.2f}   budget <= {BUDGET_RATIO}  "
          f"{'PASS' if passed else 'FAIL'}")
    if figures.phases_s:
        print("  where the terminal's time goes (medians, from its log, ms resolution):")
        for name, values in figures.phases_s.items():
            print(f"    {name:<42} {median(values) * 1000:6.0f} ms")
    print(f"  RSS at READY: bare Kivy {median(figures.bare_rss_kib) * 1024 / MB:.0f} MB, "
          f"terminal {median(figures.terminal_rss_kib) * 1024 / MB:.0f} MB")
    return Verdict(
        name="start-up -> attract ready",
        figure=f"{term * 1000:.0f} ms = {ratio:.2f} x bare",
        baseline=f"bare Kivy {bare * 1000:.0f} ms",
        budget=f"<= {BUDGET_RATIO} x bare Kivy",
        passed=passed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per side (>= 5)")
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="WxH")
    args = parser.parse_args()
    stop_on_sigterm()
    with BenchEnv(size=args.size) as env:
        verdict = report(measure(env, args.runs))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Tap to next screen: a touch released on a target until the next screen's first frame, against
a bare Kivy button's release-to-frame measured in the same run.

    .venv/bin/python -m bench.tap [--taps 20] [--size 1920x1080]

Both sides get real touches through the same injection path (``terminal.ui.touch``: press, a
50 ms hold, release) and both stamp "first frame" the same way: the first ``on_flip`` after the
new screen's widgets went in. The baseline (bench.bare_button) swaps one button for another, the
least a touch UI can do; the terminal (bench.hooked_terminal, unchanged but for datagrams) goes
back and forth between the attract screen and the guide index, a whole step of the session
engine and a whole screen build each way. Medians of ``--taps`` each, after warm-ups.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from bench.harness import (
    DEFAULT_SIZE,
    BenchEnv,
    BenchError,
    Notification,
    Verdict,
    median,
    screen_event,
    stop_on_sigterm,
)
from simulator.automation_client import AutomationClient
from simulator.display import parse_size

BUDGET_ADDED_MS = 60.0
WARMUPS = 2
FRAME_TIMEOUT_S = 10.0
# Each screen and the target on it that leads to the other one.
ROUTE = {"attract": ("guides", "guides.browse"), "guides.browse": ("back", "attract")}


@dataclass
class TapFigures:
    baseline_ms: list[float] = field(default_factory=list)
    terminal_ms: list[float] = field(default_factory=list)

    @property
    def added_ms(self) -> float:
        return median(self.terminal_ms) - median(self.baseline_ms)


def _baseline(env: BenchEnv, taps: int) -> list[float]:
    width, height = env.size
    child = env.spawn_child(
        "bare Kivy button",
        ["-m", "bench.bare_button", "--width", str(width), "--height", str(height),
         "--taps", str(taps), "--home", str(env.workdir / "bare-button-home")],
    )
    try:
        note = env.notify.wait_for(
            lambda n: n.fields.get("BENCH_EVENT") == "tap_baseline", 120.0, child,
            "the bare button's figures",
        )
    finally:
        env.stop(child)
    return [float(v) for v in note.fields["BENCH_VALUES"].split(",")]


def _touch(api: AutomationClient, target: str) -> None:
    screen = api.screen()
    [box] = [t["bounds"] for t in screen["targets"] if t["id"] == target]
    if box is None:
        raise BenchError(f"target {target} is not visible on {screen['screen']}")
    x, y, w, h = box
    status, answer = api.call("POST", "/touch", {"x": x + w / 2, "y": y + h / 2})
    if status != 200:
        raise BenchError(f"/touch answered {status}: {answer[:200]!r}")


def _terminal(env: BenchEnv, taps: int) -> list[float]:
    child, api = env.spawn_terminal(env.workdir / "tap-terminal", hooked=True)
    delays: list[float] = []
    try:
        env.wait_ready(child)
        api.wait_for_screen("attract", 15)
        for index in range(WARMUPS + taps):
            shown = api.screen()["screen"]
            target, next_screen = ROUTE[shown]
            env.notify.drain()
            notes: list[Notification] = []
            _touch(api, target)
            frame = env.notify.wait_for(
                screen_event("frame", next_screen),
                FRAME_TIMEOUT_S, child, f"the first frame of {next_screen}", notes,
            )
            released = [n for n in notes if n.fields.get("BENCH_EVENT") == "released"]
            if not released:
                raise BenchError("the touch's release was not reported")
            if index >= WARMUPS:
                delays.append((frame.stamp() - released[-1].stamp()) * 1000)
            api.wait_for_screen(next_screen, 15)
            time.sleep(0.3)  # as the baseline: a resident reads before the next touch
    finally:
        env.stop(child)
    return delays


def measure(env: BenchEnv, taps: int = 20) -> TapFigures:
    return TapFigures(baseline_ms=_baseline(env, taps), terminal_ms=_terminal(env, taps))


def report(figures: TapFigures) -> Verdict:
    added = figures.added_ms
    passed = added <= BUDGET_ADDED_MS
    baseline, terminal = median(figures.baseline_ms), median(figures.terminal_ms)
    print(f"touch released -> next screen's first frame (median of {len(figures.terminal_ms)} "
          "taps each side, real injected touches, frames seen by hook)")
    print(f"  bare Kivy button     {baseline:7.1f} ms")
    print(f"  terminal             {terminal:7.1f} ms   (attract <-> guide index; per tap: "
          + " ".join(f"{v:.0f}" for v in figures.terminal_ms) + ")")
    print(f"  terminal adds        {added:7.1f} ms   budget <= {BUDGET_ADDED_MS:.0f} ms  "
          f"{'PASS' if passed else 'FAIL'}")
    return Verdict(
        name="tap -> next screen",
        figure=f"+{added:.0f} ms",
        budget=f"<= +{BUDGET_ADDED_MS:.0f} ms",
        passed=passed,
        baseline=f"bare button {baseline:.0f} ms",
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tap", description=__doc__)
    parser.add_argument("--taps", type=int, default=20)
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE)
    args = parser.parse_args()
    stop_on_sigterm()
    with BenchEnv(size=args.size) as env:
        report(measure(env, args.taps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Memory: the terminal's resident set after one complete errand, next to a bare Kivy window's.

    .venv/bin/python -m bench.memory [--errands 1] [--size 1920x1080]

A fresh terminal (``python -m terminal``, new state directory) is started and, once READY=1 says
the attract screen is up, driven through the automation API through one whole errand: insert the
test card, continue, the social insurance enrollment proof, confirm, wait for the receipt and the
take-card screen, pull the card, rate it 5, wait for the attract screen. VmRSS is read from
/proc/<pid>/status the moment attract is back and again a second later (the budget figure: the
terminal as it then stands idle, once it has collected the session's screens and trimmed its
heap), and also at attract before the errand, with VmHWM (the peak) and RssAnon (the process's
own heap, without shared library pages). The baseline is
a bare Kivy window (bench.bare_kivy, same size, same display) read the same way in the same run,
for context: under Xvfb, Mesa's software renderer (llvmpipe) alone accounts for much of both.
``--errands N`` repeats the errand and prints VmRSS after each, to tell a one-off cache from a
leak; the budget is always judged after the first.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from bench.card_read import bench_card
from bench.harness import (
    DEFAULT_SIZE,
    MB,
    BenchEnv,
    BenchError,
    Child,
    Verdict,
    proc_status_kib,
    stop_on_sigterm,
)
from simulator.automation_client import AutomationClient
from simulator.display import parse_size

BUDGET_MB = 200.0
ERRAND = "ssc_enrollment_proof"
# After READY=1, and after the errand, a moment for the window to reach a steady state before RSS
# is read: the terminal tidies its memory within 0.2 s of attract coming back (terminal.memory).
SETTLE_S = 1.0


@dataclass(frozen=True)
class Rss:
    rss_kib: int
    anon_kib: int
    peak_kib: int

    @classmethod
    def of(cls, child: Child) -> Rss:
        return cls(child.rss_kib(), proc_status_kib(child.pid, "RssAnon"), child.peak_rss_kib())


@dataclass(frozen=True)
class MemoryFigures:
    bare: Rss
    terminal_attract: Rss
    terminal_back: Rss  # the moment attract is back after the first errand
    terminal_after: Rss  # a moment later, idle: the budget figure
    receipts: int
    later: tuple[Rss, ...] = ()  # after each further errand (--errands)
    no_renderer: Rss | None = None  # the same errand with Kivy's mock GL backend, for context


def _mb(kib: int) -> float:
    return kib * 1024 / MB


def _errand(env: BenchEnv, api: AutomationClient) -> None:
    """One whole errand, card in to attract screen, as a resident does it."""
    slot = env.card_slot
    slot.insert(bench_card())
    api.wait_for_screen("identify.identity", 15)
    api.tap("continue")
    api.wait_for_screen("home.menu", 15)
    api.tap(f"errand.{ERRAND}")
    api.wait_for_screen("proof.confirm", 15)
    api.tap("confirm")
    api.wait_for_screen("proof.done", 30)
    slot.remove()
    api.wait_for_screen("rating.choose", 15)
    api.tap("rating.5")
    api.wait_for_screen("attract", 30)  # via the thanks screen and its countdown


def measure(env: BenchEnv, errands: int = 1) -> MemoryFigures:
    bare = env.spawn_bare_kivy()
    try:
        env.wait_ready(bare)
        time.sleep(SETTLE_S)
        bare_rss = Rss.of(bare)
    finally:
        env.stop(bare)

    printer = env.rig.printer
    receipts_before = len(printer.receipts()) if printer is not None else 0
    slot = env.card_slot
    child, api = env.spawn_terminal(env.workdir / "memory-terminal")
    try:
        env.wait_ready(child)
        time.sleep(SETTLE_S)
        at_attract = Rss.of(child)
        _errand(env, api)
        back = Rss.of(child)
        time.sleep(SETTLE_S)
        after = Rss.of(child)
        later = []
        for _ in range(errands - 1):
            _errand(env, api)
            time.sleep(SETTLE_S)
            later.append(Rss.of(child))
    finally:
        env.stop(child)
        if slot.card is not None:
            slot.remove()
    # The same errand once more with Kivy's mock GL backend (nothing is drawn): what remains is the
    # terminal's own memory, without the software renderer that only this test machine uses.
    child, api = env.spawn_terminal(env.workdir / "memory-terminal-mock-gl",
                                    extra_env={"KIVY_GL_BACKEND": "mock"})
    try:
        env.wait_ready(child)
        _errand(env, api)
        time.sleep(SETTLE_S)
        no_renderer = Rss.of(child)
    finally:
        env.stop(child)
        if slot.card is not None:
            slot.remove()
    receipts = (len(printer.receipts()) if printer is not None else 0) - receipts_before
    if printer is not None and receipts < errands + 1:
        raise BenchError(f"{errands + 1} errand(s) printed {receipts} receipt(s); "
                         "not all completed")
    return MemoryFigures(bare_rss, at_attract, back, after, receipts, tuple(later), no_renderer)


def report(figures: MemoryFigures) -> Verdict:
    after, attract, bare = figures.terminal_after, figures.terminal_attract, figures.bare
    passed = _mb(after.rss_kib) <= BUDGET_MB
    print("resident set size (MB = 10^6 bytes; RssAnon = own memory without mapped files)")
    print(f"  bare Kivy window                VmRSS {_mb(bare.rss_kib):6.1f} MB   "
          f"RssAnon {_mb(bare.anon_kib):6.1f} MB")
    print(f"  terminal at attract, fresh      VmRSS {_mb(attract.rss_kib):6.1f} MB   "
          f"RssAnon {_mb(attract.anon_kib):6.1f} MB")
    print(f"  terminal as attract comes back  VmRSS {_mb(figures.terminal_back.rss_kib):6.1f} MB   "
          f"RssAnon {_mb(figures.terminal_back.anon_kib):6.1f} MB   (before it tidies up)")
    print(f"  terminal after one errand, idle VmRSS {_mb(after.rss_kib):6.1f} MB   "
          f"RssAnon {_mb(after.anon_kib):6.1f} MB   peak VmHWM {_mb(after.peak_kib):6.1f} MB   "
          f"budget <= {BUDGET_MB:.0f} MB  {'PASS' if passed else 'FAIL'}")
    print(f"  terminal - bare Kivy: {_mb(after.rss_kib - bare.rss_kib):+.1f} MB VmRSS, "
          f"{_mb(after.anon_kib - bare.anon_kib):+.1f} MB RssAnon; the errand itself: "
          f"{_mb(after.rss_kib - attract.rss_kib):+.1f} MB VmRSS "
          f"({figures.receipts} receipt(s) printed in all)")
    if figures.no_renderer is not None:
        print(f"  for context, the same errand with no renderer (KIVY_GL_BACKEND=mock): VmRSS "
              f"{_mb(figures.no_renderer.rss_kib):.1f} MB, RssAnon "
              f"{_mb(figures.no_renderer.anon_kib):.1f} MB: the rest is Mesa's llvmpipe")
    if figures.later:
        print("  VmRSS after each further errand: "
              + " ".join(f"{_mb(rss.rss_kib):.1f}" for rss in figures.later) + " MB")
    return Verdict(
        name="RSS after one errand",
        figure=f"{_mb(after.rss_kib):.0f} MB (+{_mb(after.rss_kib - bare.rss_kib):.0f} vs bare)",
        baseline=f"bare Kivy {_mb(bare.rss_kib):.0f} MB",
        budget=f"<= {BUDGET_MB:.0f} MB",
        passed=passed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errands", type=int, default=1, help="errands in a row (>= 1)")
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="WxH")
    args = parser.parse_args()
    if args.errands < 1:
        parser.error("--errands must be at least 1")
    stop_on_sigterm()
    with BenchEnv(size=args.size) as env:
        verdict = report(measure(env, args.errands))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Card to identity screen: card inserted until the identity screen settled, against raw pyscard.

    .venv/bin/python -m bench.identity [--cycles 9] [--size 1920x1080]

The terminal runs as ``python -m bench.hooked_terminal``: the unchanged terminal plus a datagram
stamped with CLOCK_MONOTONIC each time a screen is shown and each time it has settled (laid out,
stopped moving: when GET /screen would answer with it). No polling, so nothing is added to the
figure by the measuring itself and the terminal's UI loop is not loaded by requests.

Baseline: raw pyscard on the same pcscd, same reader, same insertions. pcscd sees a vpcd card on
its own poll, every 400 ms, so one insertion waits 0-400 ms before anyone can see it; comparing
separate insertions would bury a 150 ms budget in that noise. So each insertion is measured on
both sides: a bare SCardGetStatusChange loop (bench.card_read's RawWatcher) notes when pcscd
reports the card, which is the moment the terminal's watcher is woken too, and once the terminal
shows the identity screen (it no longer touches the card) the same records are read with bare
pyscard calls (bench.card_read's raw_read). Baseline = insert -> seen + raw read; terminal added =
insert -> identity settled minus that, per insertion; the budget is on its median. Between cycles
the card is pulled, the terminal's "card removed" notice is dismissed with its home button, and
the attract screen is awaited; a seeded random pause then puts the next insertion elsewhere in
pcscd's poll cycle, as a hand would. The first cycle is a warm-up (first identity screen, first
read) and is reported on its own.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field

from smartcard import scard

from bench.card_read import RawWatcher, bench_card, raw_read
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
from simulator.display import parse_size
from simulator.pcsc import wait_card

BUDGET_ADDED_MS = 150.0
SCREEN_TIMEOUT_S = 15.0


@dataclass
class Cycle:
    """One insertion, every stamp in seconds of ``time.monotonic()``."""

    inserted: float
    seen: float  # pcscd reported the card (bare SCardGetStatusChange)
    read_s: float  # raw pyscard read of the same records
    reading_shown: float | None  # the terminal built its "reading card" screen
    identity_shown: float
    identity_settled: float

    @property
    def baseline_ms(self) -> float:
        return (self.seen - self.inserted + self.read_s) * 1000

    @property
    def terminal_ms(self) -> float:
        return (self.identity_settled - self.inserted) * 1000

    @property
    def added_ms(self) -> float:
        return self.terminal_ms - self.baseline_ms

    @property
    def added_until_shown_ms(self) -> float:
        return (self.identity_shown - self.inserted) * 1000 - self.baseline_ms


@dataclass
class IdentityFigures:
    cycles: list[Cycle] = field(default_factory=list)
    warmup: list[Cycle] = field(default_factory=list)

    def median_of(self, pick: str) -> float:
        return median([float(getattr(cycle, pick)) for cycle in self.cycles])


def _stamp(notes: list[Notification], event: str, screen: str) -> float | None:
    match = screen_event(event, screen)
    return next((note.stamp() for note in notes if match(note)), None)


def measure(env: BenchEnv, cycles: int, warmups: int = 1) -> IdentityFigures:
    figures = IdentityFigures()
    slot, reader = env.card_slot, env.reader
    child, api = env.spawn_terminal(env.workdir / "identity-terminal", hooked=True)
    watcher: RawWatcher | None = None
    context: int | None = None
    try:
        env.wait_ready(child)
        watcher = RawWatcher(reader, clock=time.monotonic)
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise BenchError(f"SCardEstablishContext failed {hresult:#x}")
        if not watcher.ready.wait(3.0):
            raise BenchError("the raw watcher got no answer from pcscd")
        phase = random.Random(20240521)
        for index in range(warmups + cycles):
            time.sleep(phase.uniform(0.0, 0.4))
            env.notify.drain()
            notes: list[Notification] = []
            seen_before = len(watcher.seen)
            inserted = time.monotonic()
            slot.insert(bench_card())
            settled = env.notify.wait_for(
                screen_event("settled", "identify.identity"), SCREEN_TIMEOUT_S, child,
                "identity screen", notes,
            )
            try:
                seen = watcher.wait_seen(seen_before + 1, 3.0)
            except RuntimeError as e:
                raise BenchError(str(e)) from None
            started = time.monotonic()
            raw_read(context, reader)
            read_s = time.monotonic() - started
            identity_shown = _stamp(notes, "shown", "identify.identity")
            cycle = Cycle(
                inserted=inserted,
                seen=seen,
                read_s=read_s,
                reading_shown=_stamp(notes, "shown", "identify.reading_card"),
                identity_shown=identity_shown if identity_shown is not None else settled.stamp(),
                identity_settled=settled.stamp(),
            )
            (figures.cycles if index >= warmups else figures.warmup).append(cycle)
            # Back to attract: pull the card, dismiss the notice as a resident would.
            slot.remove()
            env.notify.wait_for(screen_event("settled", "notice.card_removed"),
                                SCREEN_TIMEOUT_S, child, "card-removed notice")
            api.tap("continue")
            env.notify.wait_for(screen_event("settled", "attract"), SCREEN_TIMEOUT_S, child,
                                "attract screen")
            if not wait_card(reader, present=False, timeout=3.0):
                raise BenchError("pcscd still reports the card after it was pulled")
    finally:
        if context is not None:
            scard.SCardReleaseContext(context)
        if watcher is not None:
            watcher.stop()
        env.stop(child)
        if slot.card is not None:
            slot.remove()
    return figures


def report(figures: IdentityFigures) -> Verdict:
    cycles = figures.cycles
    added = figures.median_of("added_ms")
    baseline, terminal = figures.median_of("baseline_ms"), figures.median_of("terminal_ms")
    passed = added <= BUDGET_ADDED_MS
    print(f"card inserted -> identity screen settled (median of {len(cycles)} insertions, "
          "both sides measured on each; screen seen by hook, no polling)")
    print(f"  raw pyscard: seen + read   {baseline:7.1f} ms   (seen "
          f"{median([(c.seen - c.inserted) * 1000 for c in cycles]):.1f} ms, read "
          f"{median([c.read_s * 1000 for c in cycles]):.2f} ms)")
    print(f"  terminal                   {terminal:7.1f} ms")
    print(f"  terminal adds              {added:7.1f} ms   budget <= {BUDGET_ADDED_MS:.0f} ms  "
          f"{'PASS' if passed else 'FAIL'}   per insertion: "
          + " ".join(f"{c.added_ms:.0f}" for c in cycles))
    # The terminal holds its "reading card" screen back for a moment and never draws it when the
    # read is quicker than that, so those steps appear only for slow reads.
    steps = [
        ("pcscd reports card -> 'reading card' shown",
         [(c.reading_shown - c.seen) * 1000 for c in cycles if c.reading_shown is not None]),
        ("'reading card' shown -> identity shown",
         [(c.identity_shown - c.reading_shown) * 1000 for c in cycles
          if c.reading_shown is not None]),
        ("pcscd reports card -> identity shown",
         [(c.identity_shown - c.seen) * 1000 for c in cycles]),
        ("identity shown -> settled", [(c.identity_settled - c.identity_shown) * 1000
                                       for c in cycles]),
    ]
    print("  where the terminal's time goes after pcscd reports the card (medians):")
    for name, values in steps:
        figure = f"{median(values):6.1f} ms" if values else "   not drawn (read was quicker)"
        print(f"    {name:<44} {figure}")
    # For context only: the screen is built here and drawn on the next frame, but it is not the
    # screen GET /screen reports (that waits for the settle), so the budget stays on settled.
    print(f"  for context, terminal adds until the identity screen is built (not yet settled): "
          f"{figures.median_of('added_until_shown_ms'):.1f} ms")
    for cycle in figures.warmup:
        print(f"  warm-up insertion (excluded): terminal {cycle.terminal_ms:.0f} ms, "
              f"adds {cycle.added_ms:.0f} ms")
    return Verdict(
        name="card -> identity screen",
        figure=f"+{added:.0f} ms (terminal {terminal:.0f} ms)",
        baseline=f"raw pyscard {baseline:.0f} ms",
        budget=f"adds <= {BUDGET_ADDED_MS:.0f} ms",
        passed=passed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=9, help="measured insertions")
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="WxH")
    args = parser.parse_args()
    stop_on_sigterm()
    with BenchEnv(size=args.size) as env:
        verdict = report(measure(env, args.cycles))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m bench`: the product's promised figures, each against a same-run baseline.

    .venv/bin/python -m bench [--runs 5] [--cycles 9] [--taps 20] [--rounds 8] [--size WxH]
                              [--only ...]

Runs bench.startup, bench.identity, bench.idcard, bench.tap, bench.memory and bench.application on
one shared environment (Xvfb, pcscd with the vpcd reader, the virtual printer, hub, broker,
scanner, ID card module, co-processor and document camera), prints each one's figures, then a
summary table with PASS/FAIL against the budgets. Exit status: 0 all within budget, 1 a budget
missed, 2 a benchmark could not run. Not part of `make test`: timings on a shared machine are
figures to read, not a gate for every commit
(``make bench`` runs this).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench import application, idcard, identity, memory, startup, tap
from bench.harness import (
    DEFAULT_SIZE,
    BenchEnv,
    BenchError,
    Verdict,
    stop_on_sigterm,
    summary_table,
)
from simulator.automation_client import AutomationError
from simulator.display import parse_size

NAMES = ("startup", "identity", "idcard", "tap", "memory", "application")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5,
                        help="start-up: measured runs per side, interleaved (default 5)")
    parser.add_argument("--cycles", type=int, default=9,
                        help="identity, idcard: measured card insertions and ID card "
                             "placements (default 9)")
    parser.add_argument("--taps", type=int, default=20,
                        help="tap: measured taps per side (default 20)")
    parser.add_argument("--rounds", type=int, default=memory.ROUNDS,
                        help="memory: rounds of four sessions, guide browse and proof errand in "
                             f"normal and elder mode (default {memory.ROUNDS})")
    parser.add_argument("--applications", type=int, default=application.APPLICATIONS,
                        help="application: applications of 10 scanned pages each "
                             f"(default {application.APPLICATIONS})")
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE,
                        help="screen WxH for the terminal and the baselines (default 1920x1080)")
    parser.add_argument("--only", default=",".join(NAMES),
                        help=f"comma-separated subset of {', '.join(NAMES)}")
    parser.add_argument("--pcscd-wait", type=float, default=120.0,
                        help="seconds to wait for a pcscd we did not start to go away")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    stop_on_sigterm()

    runners: dict[str, Callable[[BenchEnv], Verdict]] = {
        "startup": lambda env: startup.report(startup.measure(env, args.runs)),
        "identity": lambda env: identity.report(identity.measure(env, args.cycles)),
        "idcard": lambda env: idcard.report(idcard.measure(env, args.cycles)),
        "tap": lambda env: tap.report(tap.measure(env, args.taps)),
        "memory": lambda env: memory.report(memory.measure(env, args.rounds)),
        "application": lambda env: application.report(
            application.measure(env, args.applications)),
    }
    began = time.monotonic()
    verdicts: list[Verdict] = []
    broken = False
    width, height = args.size
    print(f"civic kiosk benchmarks: screen {width}x{height} on Xvfb, one shared pcscd/vpcd, "
          "virtual printer, hub and broker\n")
    try:
        with BenchEnv(size=args.size, pcscd_wait_s=args.pcscd_wait) as env:
            for name in NAMES:
                if name not in chosen:
                    continue
                try:
                    verdicts.append(runners[name](env))
                except (BenchError, AutomationError) as e:
                    # One benchmark failing to run must not hide the others' figures.
                    broken = True
                    print(f"{name}: could not run: {e}")
                    verdicts.append(
                        Verdict(name=name, figure="could not run", budget="-", passed=False)
                    )
                print()
    except (BenchError, AutomationError) as e:
        print(f"the bench environment could not start: {e}")
        return 2
    print(summary_table(verdicts))
    print(f"\n{time.monotonic() - began:.0f} s in all")
    if broken:
        return 2
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())

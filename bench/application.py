"""Memory of applications with scans: VmRSS after an application with 10 pages, over 5 of them.

Each application is a whole errand as a resident does it, through the automation API: card in,
the intake of 临时救助 with six materials, 10 pages captured on the virtual document camera (about
300 KB each once cropped and compressed), pick-up, a phone number, submit (sent to the simulated
hub at once), the rating, card out, back to attract. VmRSS is read at idle after each.

Budget (the errands issue): at most 230 MB after an application with 10 pages, and level over 5
applications: the scans are really freed (the least-squares slope over the 5, per application,
at most 2 MB). The same run's bare Kivy window is printed beside it, as the other memory figures
are.

    .venv/bin/python -m bench --only application [--applications 5]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.harness import BenchEnv, BenchError, Verdict
from bench.memory import SETTLE_S, Rss, _insert_card, _mb, _wait_until, slope
from simulator.automation_client import AutomationClient

ITEM = "temporary_assistance"
# The six materials of 临时救助 and how many pages each gets: 10 in all.
PAGES = (2, 2, 2, 2, 1, 1)
DOCUMENTS = ("household_register", "application_form", "certificate")
PHONE = "13812345678"
APPLICATIONS = 5
BUDGET_MB = 230.0
BUDGET_SLOPE_MB = 2.0


@dataclass(frozen=True)
class ApplicationFigures:
    bare: Rss
    at_attract: Rss
    after: tuple[Rss, ...]
    seconds: tuple[float, ...]
    pages: int

    @property
    def worst_mb(self) -> float:
        return max(_mb(r.rss_kib) for r in self.after)

    @property
    def slope_mb(self) -> float:
        return slope([_mb(r.rss_kib) for r in self.after])


def _capture(api: AutomationClient, pages_before: int) -> None:
    api.tap("capture")
    _wait_until(api, lambda s: s["screen"] == "intake.scan"
                and s.get("scan", {}).get("pages") == pages_before + 1, "the page taken")


def _application(env: BenchEnv, api: AutomationClient, n: int) -> None:
    camera = env.rig.camera
    if camera is None:
        raise BenchError("the rig has no virtual camera")
    _insert_card(env, api, elder=False)
    api.tap("continue")
    api.wait_for_screen("home.menu", 15)
    api.tap(f"errand.{ITEM}")
    api.wait_for_screen("intake.intro", 15)
    api.tap("start")
    for index, pages in enumerate(PAGES):
        api.wait_for_screen("intake.material", 15)
        camera.set_document(DOCUMENTS[(n + index) % len(DOCUMENTS)])
        api.tap("scan")
        api.wait_for_screen("intake.scan", 15)
        for page in range(pages):
            _capture(api, page)
        api.tap("done")
    api.wait_for_screen("intake.delivery", 15)
    api.tap("pickup")
    api.wait_for_screen("intake.pickup", 15)
    api.tap("centre.county")
    api.wait_for_screen("intake.phone", 15)
    api.text("field.phone", PHONE)
    api.tap("next")
    api.wait_for_screen("intake.review", 15)
    api.tap("submit")
    api.wait_for_screen("intake.lodged", 60)
    api.tap("finish")
    api.wait_for_screen("rating.choose", 15)
    api.tap("rating.5")
    env.card_slot.remove()
    api.wait_for_screen("attract", 45)


def measure(env: BenchEnv, applications: int = APPLICATIONS) -> ApplicationFigures:
    bare = env.spawn_bare_kivy()
    try:
        env.wait_ready(bare)
        time.sleep(SETTLE_S)
        bare_rss = Rss.of(bare)
    finally:
        env.stop(bare)
    child, api = env.spawn_terminal(env.workdir / "application-terminal")
    after: list[Rss] = []
    seconds: list[float] = []
    cases_before = len(env.rig.hub.cases()) if env.rig.hub is not None else 0
    try:
        env.wait_ready(child)
        time.sleep(SETTLE_S)
        at_attract = Rss.of(child)
        for n in range(applications):
            started = time.monotonic()
            _application(env, api, n)
            seconds.append(time.monotonic() - started)
            time.sleep(SETTLE_S)
            after.append(Rss.of(child))
            print(f"  (application {n + 1}/{applications}: VmRSS "
                  f"{_mb(after[-1].rss_kib):.1f} MB, {seconds[-1]:.0f} s)", flush=True)
    finally:
        env.stop(child)
        if env.card_slot.card is not None:
            env.card_slot.remove()
    if env.rig.hub is not None:
        sent = len(env.rig.hub.cases()) - cases_before
        if sent != applications:
            raise BenchError(f"{applications} applications made {sent} case(s) at the hub")
    return ApplicationFigures(bare_rss, at_attract, tuple(after), tuple(seconds), sum(PAGES))


def report(figures: ApplicationFigures) -> Verdict:
    print("Applications with scans (VmRSS at idle after each):")
    print(f"  bare Kivy window (same run):    {_mb(figures.bare.rss_kib):7.1f} MB")
    print(f"  terminal at attract:            {_mb(figures.at_attract.rss_kib):7.1f} MB")
    for n, (rss, secs) in enumerate(zip(figures.after, figures.seconds, strict=True), start=1):
        print(f"  after application {n} ({figures.pages} pages): {_mb(rss.rss_kib):7.1f} MB"
              f"  ({secs:.0f} s)")
    print(f"  slope over {len(figures.after)}:                  {figures.slope_mb:+7.2f} MB per "
          "application")
    ok = figures.worst_mb <= BUDGET_MB and figures.slope_mb <= BUDGET_SLOPE_MB
    return Verdict(
        name="application: VmRSS after 10 pages, level",
        figure=f"{figures.worst_mb:.1f} MB, slope {figures.slope_mb:+.2f} MB",
        budget=f"<= {BUDGET_MB:.0f} MB, slope <= {BUDGET_SLOPE_MB:.0f}",
        passed=ok,
        baseline=f"bare Kivy {_mb(figures.bare.rss_kib):.1f} MB",
    )

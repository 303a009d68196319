"""Every guide of the shipped catalogue, paged by the real terminal and checked page by page: the
UI's layout check finds no clipped text, no overlap and nothing off the screen on any page. Pages
are filled to the sheet's full height (no safety margin), so this is what keeps that honest.

Browsed without a card, as anyone does (查看办事指南 -> 按部门 -> the department -> the item).
`make test` checks the three guides with the most materials in large-type English on the 7-inch
panel, where the pages are fullest; `make test-long` checks every guide at every size in both
languages and both modes. The page counts are printed (``-s``) and written beside the
screenshots of the flow tests, for people to compare.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from e2e_support import ARTIFACTS, start_pass, tap_tile, turn_page, wait_for_mode

from flows.catalogue import Catalogue, CatalogueItem, parse_catalogue
from simulator.pcsc import Pcscd
from simulator.rig import RigOptions, SimulatorRig

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

REPO = Path(__file__).resolve().parents[2]
SIZES = [(800, 480), (1080, 1920), (1920, 1080)]
PASSES = [("zh_CN", False), ("en", False), ("zh_CN", True), ("en", True)]


def shipped_catalogue() -> Catalogue:
    with (REPO / "terminal/content/catalogue.toml").open("rb") as f:
        return parse_catalogue(tomllib.load(f))


def fullest(catalogue: Catalogue, count: int) -> list[CatalogueItem]:
    """The guides with the most materials (the longest pages), in catalogue order."""
    ranked = sorted(catalogue.items, key=lambda item: -len(item.guide.materials))[:count]
    return [item for item in catalogue.items if item in ranked]


def open_guide(rig: SimulatorRig, item: CatalogueItem) -> None:
    rig.tap("guides")
    rig.wait_for_screen("guides.browse")
    tap_tile(rig, "departments")
    rig.wait_for_screen("guides.departments")
    tap_tile(rig, f"department.{item.department.id}")
    rig.wait_for_screen("guides.items")
    tap_tile(rig, f"item.{item.id}")
    rig.wait_for_screen("guide.guide")


def page_problems(rig: SimulatorRig, where: str) -> list[str]:
    """The layout check's findings on the page shown."""
    status, body = rig.api("GET", "/debug/layout")
    assert status == 200, body
    return [f"{where}: {issue}" for issue in json.loads(body)["issues"]]


def check_guides(rig: SimulatorRig, items: list[CatalogueItem],
                 passes: list[tuple[str, bool]]) -> tuple[list[str], dict[str, int]]:
    """Open each guide in each language and mode, turn every page, check each one."""
    problems: list[str] = []
    pages: dict[str, int] = {}
    for language, elder in passes:
        for item in items:
            lang = start_pass(rig, language, elder)
            open_guide(rig, item)
            count = 1
            problems += page_problems(rig, f"{item.id} {lang} page 1")
            while turn_page(rig):
                count += 1
                problems += page_problems(rig, f"{item.id} {lang} page {count}")
            pages[f"{item.id} {lang}"] = count
            for _ in range(4):  # guide -> items -> departments -> browse -> attract
                rig.tap("back")
            rig.wait_for_screen("attract")
            wait_for_mode(rig, "normal")
    return problems, pages


def run_rig(size: tuple[int, int], pcscd: Pcscd, workdir: Path) -> SimulatorRig:
    rig = SimulatorRig(RigOptions(
        workdir=workdir, size=size, printer_port=0, hub_port=0, automation_port=0,
        pcscd=pcscd, force_xvfb=True,
    ))
    rig.start()
    return rig


def report(size: tuple[int, int], pages: dict[str, int]) -> None:
    name = f"{size[0]}x{size[1]}"
    out = ARTIFACTS / "guide-pages"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(pages, indent=1, ensure_ascii=False) + "\n")
    most = max(pages, key=lambda key: pages[key])
    print(f"\n{name}: {len(pages)} guides, {sum(pages.values())} pages, most {pages[most]} "
          f"({most})")


def test_the_fullest_guides_fit_a_7_inch_panel_in_large_english(shared_pcscd: Pcscd,
                                                                tmp_path: Path) -> None:
    size = (800, 480)
    rig = run_rig(size, shared_pcscd, tmp_path)
    try:
        problems, pages = check_guides(rig, fullest(shipped_catalogue(), 3), [("en", True)])
    finally:
        rig.stop()
    report(size, pages)
    assert not problems, "\n".join(problems)


@pytest.mark.long
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_guide_fits_every_screen(size: tuple[int, int], shared_pcscd: Pcscd,
                                       tmp_path: Path) -> None:
    rig = run_rig(size, shared_pcscd, tmp_path)
    try:
        problems, pages = check_guides(rig, list(shipped_catalogue().items), PASSES)
    finally:
        rig.stop()
    report(size, pages)
    assert not problems, "\n".join(problems)

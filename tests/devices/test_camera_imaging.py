"""Page imaging on the simulator's sample documents: the sheet found where it was put, scaled to
about 200 dpi and under 500 KB; empty platens, blank sheets and black frames told apart."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from devices.camera import BadFrame, BlackFrame, BlankPage, CameraError
from devices.camera.imaging import (
    Box,
    PageSettings,
    compress,
    find_page,
    grey_stats,
    make_thumbnail,
    otsu_threshold,
    preview_stats,
    process_page,
)
from simulator.sample_documents import (
    PLATEN_DPI,
    PLATEN_SIZE,
    SampleDocument,
    black_frames,
    load_document,
    render,
)

CACHE = Path(tempfile.gettempdir()) / "kiosk-sample-documents"
PAGES = ("application_form", "household_register", "certificate")
BUDGET = 500_000
A4_AT_200_DPI = (1654, 2339)
TOLERANCE_PX = 3


def sample(name: str) -> SampleDocument:
    return load_document(name, CACHE)


def jpeg_of(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def close_to(found: Box, truth: tuple[int, int, int, int]) -> bool:
    return all(abs(a - b) <= TOLERANCE_PX for a, b in zip(found.as_tuple(), truth, strict=True))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("dpi_known", [True, False], ids=["camera-dpi", "fit-a4"])
def test_each_sample_page_is_found_cropped_scaled_and_under_budget(
    name: str, dpi_known: bool
) -> None:
    document = sample(name)
    assert document.page_box is not None
    settings = PageSettings(source_dpi=PLATEN_DPI if dpi_known else None, max_bytes=BUDGET)
    page = process_page(document.full_jpeg, settings)
    assert close_to(page.page_box, document.page_box), (page.page_box, document.page_box)
    assert page.crop_box.left <= page.page_box.left and page.crop_box.right >= page.page_box.right
    assert len(page.jpeg) <= BUDGET
    decoded = Image.open(io.BytesIO(page.jpeg))
    assert decoded.size == (page.width, page.height)
    assert not decoded.info.get("exif")  # nothing about the device or the time rides along
    if dpi_known:  # 200 dpi from 250: the sheet's size times 0.8, give or take the margin
        sheet_w = document.page_box[2] - document.page_box[0]
        assert abs(page.width - sheet_w * 200 / PLATEN_DPI) < 40
    # Never larger than A4 at 200 dpi (plus the margin), whatever the sheet.
    assert page.width <= A4_AT_200_DPI[0] + 40 and page.height <= A4_AT_200_DPI[1] + 40


def test_the_empty_platen_is_a_blank_page_not_an_error_of_the_camera() -> None:
    with pytest.raises(BlankPage, match="nothing on the platen") as caught:
        process_page(sample("empty").full_jpeg, PageSettings())
    assert caught.value.reason == "blank_page"


def test_a_blank_sheet_on_the_platen_is_a_blank_page_too() -> None:
    frame, _ = render("empty")
    ImageDraw.Draw(frame).rectangle((400, 300, 2000, 2900), fill=(240, 239, 233))
    with pytest.raises(BlankPage, match="blank"):
        process_page(jpeg_of(frame), PageSettings())


def test_a_black_frame_is_told_from_a_dark_platen() -> None:
    full, preview = black_frames()
    with pytest.raises(BlackFrame):
        process_page(full, PageSettings())
    assert preview_stats(preview).black
    assert not preview_stats(sample("empty").preview_jpeg).black  # dark grey is not black
    assert not preview_stats(sample("certificate").preview_jpeg).black


def test_specks_of_dust_and_a_pen_on_the_platen_do_not_move_the_page() -> None:
    frame, truth = render("certificate")
    assert truth is not None
    draw = ImageDraw.Draw(frame)
    for x, y in ((60, 80), (2300, 200), (150, 3100), (2380, 3000), (300, 1500)):
        draw.ellipse((x, y, x + 6, y + 6), fill=(250, 250, 250))  # dust catching the lamp
    draw.rectangle((2250, 600, 2280, 1400), fill=(235, 235, 235))  # a pen beside the sheet
    page = process_page(jpeg_of(frame), PageSettings())
    assert close_to(page.page_box, truth), (page.page_box, truth)


def test_find_page_on_a_plain_grey_frame_finds_nothing() -> None:
    assert find_page(Image.new("L", (800, 600), 60)) is None
    grey = Image.new("L", (800, 600), 60)
    ImageDraw.Draw(grey).rectangle((100, 50, 699, 549), fill=230)
    assert find_page(grey) == Box(100, 50, 700, 550)
    threshold, low, high, share = otsu_threshold(grey.histogram())
    assert 60 <= threshold < 230 and low == 60 and high == 230 and 0.5 < share < 0.7


def test_compression_searches_the_quality_down_to_the_budget() -> None:
    page = Image.open(io.BytesIO(sample("application_form").full_jpeg)).convert("RGB")
    page = page.resize((1654, 2339))
    generous, quality = compress(page, 2_000_000)
    assert quality == 85 and len(generous) <= 2_000_000
    tight, quality = compress(page, 150_000)
    assert len(tight) <= 150_000 and quality < 85
    smaller, _ = compress(page, 40_000)  # below even the lowest rung: scaled down too
    assert len(smaller) <= 40_000
    assert Image.open(io.BytesIO(smaller)).width < 1654


def test_page_settings_are_checked_where_they_are_made() -> None:
    for bad in ({"target_dpi": 10}, {"source_dpi": 5000}, {"max_bytes": 100},
                {"margin_mm": -1}):
        with pytest.raises(ValueError):
            PageSettings(**bad)


def test_garbage_is_a_bad_frame_never_a_crash() -> None:
    truncated = sample("certificate").full_jpeg[:5000]
    for garbage in (b"", b"\xff\xd8\xff\xe0 truncated", b"PNG?", truncated):
        with pytest.raises(CameraError):
            process_page(garbage, PageSettings())
    with pytest.raises(BadFrame):
        process_page(b"definitely not a picture", PageSettings())


def test_the_thumbnail_is_small_rgb_ready_to_blit() -> None:
    thumb = make_thumbnail(sample("household_register").full_jpeg, 320)
    assert max(thumb.width, thumb.height) == 320
    assert len(thumb.rgb) == thumb.width * thumb.height * 3
    assert "rgb" not in repr(thumb) and str(thumb.width) in repr(thumb)
    assert grey_stats(Image.frombytes("RGB", (thumb.width, thumb.height), thumb.rgb)
                      .convert("L")).mean > 50
    assert PLATEN_SIZE[0] > thumb.width

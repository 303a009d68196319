"""Page imaging with Pillow: black-frame and blank-page checks, crop to the page, scale, compress.

A document camera looks down on a dark platen; a page is the large bright region on it. Every
step works on whole images in Pillow's C code (point tables, box resizes, histograms), so a
full-resolution 8 MP frame is handled in a few hundred milliseconds without numpy.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from devices.camera import BadFrame, BlackFrame, BlankPage, CameraError

A4_MM = (210.0, 297.0)
MM_PER_INCH = 25.4
MAX_SOURCE_PIXELS = 40_000_000  # a 5-8 MP camera; refuse a decompression bomb long before this

# Black frame: the platen itself is dark grey (about 50-70 of 255), so "black" must sit well
# below it: a covered lens or a dead lamp, not a dark platen.
BLACK_MEAN = 20.0
BLACK_P98 = 48.0
# A page: the bright class must stand this far above the platen (an empty platen's uneven
# lighting splits into two classes only a few levels apart) and cover this share of the frame.
PAGE_MIN_CONTRAST = 60.0
PAGE_MIN_SHARE = 0.02
# A column (row) belongs to the page when this share of the fullest column's pixels is bright;
# gaps up to GAP_SHARE of the frame are bridged, so a form's ruled lines do not split the page.
PROFILE_LEVEL = 0.5
GAP_SHARE = 0.02
# Ink: pixels this far below the page's own background level, at least this share of the page.
INK_BELOW_BACKGROUND = 50
INK_MIN_SHARE = 0.0005
INK_INSET_SHARE = 0.03  # edges of the sheet (shadow, curl) are not content
INK_MAX_SIDE = 1200  # downscale for the ink count no further: thin strokes must stay dark

QUALITY_LADDER = (85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 35)


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels; ``right`` and ``bottom`` are exclusive, as in Pillow's crop."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.right, self.bottom

    def expanded(self, by: int, within: tuple[int, int]) -> Box:
        width, height = within
        return Box(max(0, self.left - by), max(0, self.top - by),
                   min(width, self.right + by), min(height, self.bottom + by))


@dataclass(frozen=True)
class PageSettings:
    """What a captured page should become.

    ``source_dpi``: the camera's full-resolution pixels per inch at the platen (fixed by its
    height and lens); unknown (None), pages are scaled to fit A4 at ``target_dpi``, which is
    right for A4 and never upscales a smaller page.
    """

    target_dpi: float = 200.0
    source_dpi: float | None = None
    max_bytes: int = 500_000
    margin_mm: float = 2.0  # kept round the page's edge, so edge text is never shaved

    def __post_init__(self) -> None:
        if not 50 <= self.target_dpi <= 600:
            raise ValueError("target_dpi must be in [50, 600]")
        if self.source_dpi is not None and not 50 <= self.source_dpi <= 2400:
            raise ValueError("source_dpi must be in [50, 2400]")
        if not 20_000 <= self.max_bytes <= 20_000_000:
            raise ValueError("max_bytes must be in [20000, 20000000]")
        if not 0 <= self.margin_mm <= 20:
            raise ValueError("margin_mm must be in [0, 20]")


@dataclass(frozen=True, repr=False)
class ProcessedPage:
    """A page as it goes to the hub: JPEG bytes (personal data: never logged, never repr'd),
    its size, where the page was found in the camera's frame and what was cut out round it."""

    jpeg: bytes
    width: int
    height: int
    page_box: Box
    crop_box: Box
    source_size: tuple[int, int]
    quality: int

    def __repr__(self) -> str:
        return f"ProcessedPage({self.width}x{self.height}, {len(self.jpeg)} bytes)"


@dataclass(frozen=True, repr=False)
class Thumbnail:
    """A small RGB picture of a page for the screen, rows top to bottom, ready to blit."""

    rgb: bytes
    width: int
    height: int

    def __repr__(self) -> str:
        return f"Thumbnail({self.width}x{self.height})"


@dataclass(frozen=True)
class FrameStats:
    """Grey-level statistics of a (downscaled) frame, 0-255."""

    mean: float
    stddev: float
    p98: float

    @property
    def black(self) -> bool:
        return self.mean < BLACK_MEAN and self.p98 < BLACK_P98


# --- decoding -------------------------------------------------------------------------------------


def decode(jpeg: bytes, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """A JPEG decoded to RGB; ``draft``: decode at the smallest DCT scale still at least this big
    (1/2, 1/4, 1/8: libjpeg skips the work, a preview frame decodes in a fraction of the time)."""
    try:
        # The size is known from the header: refuse a decompression bomb before decoding it
        # (Pillow's own check only warns below 179 MP; warnings.catch_warnings is not
        # thread-safe, and this runs on the preview and capture threads at once).
        image = Image.open(io.BytesIO(jpeg), formats=("JPEG",))
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise BadFrame("frame larger than any document camera's")
        if draft is not None:
            image.draft("RGB", draft)
        image.load()
    except BadFrame:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadFrame("frame cannot be decoded as a JPEG") from exc
    return image if image.mode == "RGB" else image.convert("RGB")


def grey_stats(grey: Image.Image) -> FrameStats:
    """Mean, standard deviation and 98th percentile of an "L" image, from its histogram."""
    histogram = grey.histogram()
    total = sum(histogram)
    if total == 0:
        return FrameStats(0.0, 0.0, 0.0)
    mean = sum(level * count for level, count in enumerate(histogram)) / total
    variance = sum(count * (level - mean) ** 2 for level, count in enumerate(histogram)) / total
    return FrameStats(mean, math.sqrt(variance), float(_percentile(histogram, total, 0.98)))


def _percentile(histogram: list[int], total: int, share: float) -> int:
    wanted = share * total
    seen = 0
    for level, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return level
    return len(histogram) - 1


def preview_stats(jpeg: bytes) -> FrameStats:
    """Statistics of a preview frame decoded at 1/8 scale (a millisecond or two)."""
    image = decode(jpeg, draft=(1, 1))  # the smallest scale libjpeg offers
    return grey_stats(image.convert("L"))


# --- finding the page -----------------------------------------------------------------------------


def otsu_threshold(histogram: list[int]) -> tuple[int, float, float, float]:
    """Otsu's threshold of a 256-bin histogram: (threshold, mean below, mean above, share above).

    Pixels above the threshold form the bright class.
    """
    total = sum(histogram)
    if total == 0:
        return 0, 0.0, 0.0, 0.0
    sum_all = sum(level * count for level, count in enumerate(histogram))
    best, best_level = -1.0, 0
    weight_low = 0
    sum_low = 0
    for level, count in enumerate(histogram[:-1]):
        weight_low += count
        sum_low += level * count
        weight_high = total - weight_low
        if weight_low == 0 or weight_high == 0:
            continue
        mean_low = sum_low / weight_low
        mean_high = (sum_all - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
        if between > best:
            best, best_level = between, level
    if best < 0:  # one grey level only: nothing to split
        mean = sum_all / total
        return 255, mean, mean, 0.0
    low = histogram[: best_level + 1]
    high = histogram[best_level + 1 :]
    weight_low, weight_high = sum(low), sum(high)
    mean_low = sum(i * c for i, c in enumerate(low)) / weight_low if weight_low else 0.0
    mean_high = (sum((best_level + 1 + i) * c for i, c in enumerate(high)) / weight_high
                 if weight_high else 0.0)
    return best_level, mean_low, mean_high, weight_high / total


def _page_span(profile: bytes, max_gap: int) -> tuple[int, int] | None:
    """The longest run of page columns (or rows) in a 0-255 profile, small gaps bridged."""
    level = max(profile, default=0)
    if level == 0:
        return None
    cut = level * PROFILE_LEVEL
    best: tuple[int, int] | None = None
    start = end = -1  # the current run, end exclusive
    for index, value in enumerate(profile):
        if value < cut:
            continue
        if start >= 0 and index - end <= max_gap:
            end = index + 1  # bridge the gap: a ruled line, a dark photo, a fold
            continue
        if start >= 0 and (best is None or end - start > best[1] - best[0]):
            best = (start, end)
        start, end = index, index + 1
    if start >= 0 and (best is None or end - start > best[1] - best[0]):
        best = (start, end)
    return best


def find_page(grey: Image.Image) -> Box | None:
    """Where the page lies on the platen, in ``grey``'s pixels; None if there is no page.

    Threshold between platen and paper by Otsu on a downscaled copy; then, at full resolution,
    the share of bright pixels per column and per row (box resizes to one row / one column,
    done in C). Dust and specks on the platen are a few pixels in a column and never reach half
    the page's level; ink and ruled lines inside the page are bridged as gaps.
    """
    width, height = grey.size
    small = grey.reduce(max(1, min(width, height) // 400))
    threshold, mean_low, mean_high, share_high = otsu_threshold(small.histogram())
    if mean_high - mean_low < PAGE_MIN_CONTRAST or share_high < PAGE_MIN_SHARE:
        return None
    mask = grey.point([0] * (threshold + 1) + [255] * (255 - threshold))
    gap_x, gap_y = max(2, round(width * GAP_SHARE)), max(2, round(height * GAP_SHARE))

    def columns(top: int, bottom: int) -> tuple[int, int] | None:
        band = mask.crop((0, top, width, bottom)).resize((width, 1), Image.Resampling.BOX)
        return _page_span(band.tobytes(), gap_x)

    def rows(left: int, right: int) -> tuple[int, int] | None:
        band = mask.crop((left, 0, right, height)).resize((1, height), Image.Resampling.BOX)
        return _page_span(band.tobytes(), gap_y)

    xs = columns(0, height)
    if xs is None:
        return None
    ys = rows(*xs)
    if ys is None:
        return None
    # Once more, each over the other's span only: a second bright thing elsewhere on the platen
    # (a pen, a card) no longer counts in the page's columns or rows.
    xs = columns(*ys) or xs
    ys = rows(*xs) or ys
    box = Box(xs[0], ys[0], xs[1], ys[1])
    if box.width * box.height < PAGE_MIN_SHARE * width * height:
        return None
    return box


def has_content(page_grey: Image.Image) -> bool:
    """Whether a page (grey, cropped to the sheet) carries anything: ink well below its paper."""
    width, height = page_grey.size
    inset_x, inset_y = round(width * INK_INSET_SHARE), round(height * INK_INSET_SHARE)
    inner = page_grey.crop((inset_x, inset_y, width - inset_x, height - inset_y))
    factor = max(1, max(inner.size) // INK_MAX_SIDE)
    if factor > 1:
        inner = inner.reduce(factor)
    histogram = inner.histogram()
    total = sum(histogram)
    if total == 0:
        return False
    background = _percentile(histogram, total, 0.5)
    cut = background - INK_BELOW_BACKGROUND
    if cut <= 0:
        return True  # a dark sheet: the paper itself is far from blank white
    ink = sum(histogram[:cut])
    return ink >= INK_MIN_SHARE * total


# --- output ---------------------------------------------------------------------------------------


def output_scale(size: tuple[int, int], settings: PageSettings) -> float:
    """Scale factor from the crop to the stored page: the target dpi, never up."""
    if settings.source_dpi is not None:
        scale = settings.target_dpi / settings.source_dpi
    else:
        short_px = A4_MM[0] / MM_PER_INCH * settings.target_dpi
        long_px = A4_MM[1] / MM_PER_INCH * settings.target_dpi
        scale = min(long_px / max(size), short_px / min(size))
    return min(1.0, scale)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # optimize: Huffman tables fitted to the page, 5-10% smaller for one extra pass; no EXIF or
    # other metadata is written (none is passed), so nothing about the device rides along.
    image.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def compress(image: Image.Image, max_bytes: int) -> tuple[bytes, int]:
    """The best quality on ``QUALITY_LADDER`` whose JPEG fits ``max_bytes``: (bytes, quality).

    Most pages fit at the first rung (one encode); otherwise a binary search over the rungs
    (size falls with quality), three or four encodes. If even the last rung is too large the
    picture is scaled down a little and searched again, twice at most.
    """
    for _ in range(3):
        first = encode_jpeg(image, QUALITY_LADDER[0])
        if len(first) <= max_bytes:
            return first, QUALITY_LADDER[0]
        last = encode_jpeg(image, QUALITY_LADDER[-1])
        if len(last) <= max_bytes:
            fits, fits_at = last, len(QUALITY_LADDER) - 1
            low, high = 1, len(QUALITY_LADDER) - 2  # rungs not yet tried
            while low <= high:
                middle = (low + high) // 2
                data = encode_jpeg(image, QUALITY_LADDER[middle])
                if len(data) <= max_bytes:
                    fits, fits_at = data, middle
                    high = middle - 1
                else:
                    low = middle + 1
            return fits, QUALITY_LADDER[fits_at]
        shrink = math.sqrt(max_bytes / len(last)) * 0.95
        image = image.resize((max(1, round(image.width * shrink)),
                              max(1, round(image.height * shrink))), Image.Resampling.BICUBIC)
    raise CameraError("page does not compress into its size budget", reason="page_too_large")


def process_page(jpeg: bytes, settings: PageSettings) -> ProcessedPage:
    """A full-resolution frame to a stored page: BlackFrame, BlankPage or BadFrame if it is not
    one. Never logs or keeps the picture."""
    image = decode(jpeg)
    grey = image.convert("L")
    width, height = image.size
    if grey_stats(grey.reduce(max(1, min(width, height) // 400))).black:
        raise BlackFrame("the camera delivered a black frame")
    page = find_page(grey)
    if page is None:
        raise BlankPage("nothing on the platen")
    if not has_content(grey.crop(page.as_tuple())):
        raise BlankPage("the page on the platen is blank")
    # The margin is in millimetres; without the camera's dpi, take the sheet for A4 (a smaller
    # sheet then gets a smaller margin, which is harmless).
    dpi = settings.source_dpi or max(page.width, page.height) / (A4_MM[1] / MM_PER_INCH)
    crop = page.expanded(round(settings.margin_mm / MM_PER_INCH * dpi), (width, height))
    cropped = image.crop(crop.as_tuple())
    scale = output_scale(cropped.size, settings)
    if scale < 1.0:
        size = (max(1, round(cropped.width * scale)), max(1, round(cropped.height * scale)))
        # Lanczos keeps thin strokes of small characters legible; reducing_gap makes a large
        # reduction a cheap box step first.
        cropped = cropped.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    data, quality = compress(cropped, settings.max_bytes)
    return ProcessedPage(
        jpeg=data, width=cropped.width, height=cropped.height, page_box=page, crop_box=crop,
        source_size=(width, height), quality=quality,
    )


def make_thumbnail(jpeg: bytes, max_side: int = 320) -> Thumbnail:
    """A page's picture at most ``max_side`` pixels on its long side, as RGB rows to blit."""
    if not 16 <= max_side <= 4096:
        raise ValueError("max_side must be in [16, 4096]")
    image = decode(jpeg, draft=(max_side, max_side))
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return Thumbnail(image.tobytes(), image.width, image.height)

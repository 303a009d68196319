"""Sample documents on a dark platen, as the virtual document camera sees them; synthetic data.

Four scenes: a Chinese application form (申请表), a household-register page (户口簿 style), a
certificate with a red seal (证明), and the empty platen. Each is drawn with Pillow in the UI's
CJK font at ``PLATEN_DPI`` on a ``PLATEN_SIZE`` frame (an 8 MP camera mounted so its long side
runs along the page), lit unevenly, with a little sensor noise and the sheet's shadow, the sheet
a little off centre. Output is deterministic; the JPEGs are made once and kept under the user's
cache directory (a few hundred ms per scene the first time), keyed by the font and Pillow version.
Every name, number and address on them is made up and marked 样本 (sample).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import itertools
import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import PIL
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from terminal.ui.fonts import find_cjk_font

PLATEN_SIZE = (2448, 3264)  # full resolution, width x height
PLATEN_DPI = 250.0  # pixels per inch at the platen: 2448 px across 249 mm
PREVIEW_SIZE = (768, 1024)
FULL_QUALITY = 90
PREVIEW_QUALITY = 80
CACHE_VERSION = "1"  # bump when a drawing changes

PLATEN_GREY = 62
PAPER = (246, 244, 238)
INK = (28, 30, 36)
SEAL_RED = (206, 32, 30)
RULE_GREY = (70, 74, 82)

Rgb = tuple[int, int, int]
PixelBox = tuple[int, int, int, int]  # left, top, right (exclusive), bottom (exclusive)
NO_LINE_START = frozenset("，。、；：？！）」』》")


@dataclass(frozen=True, repr=False)
class SampleDocument:
    """One scene: its full-resolution and preview JPEGs and where the sheet lies in the full
    frame (None on the empty platen)."""

    name: str
    title: str
    full_jpeg: bytes
    preview_jpeg: bytes
    page_box: PixelBox | None

    def __repr__(self) -> str:
        return f"SampleDocument({self.name})"


def mm(value: float) -> int:
    """Millimetres on the platen to pixels of the full-resolution frame."""
    return round(value / 25.4 * PLATEN_DPI)


@functools.lru_cache(maxsize=32)
def _font(font_path: str, size_mm: float) -> ImageFont.FreeTypeFont:
    # index 0: WenQuanYi's first face is its Simplified Chinese one (see terminal.ui.fonts).
    return ImageFont.truetype(font_path, mm(size_mm), index=0)


class _Sheet:
    """A page being drawn, in millimetres from its top-left corner."""

    def __init__(self, size_mm: tuple[float, float], font_path: str, paper: Rgb = PAPER) -> None:
        self.size_mm = size_mm
        self.image = Image.new("RGB", (mm(size_mm[0]), mm(size_mm[1])), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.font_path = font_path

    def text(self, x: float, y: float, text: str, size: float, *, fill: Rgb = INK,
             anchor: str = "la") -> None:
        self.draw.text((mm(x), mm(y)), text, fill=fill, font=_font(self.font_path, size),
                       anchor=anchor)

    def width_of(self, text: str, size: float) -> float:
        return _font(self.font_path, size).getlength(text) / mm(1)

    def box(self, x: float, y: float, w: float, h: float, *, line: float = 0.3,
            colour: Rgb = RULE_GREY, fill: Rgb | None = None) -> None:
        self.draw.rectangle((mm(x), mm(y), mm(x + w), mm(y + h)), outline=colour,
                            width=max(1, mm(line)), fill=fill)

    def line(self, x0: float, y0: float, x1: float, y1: float, *, width: float = 0.3,
             colour: Rgb = RULE_GREY) -> None:
        self.draw.line((mm(x0), mm(y0), mm(x1), mm(y1)), fill=colour, width=max(1, mm(width)))

    def paragraph(self, x: float, y: float, width: float, text: str, size: float, *,
                  leading: float = 1.8) -> float:
        """Text wrapped at any character (Chinese), first line indented two characters; returns
        the y below it."""
        line, lines = "　　", []
        for char in text:
            # Closing punctuation never starts a line (避头): it may hang past the edge instead.
            if self.width_of(line + char, size) > width and char not in NO_LINE_START:
                lines.append(line)
                line = ""
            line += char
        lines.append(line)
        for index, content in enumerate(lines):
            self.text(x, y + index * size * leading, content, size)
        return y + len(lines) * size * leading

    def seal(self, cx: float, cy: float, diameter: float, label: str) -> None:
        """A round red seal: a ring, a five-pointed star and a line of text under it."""
        r = mm(diameter / 2)
        centre = (mm(cx), mm(cy))
        self.draw.ellipse((centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r),
                          outline=SEAL_RED, width=mm(diameter * 0.03))
        star_r = r * 0.3
        points = []
        for k in range(10):
            radius = star_r if k % 2 == 0 else star_r * 0.4
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((centre[0] + radius * math.cos(angle),
                           centre[1] - r * 0.1 + radius * math.sin(angle)))
        self.draw.polygon(points, fill=SEAL_RED)
        self.text(cx, cy + diameter * 0.28, label, diameter * 0.11, fill=SEAL_RED, anchor="mm")

    def watermark(self, text: str, size: float) -> None:
        """Large pale text across the sheet, 30 degrees up: it says this is a sample."""
        font = _font(self.font_path, size)
        left, top, right, bottom = (round(v) for v in font.getbbox(text))
        stamp = Image.new("L", (right - left + 8, bottom - top + 8), 0)
        ImageDraw.Draw(stamp).text((4 - left, 4 - top), text, fill=40, font=font)
        stamp = stamp.rotate(30, expand=True, resample=Image.Resampling.BILINEAR)
        x = (self.image.width - stamp.width) // 2
        y = (self.image.height - stamp.height) // 2
        self.image.paste((120, 120, 120), (x, y), stamp)


# --- the documents ------------------------------------------------------------------------------


def _application_form(font_path: str) -> Image.Image:
    sheet = _Sheet((210.0, 297.0), font_path)
    sheet.watermark("样本 SAMPLE", 26)
    sheet.text(105, 24, "社会保险业务申请表", 8, anchor="mm")
    sheet.text(105, 35, "（个人参保登记　模拟样本）", 4.2, anchor="mm")
    sheet.text(192, 46, "编号：SQ-2025-000123", 3.2, anchor="rs")
    left, right, top = 18.0, 192.0, 50.0
    row = 13.0
    label_w = 34.0
    photo_w = 32.0
    # Rows beside the photo: label | value | label | value.
    pairs = (("姓名", "张示例", "性别", "男"), ("出生日期", "1990年01月01日", "民族", "汉"),
             ("联系电话", "010-0000 0000", "文化程度", "大学"))
    body_right = right - photo_w
    for index, (l1, v1, l2, v2) in enumerate(pairs):
        y = top + index * row
        mid = left + (body_right - left) / 2
        sheet.box(left, y, label_w, row, fill=(234, 236, 240))
        sheet.box(left + label_w, y, mid - left - label_w, row)
        sheet.box(mid, y, 22, row, fill=(234, 236, 240))
        sheet.box(mid + 22, y, body_right - mid - 22, row)
        sheet.text(left + 3, y + row / 2, l1, 4, anchor="lm")
        sheet.text(left + label_w + 3, y + row / 2, v1, 4.4, anchor="lm")
        sheet.text(mid + 3, y + row / 2, l2, 4, anchor="lm")
        sheet.text(mid + 25, y + row / 2, v2, 4.4, anchor="lm")
    sheet.box(body_right, top, photo_w, 3 * row)
    sheet.text(body_right + photo_w / 2, top + 1.5 * row, "照片", 4.5, anchor="mm",
               fill=(150, 150, 150))
    # The ID number, one box per character as on paper forms.
    y = top + 3 * row
    sheet.box(left, y, label_w, row, fill=(234, 236, 240))
    sheet.text(left + 3, y + row / 2, "公民身份号码", 4, anchor="lm")
    digits = "110101199001010000"
    cell = (right - left - label_w) / len(digits)
    for index, digit in enumerate(digits):
        x = left + label_w + index * cell
        sheet.box(x, y, cell, row)
        sheet.text(x + cell / 2, y + row / 2, digit, 4.6, anchor="mm")
    for index, (label, value) in enumerate((
        ("户籍地址", "北京市示例区示例街道示例路1号"),
        ("现居住地址", "北京市示例区示例街道示例社区1号楼1单元101室"),
    )):
        y = top + (4 + index) * row
        sheet.box(left, y, label_w, row, fill=(234, 236, 240))
        sheet.box(left + label_w, y, right - left - label_w, row)
        sheet.text(left + 3, y + row / 2, label, 4, anchor="lm")
        sheet.text(left + label_w + 3, y + row / 2, value, 4.4, anchor="lm")
    y = top + 6 * row
    sheet.box(left, y, label_w, row, fill=(234, 236, 240))
    sheet.box(left + label_w, y, right - left - label_w, row)
    sheet.text(left + 3, y + row / 2, "申请事项", 4, anchor="lm")
    for index, (item, ticked) in enumerate((("参保登记", True), ("信息变更", False),
                                            ("转移接续", False))):
        x = left + label_w + 4 + index * 44
        sheet.box(x, y + row / 2 - 2.2, 4.4, 4.4, line=0.35, colour=INK)
        if ticked:
            sheet.line(x + 0.8, y + row / 2, x + 2, y + row / 2 + 1.6, width=0.6, colour=INK)
            sheet.line(x + 2, y + row / 2 + 1.6, x + 4, y + row / 2 - 1.8, width=0.6,
                       colour=INK)
        sheet.text(x + 6.5, y + row / 2, item, 4.2, anchor="lm")
    y = top + 7 * row
    tall = 58.0
    sheet.box(left, y, label_w, tall, fill=(234, 236, 240))
    sheet.box(left + label_w, y, right - left - label_w, tall)
    sheet.text(left + 3, y + 6, "申请理由", 4, anchor="lm")
    sheet.paragraph(left + label_w + 3, y + 4, right - left - label_w - 6,
                    "本人自2018年3月起在本市灵活就业，现申请办理城乡居民基本养老保险参保登记，"
                    "所填信息真实有效，如有不实，愿承担相应责任。", 4.2)
    y += tall
    sheet.box(left, y, right - left, 26.0)
    sheet.text(left + 3, y + 7, "经办机构意见：", 4, anchor="lm")
    sheet.text(right - 4, y + 20, "经办人：＿＿＿＿　　年　　月　　日", 3.8, anchor="rm")
    y += 36
    sheet.text(left, y, "申请人签名：", 4.4, anchor="lm")
    scribble = [(left + 30 + k * 3.1, y + 2.2 * math.sin(k * 1.3) - (k % 3) * 0.6)
                for k in range(14)]
    for (x0, y0), (x1, y1) in itertools.pairwise(scribble):
        sheet.line(x0, y0, x1, y1, width=0.5, colour=(20, 40, 110))
    sheet.text(right, y, "日期：2025年3月1日", 4.4, anchor="rm")
    sheet.text(105, 282, "本表为测试用模拟样本，所有信息均为虚构。", 3.2, anchor="mm",
               fill=(110, 110, 110))
    return sheet.image


_REGISTER_FIELDS = (
    ("姓名", "李样本", "户主或与户主关系", "户主"),
    ("曾用名", "无", "性别", "女"),
    ("出生地", "北京市示例区", "民族", "汉"),
    ("籍贯", "河北省示例市", "出生日期", "1985年06月15日"),
    ("本市（县）其他住址", "", "宗教信仰", "无"),
    ("公民身份号码", "110101198506150000", "身高", "165厘米"),
    ("文化程度", "大学本科", "婚姻状况", "已婚"),
    ("服务处所", "示例科技有限公司", "职业", "工程技术人员"),
    ("何时由何地迁来本市", "2003年09月 河北省示例市", "", ""),
    ("何时由何地迁来本址", "2015年04月 本市示例区", "", ""),
)


def _household_register(font_path: str) -> Image.Image:
    sheet = _Sheet((146.0, 206.0), font_path, paper=(236, 243, 238))
    # The booklet's security background: fine pale waves.
    for k in range(0, 206, 3):
        points = [(mm(x), mm(k + 0.8 * math.sin(x / 6.0))) for x in range(0, 147, 2)]
        sheet.draw.line(points, fill=(214, 228, 220), width=max(1, mm(0.15)))
    sheet.watermark("样本", 30)
    sheet.text(73, 16, "常住人口登记卡", 6.5, anchor="mm", fill=(40, 60, 50))
    left, right, top, row = 8.0, 138.0, 26.0, 15.0
    width = right - left
    label_w = width * 0.2
    value_w = width * 0.3
    chars_per_line = 6  # a long label wraps inside its cell, as printed on the card
    for index, (l1, v1, l2, v2) in enumerate(_REGISTER_FIELDS):
        y = top + index * row
        cells = ((l1, label_w, 3.0, (40, 60, 50)), (v1, value_w if l2 else width - label_w,
                                                    3.5, INK))
        x = left
        for text, w, size, colour in cells:
            sheet.box(x, y, w, row, colour=(90, 120, 100))
            lines = ([text[:chars_per_line], text[chars_per_line:]]
                     if colour != INK and len(text) > chars_per_line else [text])
            for n, part in enumerate(lines):
                offset = (n - (len(lines) - 1) / 2) * size * 1.3
                sheet.text(x + 1.5, y + row / 2 + offset, part, size, fill=colour, anchor="lm")
            x += w
        if l2:
            sheet.box(x, y, label_w, row, colour=(90, 120, 100))
            lines = ([l2[:chars_per_line], l2[chars_per_line:]]
                     if len(l2) > chars_per_line else [l2])
            for n, part in enumerate(lines):
                offset = (n - (len(lines) - 1) / 2) * 3.0 * 1.3
                sheet.text(x + 1.5, y + row / 2 + offset, part, 3.0, fill=(40, 60, 50),
                           anchor="lm")
            sheet.box(x + label_w, y, value_w, row, colour=(90, 120, 100))
            sheet.text(x + label_w + 1.5, y + row / 2, v2, 3.5, anchor="lm")
    y = top + len(_REGISTER_FIELDS) * row + 8
    sheet.seal(right - 22, y - 2, 30, "户口专用章")  # stamped first: the print shows over it
    sheet.text(left, y, "承办人签章：王示例", 3.6, anchor="lm")
    sheet.text(right, y, "登记日期：2015年04月20日", 3.6, anchor="rm")
    return sheet.image


def _certificate(font_path: str) -> Image.Image:
    sheet = _Sheet((176.0, 250.0), font_path)
    sheet.watermark("样本", 40)
    sheet.text(88, 32, "证　　明", 10, anchor="mm")
    left, width = 22.0, 132.0
    y = sheet.paragraph(left, 55, width,
                        "兹证明张示例同志（公民身份号码：110101199001010000）自2018年3月起在本辖区"
                        "居住，现居住于北京市示例区示例街道示例社区1号楼1单元101室，居住情况属实。",
                        5.2, leading=2.0)
    y = sheet.paragraph(left, y + 4, width, "本证明仅用于办理社会保险相关业务，有效期三个月。",
                        5.2, leading=2.0)
    sheet.text(left, y + 8, "特此证明。", 5.2)
    sheet.seal(124, 186, 42, "示例社区居委会")  # stamped first: the print shows over it
    sheet.text(154, 188, "示例街道示例社区居民委员会", 4.8, anchor="rm")
    sheet.text(154, 200, "2025年3月1日", 4.8, anchor="rm")
    sheet.text(88, 238, "本证明为测试用模拟样本，所有信息均为虚构。", 3.2, anchor="mm",
               fill=(110, 110, 110))
    return sheet.image


@dataclass(frozen=True)
class _Scene:
    title: str
    draw: Callable[[str], Image.Image] | None
    offset: tuple[int, int]  # the sheet's centre from the platen's, in pixels


SCENES: dict[str, _Scene] = {
    "application_form": _Scene("申请表（社会保险业务申请表）", _application_form, (37, -23)),
    "household_register": _Scene("户口簿（常住人口登记卡）", _household_register, (-61, 44)),
    "certificate": _Scene("证明（居住证明，红色印章）", _certificate, (52, 29)),
    "empty": _Scene("空白台面（无文件）", None, (0, 0)),
}
DOCUMENTS: tuple[str, ...] = tuple(SCENES)


# --- the platen ---------------------------------------------------------------------------------


@functools.cache
def _lighting() -> Image.Image:
    """How bright each spot of the platen is lit, 255 in the middle, about 88% in the corners."""
    gradient = Image.radial_gradient("L").resize(PLATEN_SIZE, Image.Resampling.BILINEAR)
    return gradient.point(lambda v: 255 - v * 30 // 255)


@functools.cache
def _noise() -> Image.Image:
    """Sensor noise, +-3 levels, from a seeded 256x256 tile repeated over the frame."""
    rng = random.Random(20250301)
    tile = Image.frombytes("L", (256, 256),
                           bytes(min(6, max(0, round(rng.gauss(3, 1.2)))) for _ in range(65536)))
    noise = Image.new("L", PLATEN_SIZE)
    for x in range(0, PLATEN_SIZE[0], 256):
        for y in range(0, PLATEN_SIZE[1], 256):
            noise.paste(tile, (x, y))
    return Image.merge("RGB", (noise, noise, noise))


def render(name: str, font_path: Path | None = None) -> tuple[Image.Image, PixelBox | None]:
    """The full-resolution frame of a scene and the sheet's box in it."""
    scene = SCENES[name]
    frame = Image.new("RGB", PLATEN_SIZE, (PLATEN_GREY, PLATEN_GREY, PLATEN_GREY + 3))
    box: PixelBox | None = None
    if scene.draw is not None:
        sheet = scene.draw(str(font_path or find_cjk_font()))
        left = (PLATEN_SIZE[0] - sheet.width) // 2 + scene.offset[0]
        top = (PLATEN_SIZE[1] - sheet.height) // 2 + scene.offset[1]
        box = (left, top, left + sheet.width, top + sheet.height)
        # A soft shadow down and to the right, darker than the platen: it is not the page.
        quarter = Image.new("L", (PLATEN_SIZE[0] // 4, PLATEN_SIZE[1] // 4), 0)
        ImageDraw.Draw(quarter).rectangle(((left + 14) // 4, (top + 18) // 4,
                                           (box[2] + 14) // 4, (box[3] + 18) // 4), fill=110)
        shadow = quarter.filter(ImageFilter.BoxBlur(4)).resize(PLATEN_SIZE,
                                                               Image.Resampling.BILINEAR)
        frame.paste((18, 18, 20), (0, 0), shadow)
        frame.paste(sheet, (left, top))
    lit = ImageChops.multiply(frame, Image.merge("RGB", (_lighting(),) * 3))
    return ImageChops.add(lit, _noise(), scale=1.0, offset=-3), box


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def encode_scene(image: Image.Image) -> tuple[bytes, bytes]:
    """(full-resolution JPEG, preview JPEG) of a frame."""
    preview = image.resize(PREVIEW_SIZE, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return _jpeg(image, FULL_QUALITY), _jpeg(preview, PREVIEW_QUALITY)


@functools.cache
def black_frames() -> tuple[bytes, bytes]:
    """(full-resolution, preview) JPEGs of a black frame with a trace of sensor noise."""
    black = Image.new("RGB", PLATEN_SIZE, (2, 2, 2))
    return encode_scene(ImageChops.add(black, _noise(), scale=2.0))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "civic-kiosk"


def _cache_key(font_path: Path) -> str:
    stat = font_path.stat()
    identity = f"{CACHE_VERSION}|{font_path}|{stat.st_size}|{stat.st_mtime_ns}|{PIL.__version__}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _write_atomically(path: Path, data: bytes) -> None:
    # Several test processes may make the cache at once: each writes its own file and renames.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def load_document(name: str, cache_dir: Path | None = None,
                  font_path: Path | None = None) -> SampleDocument:
    """One scene, from the cache if it is there (else drawn and stored)."""
    if name not in SCENES:
        raise KeyError(f"no sample document {name!r}; have {', '.join(DOCUMENTS)}")
    font = font_path or find_cjk_font()
    folder = (cache_dir or default_cache_dir()) / f"sample-documents-{_cache_key(font)}"
    full_path, preview_path = folder / f"{name}.jpg", folder / f"{name}.preview.jpg"
    meta_path = folder / f"{name}.json"
    try:
        meta = json.loads(meta_path.read_text())
        full, preview = full_path.read_bytes(), preview_path.read_bytes()
        box = tuple(meta["page_box"]) if meta["page_box"] is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        image, drawn_box = render(name, font)
        full, preview = encode_scene(image)
        box = drawn_box
        with contextlib.suppress(OSError):  # a read-only home: keep it in memory only
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(full_path, full)
            _write_atomically(preview_path, preview)
            _write_atomically(meta_path, json.dumps({"page_box": box}).encode())
    page_box: PixelBox | None = None
    if box is not None:
        page_box = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    return SampleDocument(name, SCENES[name].title, full, preview, page_box)


def load_documents(cache_dir: Path | None = None,
                   font_path: Path | None = None) -> dict[str, SampleDocument]:
    """Every scene, in ``DOCUMENTS`` order."""
    return {name: load_document(name, cache_dir, font_path) for name in DOCUMENTS}

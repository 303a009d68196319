"""Where targets and labels are on the glass: target boxes for the API, layout defect checks."""

from __future__ import annotations

from collections.abc import Iterator

from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from terminal.presentation import Bounds
from terminal.ui.theme import MIN_TOUCH_PX

# x, y, width, height in Kivy window coordinates (origin bottom-left)
Box = tuple[float, float, float, float]

TOLERANCE_PX = 1.0  # sub-pixel rounding in layouts is not a defect


def window_box(widget: Widget) -> Box:
    x0, y0 = widget.to_window(widget.x, widget.y)
    x1, y1 = widget.to_window(widget.x + widget.width, widget.y + widget.height)
    return (x0, y0, x1 - x0, y1 - y0)


def _intersect(a: Box, b: Box) -> Box | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x1 - x0 <= TOLERANCE_PX or y1 - y0 <= TOLERANCE_PX:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _scroll_ancestors(widget: Widget) -> list[ScrollView]:
    found: list[ScrollView] = []
    parent = widget.parent
    while parent is not None and parent is not parent.parent:
        if isinstance(parent, ScrollView):
            found.append(parent)
        parent = parent.parent
    return found


def _shown(widget: Widget) -> bool:
    """Not hidden by zero opacity on itself or an ancestor, and not collapsed to nothing."""
    node: Widget | None = widget
    while node is not None:
        if float(node.opacity) <= 0:
            return False
        node = node.parent if node.parent is not node else None
    return bool(widget.width > 0 and widget.height > 0)


def visible_box(widget: Widget) -> Box | None:
    """The part of ``widget`` not scrolled out of its scroll views; None if none of it shows."""
    box: Box | None = window_box(widget)
    for view in _scroll_ancestors(widget):
        if box is None:
            return None
        box = _intersect(box, window_box(view))
    return box


def targets(root: Widget) -> Iterator[Widget]:
    """Every widget that is a touch target (carries a ``target_id``), in tree order."""
    for widget in root.walk(restrict=True):
        if getattr(widget, "target_id", None) is not None:
            yield widget


def find_target(root: Widget, target_id: str) -> Widget | None:
    return next((w for w in targets(root) if w.target_id == target_id), None)


def to_top_left(box: Box, window_height: float) -> Bounds:
    """Kivy's bottom-left window box as integer pixels with the origin top-left (screenshots)."""
    x, y, w, h = box
    return (round(x), round(window_height - (y + h)), round(w), round(h))


def target_bounds(root: Widget, window_height: float) -> dict[str, Bounds | None]:
    """Each target's visible box, top-left origin; None when scrolled fully out of sight."""
    out: dict[str, Bounds | None] = {}
    for widget in targets(root):
        box = visible_box(widget) if _shown(widget) else None
        out[widget.target_id] = to_top_left(box, window_height) if box is not None else None
    return out


def _inside(inner: Box, outer: Box) -> bool:
    return (
        inner[0] >= outer[0] - TOLERANCE_PX
        and inner[1] >= outer[1] - TOLERANCE_PX
        and inner[0] + inner[2] <= outer[0] + outer[2] + TOLERANCE_PX
        and inner[1] + inner[3] <= outer[1] + outer[3] + TOLERANCE_PX
    )


def _name(widget: Widget) -> str:
    target_id = getattr(widget, "target_id", None)
    if target_id is not None:
        return f"target {target_id!r}"
    text = str(getattr(widget, "text", ""))
    return f"label {text[:24]!r}"


def _is_ancestor(a: Widget, b: Widget) -> bool:
    node = b.parent
    while node is not None and node is not node.parent:
        if node is a:
            return True
        node = node.parent
    return False


def layout_issues(
    root: Widget, window_size: tuple[float, float], min_target_px: float = MIN_TOUCH_PX
) -> list[str]:
    """Layout defects on the current screen, as sentences; an empty list means none.

    A label's text must be drawn and fit its box; a label outside any scroll view must lie
    inside the window, one inside a scroll view must not stick out sideways (it scrolls only
    vertically). Targets must be finger-sized, inside the window, and not overlap; shown labels
    must not overlap.
    No scroll view may have more content than it shows.
    """
    window: Box = (0.0, 0.0, float(window_size[0]), float(window_size[1]))
    issues: list[str] = []
    labels = [
        w for w in root.walk(restrict=True) if isinstance(w, Label) and w.text and _shown(w)
    ]
    for label in labels:
        tex_w, tex_h = label.texture_size
        if label.texture is None or tex_w < 1 or tex_h < 1:
            # A label narrower than one character waits for a wider width before it draws
            # (widgets.TextLabel): one left that narrow would show nothing at all.
            issues.append(f"{_name(label)} is not drawn: {label.width:.0f} px wide")
            continue
        if tex_w > label.width + TOLERANCE_PX or tex_h > label.height + TOLERANCE_PX:
            issues.append(
                f"{_name(label)} is clipped: text {tex_w}x{tex_h} in box "
                f"{label.width:.0f}x{label.height:.0f}"
            )
        box = window_box(label)
        views = _scroll_ancestors(label)
        if not views and not _inside(box, window):
            issues.append(f"{_name(label)} leaves the window: {box}")
        for view in views:
            vx, _, vw, _ = window_box(view)
            if box[0] < vx - TOLERANCE_PX or box[0] + box[2] > vx + vw + TOLERANCE_PX:
                issues.append(f"{_name(label)} sticks out of its scroll view sideways")
    # Nothing may wait below a fold: a resident who does not know what a scroll bar is never
    # sees it (the guide that showed two of its five materials). Content that does not fit is
    # paged with plain buttons, never left to a scroll view.
    for view in root.walk(restrict=True):
        if isinstance(view, ScrollView) and view.children and _shown(view):
            hidden = view.children[0].height - view.height
            if hidden > TOLERANCE_PX:
                first = next((w for w in view.walk(restrict=True)
                              if isinstance(w, Label) and w.text), None)
                where = _name(first) if first is not None else "an empty view"
                issues.append(f"the scrolling area from {where} hides {hidden:.0f} px below "
                              "the fold")
    shown_targets = [w for w in targets(root) if _shown(w)]
    for widget in shown_targets:
        if min(widget.width, widget.height) < min_target_px - TOLERANCE_PX:
            issues.append(
                f"{_name(widget)} is too small to touch: {widget.width:.0f}x{widget.height:.0f}"
            )
        seen = visible_box(widget)
        if seen is not None and not _inside(seen, window):
            issues.append(f"{_name(widget)} leaves the window: {seen}")
    # Overlap: of shown labels and targets, neither inside the other (a tile holds its label).
    boxes = [(w, visible_box(w)) for w in dict.fromkeys([*labels, *shown_targets])]
    placed = [(w, b) for w, b in boxes if b is not None]
    for i, (a, box_a) in enumerate(placed):
        for b, box_b in placed[i + 1 :]:
            if _is_ancestor(a, b) or _is_ancestor(b, a):
                continue
            if _intersect(box_a, box_b) is not None:
                issues.append(f"{_name(a)} overlaps {_name(b)}")
    return sorted(issues)

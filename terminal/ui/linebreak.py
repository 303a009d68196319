"""Line breaking for mixed Chinese and Latin text (words, basic 禁则 rules) and list numbering.

Kivy wraps only at spaces and otherwise cuts a line at whatever character overflows, which
leaves a closing bracket or a full stop alone at the start of a line and splits words ("养/老").
This breaker breaks between words (flows.wording tells where Chinese words are), keeps Latin words
and numbers whole, and never starts a line with closing punctuation nor ends one with opening
punctuation. Only a word wider than a whole line is cut inside, at the last place that fits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flows.wording import segment

# May not begin a line (closing brackets, sentence and clause marks, ellipsis, percent).
NO_START = frozenset("，。、；：？！）》」』】〕〉”’…—·%,.;:?!)]}>")
# May not end a line (opening brackets and quotes).
NO_END = frozenset("（《「『【〔〈“‘([{<")

# How many characters' widths a paragraph may narrow to give its last line more than one.
WIDOW_STEPS = 4

# Cuts a text into words that rejoin it; no break is made inside a word that fits a line.
Words = Callable[[str], Sequence[str]]

# A token is a run of spaces, a run of Latin letters/digits (with joiners inside), or one other
# character; tokens inside one Chinese word are then joined into the word.
_TOKEN = re.compile(r"\s+|[0-9A-Za-z\u00C0-\u024F*#@&_\-+/'.]+|.", re.DOTALL)


def tokens(text: str, words: Words = segment) -> list[str]:
    """The units a line is built of: space runs, Latin words and numbers, Chinese words, and
    single characters (punctuation, a character of no known word)."""
    return [text[start:end] for start, end in _spans(text, words)]


def _spans(text: str, words: Words) -> list[tuple[int, int]]:
    pieces = words(text)
    if "".join(pieces) != text:
        raise ValueError("the word breaker's pieces do not rejoin the text")
    boundaries = {0}
    offset = 0
    for piece in pieces:
        offset += len(piece)
        boundaries.add(offset)
    spans: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        # Inside a word: glue to the token before it (never across spaces).
        if (
            spans
            and start not in boundaries
            and not match.group().isspace()
            and not text[spans[-1][0]].isspace()
        ):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


@dataclass(frozen=True)
class _Paragraph:
    """One paragraph and where it may break, worked out once for every width tried."""

    text: str
    # (end of this line, start of the next): between tokens, spaces dropped, 禁则 obeyed.
    breaks: tuple[tuple[int, int], ...]
    # Offsets inside Chinese words where a break obeys 禁则: for a word wider than a line.
    inside_words: frozenset[int]


def _paragraph_of(text: str, words: Words) -> _Paragraph:
    spans = _spans(text, words)
    breaks: list[tuple[int, int]] = []
    inside: set[int] = set()
    for index, (start, end) in enumerate(spans):
        token = text[start:end]
        if index and not token.isspace():
            before = text[spans[index - 1][0] : spans[index - 1][1]]
            if before.isspace():
                before_end = spans[index - 1][0]
                last = text[before_end - 1] if before_end else ""
                if before_end and last not in NO_END and token[0] not in NO_START:
                    breaks.append((before_end, start))
            elif before[-1] not in NO_END and token[0] not in NO_START:
                breaks.append((start, start))
        if len(token) > 1 and not _TOKEN.fullmatch(token):  # a glued word, not a Latin run
            inside.update(
                start + i
                for i in range(1, len(token))
                if token[i - 1] not in NO_END and token[i] not in NO_START
            )
    return _Paragraph(text, tuple(breaks), frozenset(inside))


def break_lines(
    text: str,
    max_width: float,
    measure: Callable[[str], float],
    *,
    balanced: bool = False,
    words: Words = segment,
) -> str:
    """``text`` with ``\\n`` inserted so that each line measures at most ``max_width``.

    ``balanced``: as many lines as needed, but as even as possible, so a centred label never
    ends in one lonely word ("社会保险参保证明打印" / "证明"). ``words``: where Chinese words are.
    """
    if max_width <= 0:
        return text
    # Every pass measures the growing line again, and the bisection below repeats whole passes:
    # measured once each, a centred 40-character line costs ~90 font measurements, not ~900.
    measure = functools.cache(measure)
    paragraphs = [_paragraph_of(paragraph, words) for paragraph in text.split("\n")]
    if not balanced:
        return "\n".join(line for p in paragraphs for line in _no_widow(p, max_width, measure))
    broken = _break(paragraphs, max_width, measure)
    lines = broken.count("\n")
    if lines == text.count("\n"):
        return broken
    # The narrowest width that still needs no more lines: bisect down from max_width.
    low, high = 0.0, max_width
    for _ in range(10):
        middle = (low + high) / 2
        if _break(paragraphs, middle, measure).count("\n") <= lines:
            high = middle
        else:
            low = middle
    return _break(paragraphs, high, measure)


def _break(paragraphs: list[_Paragraph], max_width: float, measure: Callable[[str], float]) -> str:
    return "\n".join(line for p in paragraphs for line in _lines(p, max_width, measure))


def _no_widow(p: _Paragraph, max_width: float, measure: Callable[[str], float]) -> list[str]:
    """``p``'s lines, the last never one character alone ("请将材料正面朝上放在高拍仪" / "下"):
    narrowed a character at a time until the line before gives it a word, in as many lines."""
    lines = _lines(p, max_width, measure)
    if len(lines) < 2 or not _widow(lines[-1]):
        return lines
    step = max(1.0, measure(lines[-1]))
    for attempt in range(1, WIDOW_STEPS + 1):
        tried = _lines(p, max_width - attempt * step, measure)
        if len(tried) != len(lines):
            break
        if not _widow(tried[-1]):
            return tried
    return lines


def _widow(line: str) -> bool:
    return sum(1 for ch in line if not ch.isspace() and ch not in NO_START | NO_END) <= 1


def _lines(p: _Paragraph, max_width: float, measure: Callable[[str], float]) -> list[str]:
    text = p.text
    lines: list[str] = []
    start = len(text) - len(text.lstrip())  # a paragraph's leading spaces are not shown
    following = 0  # index of the first break after ``start``
    while True:
        rest = text[start:].rstrip()
        if not rest or measure(rest) <= max_width:
            if rest or not lines:
                lines.append(rest)
            return lines
        while following < len(p.breaks) and p.breaks[following][0] <= start:
            following += 1
        # The last break that leaves the line no wider than max_width. Widths grow with the
        # line, so the scan stops at the first break that does not fit.
        chosen: tuple[int, int] | None = None
        for end, resume in p.breaks[following:]:
            if measure(text[start:end]) > max_width:
                break
            chosen = (end, resume)
        if chosen is None:
            # Not even the first word fits on a line of its own: cut it.
            limit = p.breaks[following][0] if following < len(p.breaks) else len(rest) + start
            cut = _cut(p, start, limit, max_width, measure)
            chosen = (cut, cut)
        lines.append(text[start : chosen[0]].rstrip())
        start = chosen[1]
        # A cut forced through a space that 禁则 kept from being a break: no line opens with it.
        while start < len(text) and text[start].isspace():
            start += 1


def _cut(
    p: _Paragraph, start: int, limit: int, max_width: float, measure: Callable[[str], float]
) -> int:
    """Where to cut a word wider than the line: the last place that fits, inside a Chinese word
    if 禁则 allow one, else anywhere; at least one character per line, however wide."""
    best_inside, best = 0, start + 1
    for cut in range(start + 1, limit):
        if measure(p.text[start:cut]) > max_width:
            break
        best = cut
        if cut in p.inside_words:
            best_inside = cut
    return best_inside or best


# "1. 居民身份证", "2、户口簿", "(3) ...": items the content already numbered.
_NUMBERED = re.compile(r"^\s*([(（]?\d{1,3}[.、．)）])\s*(.+)$", re.DOTALL)


def number_items(items: tuple[str, ...]) -> list[tuple[str | None, str]]:
    """(number, text) per item: the content's own numbers split off so wrapped lines hang
    under the text, numbers added to an unnumbered list, none for a single paragraph."""
    found = [_NUMBERED.match(item) for item in items]
    if items and all(found):
        return [(match.group(1), match.group(2)) for match in found if match is not None]
    if len(items) > 1:
        return [(f"{index}.", item) for index, item in enumerate(items, start=1)]
    return [(None, item) for item in items]

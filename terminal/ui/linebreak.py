"""Line breaking for mixed Chinese and Latin text (basic 禁则 rules) and list numbering; pure.

Kivy wraps only at spaces and otherwise cuts a line at whatever character overflows, which
leaves a closing bracket or a full stop alone at the start of a line. This breaker allows a
break between any two Chinese characters, keeps Latin words and numbers whole, and never starts
a line with closing punctuation nor ends one with opening punctuation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

# May not begin a line (closing brackets, sentence and clause marks, ellipsis, percent).
NO_START = frozenset("，。、；：？！）》」』】〕〉”’…—·%,.;:?!)]}>")
# May not end a line (opening brackets and quotes).
NO_END = frozenset("（《「『【〔〈“‘([{<")

# A token is a run of spaces, a run of Latin letters/digits (with joiners inside), or one other
# character (each Chinese character and punctuation mark is its own token).
_TOKEN = re.compile(r"\s+|[0-9A-Za-z\u00C0-\u024F*#@&_\-+/'.]+|.", re.DOTALL)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def break_lines(
    text: str, max_width: float, measure: Callable[[str], float], *, balanced: bool = False
) -> str:
    """``text`` with ``\\n`` inserted so that each line measures at most ``max_width``.

    ``balanced``: as many lines as needed, but as even as possible, so a centred label never
    ends in one lonely character ("社会保险参保证明打" / "印").
    """
    if max_width <= 0:
        return text
    # Every pass measures the growing line again, and the bisection below repeats whole passes:
    # measured once each, a centred 40-character line costs ~90 font measurements, not ~900.
    measure = functools.cache(measure)
    broken = _break(text, max_width, measure)
    lines = broken.count("\n")
    if not balanced or lines == 0:
        return broken
    # The narrowest width that still needs no more lines: bisect down from max_width.
    low, high = 0.0, max_width
    for _ in range(10):
        middle = (low + high) / 2
        if _break(text, middle, measure).count("\n") <= lines:
            high = middle
        else:
            low = middle
    return _break(text, high, measure)


def _break(text: str, max_width: float, measure: Callable[[str], float]) -> str:
    return "\n".join(
        line for paragraph in text.split("\n") for line in _paragraph(paragraph, max_width, measure)
    )


def _paragraph(text: str, max_width: float, measure: Callable[[str], float]) -> list[str]:
    lines: list[str] = []
    line: list[str] = []
    for token in tokens(text):
        if token.isspace():
            if line:
                line.append(token)
            continue
        if measure("".join(line) + token) <= max_width or not line:
            line.append(token)
            while measure("".join(line)) > max_width and len(line) == 1 and len(line[0]) > 1:
                # A single word wider than the line: cut it where it must be cut.
                head, tail = _split_word(line[0], max_width, measure)
                lines.append(head)
                line = [tail]
            continue
        while line and line[-1].isspace():
            line.pop()
        carried: list[str] = []
        # Closing punctuation may not open the new line: take the last character along with it.
        if token[0] in NO_START and len(line) > 1:
            carried.insert(0, line.pop())
        # Opening punctuation may not close the old line: move it down too.
        while len(line) > 1 and line[-1] in NO_END:
            carried.insert(0, line.pop())
        lines.append("".join(line).rstrip())
        line = [*carried, token]
    if line or not lines:
        lines.append("".join(line).rstrip())
    return lines


def _split_word(word: str, max_width: float, measure: Callable[[str], float]) -> tuple[str, str]:
    cut = len(word) - 1
    while cut > 1 and measure(word[:cut]) > max_width:
        cut -= 1
    return word[:cut], word[cut:]


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

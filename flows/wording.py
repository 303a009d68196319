"""Chinese word segmentation for line breaking: maximum matching over a word list; pure.

Chinese has no spaces, so a line breaker that knows no words breaks between any two characters
and leaves "养" at the end of one line and "老" at the start of the next. ``segment`` tells it
where the words are. The word list (flows/wordlist.py) is the vocabulary of the terminal's own
texts, cut into words once by jieba at development time (tests/flows/test_wording.py checks it is
current), plus DOMAIN_TERMS below. At run time bidirectional maximum matching over it costs
~0.6 MB and ~1 ms on first use; jieba itself would cost ~80 MB of RSS and ~0.65 s, and jieba's
Tokenizer over the same small list ~19 MB and ~90 ms of import.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable

# Terms a receipt or a screen must never split although a general dictionary cuts them in two
# (jieba: 失业/保险, 核验/真伪). They are added to jieba when the word list is generated too.
DOMAIN_TERMS: tuple[str, ...] = (
    "失业保险",
    "工伤保险",
    "生育保险",
    "医疗保险",
    "养老保险",
    "社会保险",
    "养老金",
    "社保卡",
    "医保卡",
    "核验真伪",
    "扫码",
    "扫码核验",
    "身份证",
    "户口簿",
    "验证码",
    "二维码",
    "高拍仪",
    "拍完",  # the scan screen's "拍完点“这份拍好了”" split as 拍/完
)

# A word longer than this would hardly ever fit a line's end, and matching cost grows with it.
MAX_WORD_LENGTH = 8

# CJK unified ideographs (with extension A, the compatibility block and the supplementary planes),
# and 〇: the characters words are made of. Punctuation and Latin are never part of a word here.
# Ranges, not a regular expression: compiling one with these classes costs ~2 ms of start-up.
_IDEOGRAPH_RANGES = (
    (0x3007, 0x3007),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3134F),
)


def is_ideograph(ch: str) -> bool:
    """True for a Chinese character (a CJK unified or compatibility ideograph, or 〇)."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _IDEOGRAPH_RANGES)


class WordListError(ValueError):
    """A word list entry is not 2 to MAX_WORD_LENGTH Chinese characters."""


class Segmenter:
    """Cuts text into words: each run of Chinese characters by maximum matching, everything else
    (Latin, digits, spaces, punctuation) one character per piece, so the pieces rejoin the text."""

    def __init__(self, words: Iterable[str]) -> None:
        vocabulary: set[str] = set()
        for word in words:
            if (
                not isinstance(word, str)
                or not 2 <= len(word) <= MAX_WORD_LENGTH
                or not all(map(is_ideograph, word))
            ):
                raise WordListError(
                    f"word list entry {word!r} is not 2 to {MAX_WORD_LENGTH} Chinese characters"
                )
            vocabulary.add(word)
        self._words = frozenset(vocabulary)
        self._longest = max((len(word) for word in vocabulary), default=1)

    def __len__(self) -> int:
        return len(self._words)

    def __call__(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"segment() takes a str, not {type(text).__name__}")
        pieces: list[str] = []
        for chinese, run in itertools.groupby(text, key=is_ideograph):
            if chinese:
                pieces.extend(self._words_of("".join(run)))
            else:
                pieces.extend(run)
        return pieces

    def _words_of(self, run: str) -> list[str]:
        """The better of forward and backward maximum matching: fewer words, then fewer single
        characters; on a tie backward, which errs less in Chinese (it reads 研究/生命 where
        forward reads 研究生/命)."""
        forward, backward = self._forward(run), self._backward(run)
        if _score(forward) < _score(backward):
            return forward
        return backward

    def _forward(self, run: str) -> list[str]:
        out: list[str] = []
        start = 0
        while start < len(run):
            size = min(self._longest, len(run) - start)
            while size > 1 and run[start : start + size] not in self._words:
                size -= 1
            out.append(run[start : start + size])
            start += size
        return out

    def _backward(self, run: str) -> list[str]:
        out: list[str] = []
        end = len(run)
        while end > 0:
            size = min(self._longest, end)
            while size > 1 and run[end - size : end] not in self._words:
                size -= 1
            out.append(run[end - size : end])
            end -= size
        out.reverse()
        return out


def _score(words: list[str]) -> tuple[int, int]:
    return len(words), sum(len(word) == 1 for word in words)


@functools.cache
def default_segmenter() -> Segmenter:
    """The segmenter over the shipped word list and DOMAIN_TERMS, built on first use (~2 ms)."""
    # Imported here: the list is only needed once something is laid out, not at start-up.
    from flows.wordlist import WORDS  # noqa: PLC0415

    return Segmenter([*WORDS.split(), *DOMAIN_TERMS])


def segment(text: str) -> list[str]:
    """``text`` cut into words that rejoin it; a break between two pieces keeps words whole."""
    return default_segmenter()(text)

"""The word segmenter and its word list: words stay whole, pieces rejoin the text, list current.

Regenerate the word list after changing Chinese texts (needs jieba, a dev dependency):
    .venv/bin/python tests/flows/test_wording.py --write
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.wording import (
    DOMAIN_TERMS,
    MAX_WORD_LENGTH,
    Segmenter,
    WordListError,
    default_segmenter,
    segment,
)

ROOT = Path(__file__).resolve().parents[2]
WORDLIST = ROOT / "flows" / "wordlist.py"
# Every Chinese text the terminal shows or prints: its translations and content, the texts the
# flows put on paper, and the simulated hub's records (the hub's own vocabulary).
TOML_SOURCES = ("terminal/locales/*/*.toml", "terminal/content/*.toml")
PYTHON_SOURCES = ("flows/*.py", "simulator/hub_records.py")
NOT_SOURCES = frozenset({"flows/wordlist.py", "flows/wording.py"})
_IDEOGRAPHS = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")

# --- generating the word list (development time, with jieba) ------------------------------------


def _toml_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _toml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _toml_strings(value)


def _python_strings(source: str) -> Iterator[str]:
    """String literals, without docstrings: a reworded comment must not make the list stale."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.value


def corpus() -> list[str]:
    """The project's Chinese texts, in a stable order."""
    texts: list[str] = []
    for pattern in TOML_SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            texts += _toml_strings(tomllib.loads(path.read_text(encoding="utf-8")))
    for pattern in PYTHON_SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            if path.relative_to(ROOT).as_posix() not in NOT_SOURCES:
                texts += _python_strings(path.read_text(encoding="utf-8"))
    return [text for text in texts if _IDEOGRAPHS.search(text)]


def generated_words() -> list[str]:
    """The corpus cut by jieba (dictionary only, no HMM guesses), DOMAIN_TERMS kept whole."""
    import jieba  # type: ignore[import-untyped]  # noqa: PLC0415 - dev dependency, only here

    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    for term in DOMAIN_TERMS:
        tokenizer.add_word(term)
    words = {
        word
        for text in corpus()
        for word in tokenizer.cut(text, HMM=False)
        if 2 <= len(word) <= MAX_WORD_LENGTH and _IDEOGRAPHS.fullmatch(word)
    }
    return sorted(words - set(DOMAIN_TERMS))


def wordlist_source(words: list[str]) -> str:
    body = "\n".join(words)
    return (
        '"""Words of the terminal\'s own Chinese texts, for line breaking; generated, not edited.\n'
        "\n"
        "Regenerate: .venv/bin/python tests/flows/test_wording.py --write\n"
        '"""\n'
        "\n"
        f'WORDS = """\n{body}\n"""\n'
    )


def test_the_word_list_is_current_with_the_texts() -> None:
    # Not skipped without jieba: a stale list must not pass unnoticed (pyproject [dev] has it).
    expected = wordlist_source(generated_words())
    assert WORDLIST.read_text(encoding="utf-8") == expected, (
        "flows/wordlist.py is stale: the Chinese texts changed. "
        "Run: .venv/bin/python tests/flows/test_wording.py --write"
    )


# --- the segmenter --------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["养老", "失业保险", "核验真伪", "社会保险", "验证码"])
def test_words_of_the_issue_come_out_whole(word: str) -> None:
    assert word in segment(f"请您携带{word}相关材料")


def test_a_receipt_sentence_is_cut_into_its_words() -> None:
    assert segment("可扫码或凭验证码核验真伪。") == [
        "可", "扫码", "或", "凭", "验证码", "核验真伪", "。",
    ]  # fmt: skip


def test_everything_but_chinese_is_one_character_per_piece() -> None:
    assert segment("No. 12 养老") == ["N", "o", ".", " ", "1", "2", " ", "养老"]
    assert segment("") == []


def test_backward_matching_wins_a_tie_and_fewer_words_win_otherwise() -> None:
    words = Segmenter(["研究", "研究生", "生命"])
    assert words("研究生命") == ["研究", "生命"]  # forward would say 研究生/命
    assert Segmenter(["甲乙", "乙丙丁"])("甲乙丙丁") == ["甲", "乙丙丁"]
    assert Segmenter(["甲乙丙", "丙丁"])("甲乙丙丁") == ["甲乙丙", "丁"]


def test_unknown_text_falls_back_to_single_characters() -> None:
    assert Segmenter([])("鑫淼") == ["鑫", "淼"]


@pytest.mark.parametrize("entry", ["养", "abc", "养老。", "一二三四五六七八九", 7])
def test_a_bad_word_list_entry_is_a_word_list_error(entry: object) -> None:
    with pytest.raises(WordListError):
        Segmenter([entry])  # type: ignore[list-item]


def test_segmenting_something_else_than_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        segment(b"\xe5\x85\xbb")  # type: ignore[arg-type]


def test_the_shipped_list_is_small() -> None:
    # A few thousand words at most: a list the size of jieba's (350,000) would cost the RSS
    # and start-up budget this segmenter exists to keep.
    assert 200 < len(default_segmenter()) < 5000


_TEXT = st.text(
    st.one_of(
        st.sampled_from("养老失业保险核验真伪社会证明打印验证码可扫或凭。，（）"),
        st.characters(),
    ),
    max_size=60,
)


@given(_TEXT)
def test_pieces_always_rejoin_the_text(text: str) -> None:
    pieces = segment(text)
    assert "".join(pieces) == text
    assert all(pieces)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: tests/flows/test_wording.py --write   (regenerates flows/wordlist.py)")
    found = generated_words()
    WORDLIST.write_text(wordlist_source(found), encoding="utf-8")
    print(f"flows/wordlist.py: {len(found)} words")

"""Reading a content file's TOML tables: typed getters that name the path, and a typo check.

The catalogue and the notices are both edited by hand on site; both report every problem with
the path where it is (``items[1].guide.fees.en``) through their own error type, and both refuse a
key nobody read (almost always a typo that would silently drop content).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import overload

# Ids become parts of translation keys and action ids ("errand.<id>"), so keep them to one plain
# segment: no dots, no spaces, nothing a key lookup could split on.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

ContentErrorFactory = Callable[[str, str], ValueError]  # (path, problem) -> the file's error


@dataclass(frozen=True)
class Localised:
    """One display string in every supported language."""

    zh: str  # Simplified Chinese, the ``zh_CN`` text; also what receipts print
    en: str

    def get(self, lang: str) -> str:
        if lang == "zh_CN":
            return self.zh
        if lang == "en":
            return self.en
        raise KeyError(lang)


class ContentTable:
    """One TOML table being read; ``error(path, problem)`` builds the file's own error."""

    def __init__(self, path: str, value: object, error: ContentErrorFactory) -> None:
        if not isinstance(value, Mapping):
            raise error(path, "must be a table")
        self.path = path
        self.error = error
        self._data: Mapping[str, object] = value
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> ValueError:
        """The file's error for ``key``, to raise."""
        return self.error(self.at(key), problem)

    def has(self, key: str) -> bool:
        self._read.add(key)
        return key in self._data

    def value(self, key: str) -> object:
        """The raw value of a required key."""
        if not self.has(key):
            raise self.fail(key, "is missing")
        return self._data[key]

    def string(self, key: str, *, max_chars: int | None = None) -> str:
        value = self.value(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        text = value.strip()
        if max_chars is not None and len(text) > max_chars:
            raise self.fail(key, f"is {len(text)} characters; at most {max_chars} fit the screen")
        return text

    def ident(self, key: str) -> str:
        value = self.string(key)
        if not ID_PATTERN.match(value):
            raise self.fail(key, f"{value!r} is not a valid id (lower-case letters, digits, _)")
        return value

    def integer(self, key: str, *, minimum: int, maximum: int) -> int:
        value = self.value(key)
        # bool is an int in Python; "true" working days is a content mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, "must be a whole number")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"must be between {minimum} and {maximum}")
        return value

    @overload
    def optional_integer(self, key: str, *, default: int, minimum: int, maximum: int) -> int: ...

    @overload
    def optional_integer(
        self, key: str, *, default: None, minimum: int, maximum: int
    ) -> int | None: ...

    def optional_integer(
        self, key: str, *, default: int | None, minimum: int, maximum: int
    ) -> int | None:
        return self.integer(key, minimum=minimum, maximum=maximum) if self.has(key) else default

    def boolean(self, key: str, *, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.value(key)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def localised(self, key: str, *, max_chars: int | None = None) -> Localised:
        return self.table(key).as_localised(max_chars=max_chars)

    def optional_localised(self, key: str) -> Localised | None:
        return self.localised(key) if self.has(key) else None

    def as_localised(self, *, max_chars: int | None = None) -> Localised:
        """This table as one string in every language: all are required, or a bare key would
        show on the glass."""
        text = Localised(
            zh=self.string("zh_CN", max_chars=max_chars),
            en=self.string("en", max_chars=max_chars),
        )
        self.done()
        return text

    def table(self, key: str) -> ContentTable:
        return ContentTable(self.at(key), self.value(key), self.error)

    def tables(
        self,
        key: str,
        *,
        empty: str | None = "must be a non-empty list",
        not_a_list: str = "must be a non-empty list",
    ) -> list[ContentTable]:
        """An array of tables (``[[items]]``), each named by its index. ``empty`` is the problem
        reported when it is missing or empty; None: that reads as no tables."""
        self._read.add(key)
        value = self._data.get(key)
        if value is None or value == []:
            if empty is not None:
                raise self.fail(key, empty)
            return []
        if not isinstance(value, list):
            raise self.fail(key, not_a_list)
        return [
            ContentTable(f"{self.at(key)}[{index}]", raw, self.error)
            for index, raw in enumerate(value)
        ]

    def done(self) -> None:
        """Report a key nobody read: almost always a typo that would silently drop content."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise self.fail(unknown[0], "unknown key (a typo?)")

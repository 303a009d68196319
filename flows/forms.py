"""Form entry through the on-screen keypad: field rules, the values typed so far, clear errors.

A flow step that shows a ``Form`` keeps a ``FormEntry``: it applies each keypad tap, choice tap
or whole value typed at once (``TextEntered``), checks every field when the resident goes on,
and builds the fields as the screen shows them, masked where a value is personal. Values are
digits, dates or choices only: there is no free Chinese text entry on an unattended kiosk.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flows.steps import (
    Action,
    Event,
    FieldKind,
    FormField,
    Tap,
    Text,
    TextEntered,
    t,
)

_DATE_DIGITS = 8  # YYYYMMDD
_DATE_TYPED = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


@dataclass(frozen=True)
class FieldRule:
    """What one field accepts. ``check`` adds a rule of the domain (a mobile number's pattern)
    and returns the problem as a translation key's text, or None; ``mask`` is how the value is
    shown once typed (a phone number as 138****1234)."""

    id: str
    kind: FieldKind
    min_length: int = 1
    max_length: int = 20
    required: bool = True
    choices: tuple[str, ...] = ()
    earliest: dt.date | None = None
    latest: dt.date | None = None
    check: Callable[[str], Text | None] | None = None
    mask: Callable[[str], str] | None = None


class FormEntry:
    """The values of one form while it is on screen; ``wipe`` drops them (they may be personal)."""

    def __init__(self, rules: tuple[FieldRule, ...]) -> None:
        if not rules or len({rule.id for rule in rules}) != len(rules):
            raise ValueError("a form needs fields with distinct ids")
        self._rules = {rule.id: rule for rule in rules}
        self._values: dict[str, str] = {}
        self._errors: dict[str, Text] = {}
        keyed = [rule.id for rule in rules if rule.kind is not FieldKind.CHOICE]
        self.focus: str | None = keyed[0] if keyed else None

    @property
    def values(self) -> Mapping[str, str]:
        return dict(self._values)

    def wipe(self) -> None:
        self._values.clear()
        self._errors.clear()

    def apply(self, event: Event) -> bool:
        """Take a keypad tap, a focus tap, a choice or a whole typed value; True if it was one."""
        if isinstance(event, TextEntered):
            field_id = event.target.removeprefix("field.")
            rule = self._rules.get(field_id)
            if not event.target.startswith("field.") or rule is None:
                return False
            if rule.kind is FieldKind.CHOICE:
                value = event.text.strip()
            else:
                value = _typed_digits(event.text, rule)
            self._values[field_id] = value
            self._errors.pop(field_id, None)
            self.focus = field_id if rule.kind is not FieldKind.CHOICE else self.focus
            return True
        if not isinstance(event, Tap):
            return False
        target = event.target
        if target.startswith("field."):
            field_id = target.removeprefix("field.")
            if field_id in self._rules and self._rules[field_id].kind is not FieldKind.CHOICE:
                self.focus = field_id
                return True
            return False
        if target.startswith("choice."):
            field_id, _, value = target.removeprefix("choice.").partition(".")
            rule = self._rules.get(field_id)
            if rule is None or value not in rule.choices:
                return False
            self._values[field_id] = value
            self._errors.pop(field_id, None)
            return True
        if target.startswith("key.") and self.focus is not None:
            return self._key(self._rules[self.focus], target.removeprefix("key."))
        return False

    def _key(self, rule: FieldRule, key: str) -> bool:
        value = self._values.get(rule.id, "")
        limit = _DATE_DIGITS if rule.kind is FieldKind.DATE else rule.max_length
        if key == "delete":
            value = value[:-1]
        elif key == "clear":
            value = ""
        elif len(key) == 1 and key in "0123456789":
            if len(value) >= limit:
                return True  # a key too many is taken and ignored: the field shows it is full
            value += key
        else:
            return False
        self._values[rule.id] = value
        self._errors.pop(rule.id, None)
        return True

    def check(self) -> bool:
        """Check every field; each problem is kept for the screen. True when all are good."""
        self._errors = {}
        for rule in self._rules.values():
            problem = _problem(rule, self._values.get(rule.id, ""))
            if problem is not None:
                self._errors[rule.id] = problem
        if self._errors:
            self.focus = next(
                (fid for fid in self._rules
                 if fid in self._errors and self._rules[fid].kind is not FieldKind.CHOICE),
                self.focus,
            )
        return not self._errors

    def fields(self, key_prefix: str) -> tuple[FormField, ...]:
        """The fields as the screen shows them; labels and hints are ``<prefix>.<field>``, and
        ``<prefix>.<field>.<choice>`` for a choice's label."""
        shown: list[FormField] = []
        for rule in self._rules.values():
            value = self._values.get(rule.id, "")
            choices = tuple(
                Action(f"choice.{rule.id}.{choice}", t(f"{key_prefix}.{rule.id}.{choice}"))
                for choice in rule.choices
            )
            shown.append(FormField(
                id=rule.id,
                label=t(f"{key_prefix}.{rule.id}.label"),
                kind=rule.kind,
                shown=_shown(rule, value),
                choices=choices,
                error=self._errors.get(rule.id),
            ))
        return tuple(shown)


def _typed_digits(text: str, rule: FieldRule) -> str:
    """A value typed at once, kept to what the keypad could have typed (digits, within length)."""
    if rule.kind is FieldKind.DATE:
        match = _DATE_TYPED.match(text.strip())
        text = "".join(match.groups()) if match else text
        limit = _DATE_DIGITS
    else:
        limit = rule.max_length
    # Kept as typed (one character past the limit, so "too long" can be said): anything but
    # ASCII digits is refused by the check as a whole rather than silently dropped.
    return text.strip()[: limit + 1]


def _problem(rule: FieldRule, value: str) -> Text | None:
    if not value:
        return t("form.error.required") if rule.required else None
    if rule.kind is FieldKind.CHOICE:
        return None if value in rule.choices else t("form.error.choice")
    if not value.isascii() or not value.isdigit():
        return t("form.error.digits_only")
    if rule.kind is FieldKind.DATE:
        return _date_problem(rule, value)
    if len(value) > rule.max_length:
        return t("form.error.too_long", most=str(rule.max_length))
    if len(value) < rule.min_length:
        return t("form.error.too_short", least=str(rule.min_length))
    return rule.check(value) if rule.check is not None else None


def _date_problem(rule: FieldRule, value: str) -> Text | None:
    if len(value) != _DATE_DIGITS:
        return t("form.error.date")
    try:
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return t("form.error.date")
    if rule.earliest is not None and day < rule.earliest:
        return t("form.error.date_too_early", earliest=rule.earliest.isoformat())
    if rule.latest is not None and day > rule.latest:
        return t("form.error.date_too_late", latest=rule.latest.isoformat())
    return rule.check(value) if rule.check is not None else None


def _shown(rule: FieldRule, value: str) -> str:
    if rule.kind is FieldKind.DATE:
        # Typed digits appear in place: 2026-12-0_
        digits = value.ljust(_DATE_DIGITS, "_")
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}" if value else ""
    if rule.mask is not None and value:
        return rule.mask(value)
    return value


def date_value(value: str) -> dt.date:
    """A checked date field's value as a date."""
    return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))

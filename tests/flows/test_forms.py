"""Form entry: the keypad, whole values typed at once, and a clear message for each bad value."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.forms import FieldRule, FormEntry, date_value
from flows.steps import FieldKind, Form, Tap, Text, TextEntered, form_targets, t


def mobile(number: str) -> Text | None:
    """A mainland mobile number: 11 digits, 1 then 3-9 (the rule a phone field would add)."""
    return None if number[0] == "1" and number[1] in "3456789" else t("form.error.mobile")


def masked(number: str) -> str:
    return number[:3] + "*" * max(0, len(number) - 7) + number[-4:] if len(number) > 7 else number


PHONE = FieldRule("phone", FieldKind.DIGITS, min_length=11, max_length=11, check=mobile,
                  mask=masked)
DAY = FieldRule("day", FieldKind.DATE, earliest=dt.date(2026, 12, 7), latest=dt.date(2027, 1, 6))
DELIVERY = FieldRule("delivery", FieldKind.CHOICE, choices=("mail", "pickup"))


def entry() -> FormEntry:
    return FormEntry((PHONE, DAY, DELIVERY))


def keys(form: FormEntry, digits: str) -> None:
    for digit in digits:
        assert form.apply(Tap(f"key.{digit}"))


def test_the_keypad_types_into_the_focused_field_and_shows_it_masked() -> None:
    form = entry()
    assert form.focus == "phone"
    keys(form, "13812345678")
    keys(form, "9")  # one too many: taken, ignored
    assert form.values["phone"] == "13812345678"
    phone = form.fields("demo.contact")[0]
    assert phone.shown == "138****5678" and phone.label.key == "demo.contact.phone.label"
    assert form.apply(Tap("key.delete")) and form.values["phone"] == "1381234567"
    assert form.apply(Tap("key.clear")) and form.values["phone"] == ""
    assert form.apply(Tap("field.day")) and form.focus == "day"
    keys(form, "2026121")
    assert form.fields("demo.contact")[1].shown == "2026-12-1_"
    assert not form.apply(Tap("field.delivery"))  # a choice is tapped, never typed into
    assert form.apply(Tap("choice.delivery.mail")) and form.values["delivery"] == "mail"
    assert not form.apply(Tap("choice.delivery.drone"))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("phone", "", "form.error.required"),
        ("phone", "1381234567", "form.error.too_short"),
        ("phone", "138123456789", "form.error.too_long"),
        ("phone", "12812345678", "form.error.mobile"),
        ("phone", "1381234567８", "form.error.digits_only"),  # a full-width digit
        ("phone", "138-1234-567", "form.error.digits_only"),
        ("day", "20261301", "form.error.date"),
        ("day", "2026-02-30", "form.error.date"),
        ("day", "2026-12-06", "form.error.date_too_early"),
        ("day", "2027-01-07", "form.error.date_too_late"),
        ("delivery", "drone", "form.error.choice"),
    ],
)
def test_each_bad_value_gets_its_own_clear_message(field: str, value: str, problem: str) -> None:
    form = entry()
    good = {"phone": "13812345678", "day": "2026-12-08", "delivery": "mail"}
    for name, text in {**good, field: value}.items():
        assert form.apply(TextEntered(f"field.{name}", text))
    assert not form.check()
    errors = {f.id: f.error for f in form.fields("demo.contact") if f.error is not None}
    assert list(errors) == [field] and errors[field] is not None
    assert errors[field].key == problem
    if field != "delivery":
        assert form.focus == field  # the keypad goes where the problem is


def test_a_good_form_passes_and_wipe_drops_every_value() -> None:
    form = entry()
    form.apply(TextEntered("field.phone", "13812345678"))
    form.apply(TextEntered("field.day", "20261208"))
    form.apply(Tap("choice.delivery.pickup"))
    assert form.check()
    assert date_value(form.values["day"]) == dt.date(2026, 12, 8)
    form.wipe()
    assert form.values == {}


def test_text_for_an_unknown_field_is_refused() -> None:
    form = entry()
    assert not form.apply(TextEntered("field.nope", "1"))
    assert not form.apply(TextEntered("phone", "1"))


def test_a_form_screen_offers_the_keypad_only_for_a_keyed_field() -> None:
    fields = entry().fields("demo.contact")
    typing = Form("demo.contact", t("demo.contact.title"), fields, focus="phone")
    ids = [a.id for a in form_targets(typing)]
    assert ids[:2] == ["field.phone", "field.day"]
    assert "key.0" in ids and "key.delete" in ids and "choice.delivery.mail" in ids
    choosing = Form("demo.contact", t("demo.contact.title"), fields, focus=None)
    assert not any(i.startswith("key.") for i in (a.id for a in form_targets(choosing)))

"""The catalogue parser: the shipped content file, its translations, errors for bad content."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.catalogue import LANGUAGES, CatalogueError, ItemKind, parse_catalogue

CONTENT = Path(__file__).resolve().parents[2] / "terminal/content/catalogue.toml"


def shipped() -> dict[str, Any]:
    with CONTENT.open("rb") as f:
        return tomllib.load(f)


def minimal() -> dict[str, Any]:
    """The smallest valid content: one instant item and one application item."""
    return {
        "items": [
            {
                "id": "proof",
                "kind": "instant",
                "title": {"zh_CN": "参保证明打印", "en": "Print proof"},
            },
            {
                "id": "enroll",
                "kind": "application",
                "title": {"zh_CN": "参保登记", "en": "Enrollment"},
                "guide": {
                    "time_limit_working_days": 5,
                    "fees": {"zh_CN": "不收费", "en": "Free"},
                    "department": {"zh_CN": "社保经办机构", "en": "Social insurance agency"},
                    "guide_url": "https://example.com/guide/enroll",
                    "legal_basis": [{"zh_CN": "《社会保险法》", "en": "Social Insurance Law"}],
                    "materials": [
                        {"id": "id_card", "name": {"zh_CN": "居民身份证", "en": "ID card"}},
                        {
                            "id": "photo",
                            "name": {"zh_CN": "照片", "en": "Photo"},
                            "notes": {"zh_CN": "1张", "en": "1 photo"},
                            "deferrable": True,
                        },
                    ],
                },
            },
        ]
    }


def test_the_shipped_content_file_parses() -> None:
    catalogue = parse_catalogue(shipped())
    proof = catalogue.item("ssc_enrollment_proof")
    assert proof is not None and proof.kind is ItemKind.INSTANT and proof.guide is None
    assert proof.title.zh == "社会保险参保证明打印"
    applications = [item for item in catalogue.items if item.kind is ItemKind.APPLICATION]
    assert applications and all(item.guide is not None for item in applications)
    pension = catalogue.item("resident_pension_enrollment")
    assert pension is not None and pension.guide is not None
    names = [m.name.zh for m in pension.guide.materials]
    assert names[:3] == ["居民身份证", "户口簿", "社会保障卡"]
    assert pension.guide.time_limit_working_days == 5
    assert pension.guide.fees.zh == "不收费"
    assert any("国发〔2014〕8号" in basis.zh for basis in pension.guide.legal_basis)
    assert any(m.deferrable for m in pension.guide.materials)
    assert pension.guide.guide_url.startswith("https://")
    assert catalogue.version


def test_translations_cover_every_text_in_both_languages() -> None:
    catalogue = parse_catalogue(minimal())
    tables = catalogue.translations()
    assert set(tables) == set(LANGUAGES)
    assert tables["zh_CN"].keys() == tables["en"].keys()
    assert tables["zh_CN"] == {
        "catalogue.proof.title": "参保证明打印",
        "catalogue.enroll.title": "参保登记",
        "catalogue.enroll.fees": "不收费",
        "catalogue.enroll.department": "社保经办机构",
        "catalogue.enroll.legal_basis.1": "《社会保险法》",
        "catalogue.enroll.materials.id_card.name": "居民身份证",
        "catalogue.enroll.materials.photo.name": "照片",
        "catalogue.enroll.materials.photo.notes": "1张",
    }
    assert tables["en"]["catalogue.enroll.materials.photo.notes"] == "1 photo"


def test_shipped_translations_are_complete() -> None:
    tables = parse_catalogue(shipped()).translations()
    assert tables["zh_CN"].keys() == tables["en"].keys()
    assert len(tables["zh_CN"]) > 20
    for lang in LANGUAGES:
        assert all(text.strip() for text in tables[lang].values())


def test_parsing_keeps_menu_order_and_material_flags() -> None:
    catalogue = parse_catalogue(minimal())
    assert [item.id for item in catalogue.items] == ["proof", "enroll"]
    enroll = catalogue.item("enroll")
    assert enroll is not None and enroll.guide is not None
    assert [(m.id, m.deferrable) for m in enroll.guide.materials] == [
        ("id_card", False),
        ("photo", True),
    ]
    assert catalogue.item("missing") is None


def _set(data: dict[str, Any], path: str, value: object) -> None:
    """Set (or with ``...`` delete) the value at a dotted path; list indexes are numbers."""
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        ("items.0.title.en", ..., "items[0].title.en", "missing"),
        ("items.0.title.fr", "Imprimer", "items[0].title.fr", "unknown key"),
        ("items.0.titel", {"zh_CN": "x", "en": "x"}, "items[0].titel", "unknown key"),
        ("items.0.title.zh_CN", "  ", "items[0].title.zh_CN", "non-empty string"),
        ("items.0.id", "SSC-Proof", "items[0].id", "not a valid id"),
        ("items.0.id", "a.b", "items[0].id", "not a valid id"),
        ("items.1.id", "proof", "items[1].id", "appears twice"),
        ("items.0.kind", "instantly", "items[0].kind", "not one of instant, application"),
        ("items.0.guide", {}, "items[0].guide", "only application items"),
        ("items.1.guide", ..., "items[1].guide", "missing"),
        ("items.1.guide.time_limit_working_days", 0, "time_limit_working_days", "between"),
        ("items.1.guide.time_limit_working_days", True, "time_limit_working_days", "whole"),
        ("items.1.guide.time_limit_working_days", "5", "time_limit_working_days", "whole"),
        ("items.1.guide.guide_url", "http://x.example", "guide.guide_url", "https://"),
        ("items.1.guide.materials", [], "items[1].guide.materials", "non-empty list"),
        ("items.1.guide.materials.1.id", "id_card", "materials[1].id", "appears twice"),
        ("items.1.guide.materials.0.deferrable", "yes", "materials[0].deferrable", "true or"),
        ("items.1.guide.legal_basis.0", "《社会保险法》", "legal_basis[0]", "must be a table"),
        ("items.1.guide.fees", "不收费", "items[1].guide.fees", "must be a table"),
        ("items", {}, "items", "non-empty list"),
        ("version", 3, "version", "non-empty string"),
    ],
)
def test_bad_content_is_refused_with_its_place(
    path: str, value: object, where: str, problem: str
) -> None:
    data = copy.deepcopy(minimal())
    _set(data, path, value)
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data)
    assert where in caught.value.path
    assert problem in str(caught.value)


def test_an_unknown_top_level_key_is_reported() -> None:
    data = minimal()
    data["itmes"] = []
    with pytest.raises(CatalogueError, match="itmes: unknown key"):
        parse_catalogue(data)

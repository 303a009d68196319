"""The catalogue parser: the shipped content file, its lookups and translations, errors for bad
content, each naming where it is."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.catalogue import (
    LANGUAGES,
    CatalogueError,
    ItemKind,
    Localised,
    Material,
    parse_catalogue,
)
from flows.home import ERRAND_FLOWS

CONTENT = Path(__file__).resolve().parents[2] / "terminal/content/catalogue.toml"
FLOWS = ERRAND_FLOWS


def shipped() -> dict[str, Any]:
    with CONTENT.open("rb") as f:
        return tomllib.load(f)


def _text(zh: str, en: str) -> dict[str, str]:
    return {"zh_CN": zh, "en": en}


def minimal() -> dict[str, Any]:
    """The smallest valid content: two themes, two departments, an instant and an application."""
    return {
        "themes": [
            {"id": "social_insurance", "title": _text("社会保障", "Social insurance")},
            {"id": "disability", "title": _text("残疾人服务", "Disability")},
        ],
        "departments": [
            {
                "id": "human_resources",
                "name": _text("社保经办机构", "Social insurance agency"),
                "where": _text("人社窗口", "Social insurance window"),
            },
            {
                "id": "federation",
                "name": _text("残联", "Disabled persons' federation"),
                "where": _text("残联窗口", "Federation window"),
            },
        ],
        "items": [
            {
                "id": "proof",
                "kind": "instant",
                "flow": "proof",
                "theme": "social_insurance",
                "department": "human_resources",
                "popularity": 2,
                "title": _text("参保证明打印", "Print proof"),
                "guide": {
                    "time_limit_working_days": 0,
                    "fees": _text("不收费", "Free"),
                    "guide_url": "https://zwfw.example.com/guide/proof",
                    "conditions": [_text("已参保人员", "Insured people")],
                    "legal_basis": [_text("《社会保险法》", "Social Insurance Law")],
                    "materials": [
                        {"id": "card", "name": _text("社会保障卡", "Card"), "originals": 1},
                    ],
                },
            },
            {
                "id": "enroll",
                "kind": "application",
                "flow": "guide",
                "theme": "social_insurance",
                "department": "human_resources",
                "popularity": 1,
                "title": _text("参保登记", "Enrollment"),
                "guide": {
                    "time_limit_working_days": 5,
                    "fees": _text("不收费", "Free"),
                    "guide_url": "https://zwfw.example.com/guide/enroll",
                    "conditions": [_text("年满16周岁", "Aged 16+"), _text("非学生", "No student")],
                    "legal_basis": [_text("《社会保险法》", "Social Insurance Law")],
                    "materials": [
                        {"id": "id_card", "name": _text("居民身份证", "ID card"), "originals": 1,
                         "copies": 1},
                        {
                            "id": "photo",
                            "name": _text("照片", "Photo"),
                            "notes": _text("申领社保卡的", "If applying for a card"),
                            "originals": 2,
                            "deferrable": True,
                            "optional": True,
                        },
                    ],
                },
            },
        ],
    }


# --- the shipped content ------------------------------------------------------------------------


def test_the_shipped_content_file_parses_with_the_terminals_flows() -> None:
    catalogue = parse_catalogue(shipped(), flows=FLOWS)
    assert catalogue.version
    assert len(catalogue.items) >= 15
    assert len(catalogue.departments) >= 5
    assert len(catalogue.themes) >= 7
    # Every department and theme holds something: an empty one would be a dead end on the glass.
    assert all(catalogue.items_of_department(d.id) for d in catalogue.departments)
    assert all(catalogue.items_in_theme(t.id) for t in catalogue.themes)
    assert max(len(item.guide.materials) for item in catalogue.items) >= 7  # the UI pages them


def test_the_shipped_items_other_code_names_are_there() -> None:
    catalogue = parse_catalogue(shipped())
    proof = catalogue.item("ssc_enrollment_proof")
    assert proof is not None and proof.kind is ItemKind.INSTANT and proof.flow == "proof"
    assert proof.title.zh == "社会保险参保证明打印"
    assert proof.guide.materials  # a resident without a card still learns what the proof needs
    pension = catalogue.item("resident_pension_enrollment")
    assert pension is not None and pension.flow == "guide"
    names = [m.name.zh for m in pension.guide.materials]
    assert names[:3] == ["居民身份证", "户口簿", "社会保障卡"]
    assert pension.guide.time_limit_working_days == 5
    assert any("国发〔2014〕8号" in basis.zh for basis in pension.guide.legal_basis)
    subsidies = catalogue.item("disability_subsidies")
    assert subsidies is not None and subsidies.theme.id == "disability"
    assert any("国发〔2015〕52号" in basis.zh for basis in subsidies.guide.legal_basis)
    # Applications are lodged here (intake) or shown as a guide; at least three are lodged.
    flows = [item.flow for item in catalogue.items if item.kind is ItemKind.APPLICATION]
    assert set(flows) == {"guide", "intake"} and flows.count("intake") >= 3


def test_every_shipped_text_is_filled_in_both_languages() -> None:
    catalogue = parse_catalogue(shipped())
    for item in catalogue.items:
        guide = item.guide
        texts: list[Localised] = [item.title, guide.fees, *guide.conditions, *guide.legal_basis]
        texts += [item.summary] if item.summary is not None else []
        for material in guide.materials:
            texts += [material.name] + ([material.notes] if material.notes is not None else [])
            assert material.originals + material.copies > 0, (item.id, material.id)
        assert item.summary is not None, item.id
        assert guide.conditions, item.id
        # Placeholders stay placeholders: no made-up government address.
        assert guide.guide_url.startswith("https://zwfw.example.com/"), item.id
        for text in texts:
            assert text.zh.strip() and text.en.strip(), item.id
            assert text.zh != text.en, (item.id, text)  # a copied string is an untranslated one
            assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.en), (item.id, text.en)


def test_shipped_translations_are_complete() -> None:
    tables = parse_catalogue(shipped()).translations()
    assert tables["zh_CN"].keys() == tables["en"].keys()
    for lang in LANGUAGES:
        assert all(text.strip() for text in tables[lang].values())
    keys = tables["en"]
    assert keys["catalogue.theme.social_assistance.title"]
    assert keys["catalogue.department.civil_affairs.where"]
    assert keys["catalogue.minimum_subsistence.conditions.1"]


def test_most_used_lists_ranked_items_only_and_in_rank_order() -> None:
    catalogue = parse_catalogue(shipped())
    ranked = catalogue.most_used(100)
    assert ranked[0].id == "ssc_enrollment_proof"
    ranks = [item.popularity or 0 for item in ranked]
    assert ranks == sorted(ranks) and 0 not in ranks
    assert len(ranked) < len(catalogue.items)  # some items are not on the list
    assert catalogue.most_used(3) == ranked[:3]
    assert catalogue.most_used(0) == ()


# --- the model ----------------------------------------------------------------------------------


def test_lookups_by_theme_and_department() -> None:
    catalogue = parse_catalogue(minimal())
    assert [theme.id for theme in catalogue.themes] == ["social_insurance", "disability"]
    theme = catalogue.theme("social_insurance")
    assert theme is not None and theme.title.en == "Social insurance"
    assert catalogue.theme("missing") is None and catalogue.department("missing") is None
    assert [i.id for i in catalogue.items_in_theme("social_insurance")] == ["proof", "enroll"]
    assert catalogue.items_in_theme("disability") == ()
    assert catalogue.items_in_theme("missing") == ()
    department = catalogue.department("human_resources")
    assert department is not None and department.where.zh == "人社窗口"
    assert [i.id for i in catalogue.items_of_department("human_resources")] == ["proof", "enroll"]
    assert catalogue.items_of_department("federation") == ()
    assert [i.id for i in catalogue.most_used(5)] == ["enroll", "proof"]
    enroll = catalogue.item("enroll")
    assert enroll is not None and enroll.department is department and enroll.theme is theme


def test_parsing_keeps_menu_order_and_material_counts_and_flags() -> None:
    catalogue = parse_catalogue(minimal())
    assert [item.id for item in catalogue.items] == ["proof", "enroll"]
    enroll = catalogue.item("enroll")
    assert enroll is not None and enroll.flow == "guide" and enroll.popularity == 1
    assert [(m.id, m.originals, m.copies, m.deferrable, m.optional)
            for m in enroll.guide.materials] == [
        ("id_card", 1, 1, False, False),
        ("photo", 2, 0, True, True),
    ]
    assert [c.zh for c in enroll.guide.conditions] == ["年满16周岁", "非学生"]
    assert catalogue.item("missing") is None


def test_translations_cover_every_text_in_both_languages() -> None:
    tables = parse_catalogue(minimal()).translations()
    assert set(tables) == set(LANGUAGES)
    assert tables["zh_CN"].keys() == tables["en"].keys()
    assert tables["zh_CN"] == {
        "catalogue.theme.social_insurance.title": "社会保障",
        "catalogue.theme.disability.title": "残疾人服务",
        "catalogue.department.human_resources.name": "社保经办机构",
        "catalogue.department.human_resources.where": "人社窗口",
        "catalogue.department.federation.name": "残联",
        "catalogue.department.federation.where": "残联窗口",
        "catalogue.proof.title": "参保证明打印",
        "catalogue.proof.fees": "不收费",
        "catalogue.proof.conditions.1": "已参保人员",
        "catalogue.proof.legal_basis.1": "《社会保险法》",
        "catalogue.proof.materials.card.name": "社会保障卡",
        "catalogue.enroll.title": "参保登记",
        "catalogue.enroll.fees": "不收费",
        "catalogue.enroll.conditions.1": "年满16周岁",
        "catalogue.enroll.conditions.2": "非学生",
        "catalogue.enroll.legal_basis.1": "《社会保险法》",
        "catalogue.enroll.materials.id_card.name": "居民身份证",
        "catalogue.enroll.materials.photo.name": "照片",
        "catalogue.enroll.materials.photo.notes": "申领社保卡的",
    }
    assert tables["en"]["catalogue.department.human_resources.where"] == (
        "Social insurance window"
    )


# --- bad content --------------------------------------------------------------------------------


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


GUIDE = "items.1.guide"
MATERIAL = "items.1.guide.materials.0"


@pytest.mark.parametrize(
    ("path", "value", "where", "problem"),
    [
        # texts and ids
        ("items.0.title.en", ..., "items[0].title.en", "missing"),
        ("items.0.title.fr", "Imprimer", "items[0].title.fr", "unknown key"),
        ("items.0.titel", _text("x", "x"), "items[0].titel", "unknown key"),
        ("items.0.title.zh_CN", "  ", "items[0].title.zh_CN", "non-empty string"),
        ("items.0.id", "SSC-Proof", "items[0].id", "not a valid id"),
        ("items.0.id", "a.b", "items[0].id", "not a valid id"),
        ("items.0.id", "theme", "items[0].id", "reserved"),
        ("items.0.id", "department", "items[0].id", "reserved"),
        ("items.1.id", "proof", "items[1].id", "appears twice"),
        ("items.0.kind", "instantly", "items[0].kind", "not one of instant, application"),
        ("items", {}, "items", "non-empty list"),
        ("version", 3, "version", "non-empty string"),
        # themes and departments
        ("themes", ..., "themes", "non-empty list"),
        ("themes.1.id", "social_insurance", "themes[1].id", "appears twice"),
        ("themes.0.title", ..., "themes[0].title", "missing"),
        ("departments.1.id", "human_resources", "departments[1].id", "appears twice"),
        ("departments.0.where", ..., "departments[0].where", "missing"),
        ("departments.0.where.en", "", "departments[0].where.en", "non-empty string"),
        ("departments.0.phone", "12345", "departments[0].phone", "unknown key"),
        ("items.1.theme", "housing", "items[1].theme", "no theme 'housing'"),
        ("items.1.theme", ..., "items[1].theme", "missing"),
        ("items.1.department", "police", "items[1].department", "no department 'police'"),
        # flow and popularity
        ("items.1.flow", ..., "items[1].flow", "missing"),
        ("items.1.flow", "Guide", "items[1].flow", "not a valid id"),
        ("items.1.flow", "apply", "items[1].flow", "no flow 'apply' (known: guide, intake, proof)"),
        ("items.1.popularity", 0, "items[1].popularity", "between 1 and 999"),
        ("items.1.popularity", 2, "items[1].popularity", "rank 2 appears twice"),
        # the guide
        ("items.0.guide", ..., "items[0].guide", "missing"),
        (f"{GUIDE}.materials", [], "items[1].guide.materials", "guide with no materials"),
        (f"{GUIDE}.materials", ..., "items[1].guide.materials", "guide with no materials"),
        (f"{GUIDE}.materials", "id card", "items[1].guide.materials", "non-empty list"),
        (f"{GUIDE}.conditions", [], "items[1].guide.conditions", "who qualifies"),
        (f"{GUIDE}.department", _text("x", "x"), "items[1].guide.department", "unknown key"),
        (f"{GUIDE}.time_limit_working_days", -1, "time_limit_working_days", "between"),
        (f"{GUIDE}.time_limit_working_days", 251, "time_limit_working_days", "between"),
        (f"{GUIDE}.time_limit_working_days", True, "time_limit_working_days", "whole"),
        (f"{GUIDE}.time_limit_working_days", "5", "time_limit_working_days", "whole"),
        (f"{GUIDE}.guide_url", "http://x.example", "guide.guide_url", "https://"),
        (f"{GUIDE}.legal_basis.0", "《社会保险法》", "legal_basis[0]", "must be a table"),
        (f"{GUIDE}.fees", "不收费", "items[1].guide.fees", "must be a table"),
        # materials
        ("items.1.guide.materials.1.id", "id_card", "materials[1].id", "appears twice"),
        (f"{MATERIAL}.deferrable", "yes", "materials[0].deferrable", "true or false"),
        (f"{MATERIAL}.originals", 10, "materials[0].originals", "between 0 and 9"),
        (f"{MATERIAL}.copies", -1, "materials[0].copies", "between 0 and 9"),
        (f"{MATERIAL}.copies", 1.5, "materials[0].copies", "whole number"),
        ("items.1.guide.materials.1.originals", 0, "materials[1].originals", "at least one"),
        ("items.1.guide.materials.1.notes", ..., "materials[1].notes", "optional material"),
        (f"{MATERIAL}.optional", 1, "materials[0].optional", "true or false"),
    ],
)
def test_bad_content_is_refused_with_its_place(
    path: str, value: object, where: str, problem: str
) -> None:
    data = copy.deepcopy(minimal())
    _set(data, path, value)
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data, flows=FLOWS)
    assert where in caught.value.path
    assert problem in str(caught.value)


def test_an_unknown_flow_passes_when_the_flows_are_not_given() -> None:
    data = minimal()
    data["items"][1]["flow"] = "apply"
    catalogue = parse_catalogue(data)
    enroll = catalogue.item("enroll")
    assert enroll is not None and enroll.flow == "apply"


def test_an_unknown_top_level_key_is_reported() -> None:
    data = minimal()
    data["itmes"] = []
    with pytest.raises(CatalogueError, match="itmes: unknown key"):
        parse_catalogue(data)


def test_a_material_built_in_code_checks_its_counts() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Material("x", Localised("x", "x"), originals=0)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        Material("x", Localised("x", "x"), copies=10)

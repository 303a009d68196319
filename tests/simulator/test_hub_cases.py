"""The simulated hub's case desk over real HTTP: submissions with pages, refusals, caps,
idempotency, progress over simulated time, a resident's cases, and what it keeps."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.hub import CaseStatus
from simulator.hub import CHINA_STANDARD_TIME, SimHub
from simulator.hub_records import SPECIAL_PEOPLE, delivery_address

PERSON = "34052419800101001X"  # valid, listed nowhere, has an address on record
NO_ADDRESS = "330106198506120015"  # valid, listed nowhere, no address on record
PHONE = "13912345678"
MONDAY = dt.datetime(2025, 3, 3, 9, 30, tzinfo=CHINA_STANDARD_TIME)
ITEM = "resident_pension_enrollment"  # 5 working days; photo optional and deferrable
JPEG = b"\xff\xd8\xff\xe0" + b"scan" * 100 + b"\xff\xd9"
HOUR = 3600

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: MONDAY) as hub:
        yield hub


def materials(**changes: Any) -> list[dict[str, Any]]:
    entries = {
        "id_card": {"outcome": "scanned", "pages": 2},
        "household_register": {"outcome": "scanned", "pages": 1},
        "social_security_card": {"outcome": "scanned", "pages": 1},
        "photo": {"outcome": "not_applicable", "pages": 0},
        "enrollment_form": {"outcome": "scanned", "pages": 1},
    } | changes
    return [{"material_id": k, "deferred_until": None} | v for k, v in entries.items() if v]


def submission(reference: str = "T-0001-20250303-0001", **changes: Any) -> dict[str, Any]:
    entries = changes.pop("materials", None) or materials()
    pages = [
        {"material_id": m["material_id"], "page": n}
        for m in entries for n in range(1, m["pages"] + 1)
    ]  # fmt: skip
    return {
        "reference": reference,
        "item_id": ITEM,
        "id_number": PERSON,
        "phone": PHONE,
        "delivery": "mail",
        "pickup_site": "",
        "materials": entries,
        "pages": [p | {"sha256": hashlib.sha256(JPEG).hexdigest()} for p in pages],
        "terminal_id": "T-0001",
        "submitted_at": "2025-03-03T09:29:00+08:00",
    } | changes


def form(fields: dict[str, Any], pages: list[bytes] | None = None) -> tuple[bytes, str]:
    """The multipart body the terminal sends: the JSON part, then one part per page."""
    if pages is None:
        pages = [JPEG] * len(fields["pages"])
    boundary = "test-boundary-7f3a"
    chunks = [
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"submission\"\r\n"
        "Content-Type: application/json\r\n\r\n".encode(),
        json.dumps(fields, ensure_ascii=False).encode(),
    ]
    for page in pages:
        chunks += [
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"page\"; "
            "filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".encode(),
            page,
        ]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def request(
    hub: SimHub, method: str, path: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, Any]:
    req = urllib.request.Request(hub.url + path, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with _OPENER.open(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def submit(
    hub: SimHub, fields: dict[str, Any], pages: list[bytes] | None = None
) -> tuple[int, Any]:
    body, content_type = form(fields, pages)
    return request(hub, "POST", "/v1/cases", body, content_type)


def progress(hub: SimHub, case_ref: str) -> dict[str, Any]:
    status, answer = request(hub, "GET", f"/v1/cases/{case_ref}")
    assert status == 200, answer
    return dict(answer)


# --- submitting ------------------------------------------------------------------------------


def test_a_submission_makes_a_case_with_its_number_authority_and_promise(hub: SimHub) -> None:
    status, accepted = submit(hub, submission())
    assert status == 201, accepted
    assert accepted == {
        "reference": "T-0001-20250303-0001",
        "case_number": "SB20250303000001",
        # Social insurance for someone registered in 安徽 is decided there (异地通办).
        "authority": "安徽省人力资源和社会保障厅",
        "cross_region": True,
        "received_at": "2025-03-03T09:30:00+08:00",
        "item_id": ITEM,
        "promised_by": "2025-03-10",  # 5 working days after Monday: next Monday
        "status": "created",
    }
    [case] = hub.cases()
    assert [(p.material_id, p.page) for p in case.pages] == [
        ("id_card", 1), ("id_card", 2), ("household_register", 1),
        ("social_security_card", 1), ("enrollment_form", 1),
    ]  # fmt: skip
    assert all(p.path.read_bytes() == JPEG for p in case.pages)
    assert case.phone_masked == "139****5678"


def test_the_same_reference_answers_the_same_case_and_stores_nothing_new(hub: SimHub) -> None:
    first = submit(hub, submission())[1]
    status, again = submit(hub, submission())
    assert status == 200
    assert again | {"status": "created"} == first
    assert again["status"] == "duplicate"
    assert len(hub.cases()) == 1
    # Another reference is another case, numbered on.
    assert submit(hub, submission("T-0001-20250303-0002"))[1]["case_number"] == "SB20250303000002"


def test_a_reference_with_the_longest_terminal_id_is_taken(hub: SimHub) -> None:
    # L-<terminal id of 64>-<yyyymmdd>-<nnnn>: longer than an identifier, still a reference.
    long_reference = "L-" + "T" * 64 + "-20250303-0001"
    assert submit(hub, submission(long_reference))[0] == 201
    assert progress(hub, long_reference)["reference"] == long_reference
    assert submit(hub, submission(long_reference + "0" * 50))[1]["error"] == "invalid_submission"


def test_a_reference_reused_for_another_person_is_a_conflict(hub: SimHub) -> None:
    submit(hub, submission())
    status, answer = submit(hub, submission(id_number="510107199211300021"))
    assert (status, answer["error"]) == (409, "reference_conflict")


def test_case_numbers_share_the_day_sequence_with_documents(hub: SimHub) -> None:
    status, _ = request(
        hub, "POST", "/v1/errands/ssc_enrollment_proof/run",
        json.dumps({"id_number": PERSON, "terminal_id": "T-0001"}).encode(), "application/json",
    )  # fmt: skip
    assert status == 200
    assert submit(hub, submission())[1]["case_number"] == "SB20250303000002"


def test_a_locally_decided_item_names_the_receiving_county(hub: SimHub) -> None:
    fields = submission(
        item_id="pension_qualification_check",
        materials=[{"material_id": "id_card", "outcome": "scanned", "pages": 1}],
    )
    assert submit(hub, fields)[1]["authority"] == "安徽省人力资源和社会保障厅"
    elderly = submission(
        "T-0001-20250303-0002",
        item_id="elderly_allowance",
        materials=[
            {"material_id": "id_card", "outcome": "scanned", "pages": 1},
            {"material_id": "household_register", "outcome": "scanned", "pages": 1},
            {"material_id": "application_form", "outcome": "scanned", "pages": 1},
            {"material_id": "bank_account", "outcome": "deferred", "pages": 0,
             "deferred_until": "2025-03-10"},
        ],
    )  # fmt: skip
    answer = submit(hub, elderly)[1]
    assert (answer["authority"], answer["cross_region"]) == ("示范县民政局", False)


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("person", list(SPECIAL_PEOPLE.values()), ids=lambda p: p.refusal)
def test_a_special_person_is_refused_with_their_reason(hub: SimHub, person: Any) -> None:
    status, answer = submit(hub, submission(id_number=person.id_number))
    assert (status, answer["error"]) == (409, person.refusal)
    assert person.id_number not in json.dumps(answer)
    assert hub.cases() == []


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"item_id": "driving_licence"}, 404, "unknown_errand"),
        ({"item_id": "ssc_enrollment_proof"}, 404, "unknown_errand"),  # instant, not lodged
        ({"id_number": PERSON[:-1] + "5"}, 422, "invalid_id"),
        ({"phone": "02012345678"}, 422, "invalid_submission"),
        ({"delivery": "drone"}, 422, "invalid_submission"),
        ({"delivery": "pickup", "pickup_site": ""}, 422, "invalid_submission"),
        ({"submitted_at": "2025-03-03T09:29:00"}, 422, "invalid_submission"),
        ({"reference": "T 0001"}, 422, "invalid_submission"),
        ({"id_number": NO_ADDRESS}, 422, "no_address"),
        # A required material missing, or deferred where the guide allows no 容缺.
        ({"materials": materials(enrollment_form=None)}, 422, "materials_incomplete"),
        (
            {"materials": materials(enrollment_form={"outcome": "deferred", "pages": 0,
                                                     "deferred_until": "2025-03-10"})},
            422, "materials_incomplete",
        ),
        ({"materials": materials(id_card={"outcome": "not_applicable", "pages": 0})},
         422, "materials_incomplete"),
        ({"materials": materials(birth_certificate={"outcome": "scanned", "pages": 1})},
         422, "invalid_submission"),
        (
            {"materials": materials(photo={"outcome": "deferred", "pages": 0,
                                           "deferred_until": "2025-03-03"})},
            422, "invalid_submission",  # deferred to today: that is no deferral
        ),
    ],
)  # fmt: skip
def test_a_submission_the_hub_will_not_take_is_refused_with_a_code(
    hub: SimHub, changes: dict[str, Any], status: int, code: str
) -> None:
    answer = submit(hub, submission(**changes))
    assert (answer[0], answer[1]["error"]) == (status, code), answer
    for value in (PERSON, PHONE, NO_ADDRESS):
        assert value not in answer[1]["message"]
    assert hub.cases() == []


def test_pages_must_match_the_list_be_jpegs_and_arrive_intact(hub: SimHub) -> None:
    fields = submission()
    assert submit(hub, fields, [JPEG] * 4)[1]["error"] == "invalid_submission"  # one missing
    assert submit(hub, fields, [JPEG] * 4 + [b"GIF89a..."])[1]["error"] == "invalid_submission"
    damaged = JPEG[:-3] + b"!!!"
    answer = submit(hub, fields, [JPEG] * 4 + [damaged])[1]
    assert (answer["error"], answer["message"]) == (
        "invalid_submission", "page part 5 does not match its sha256"
    )
    # Numbered 1, 3: page 2 of the ID card never came.
    gap = submission()
    gap["pages"][1]["page"] = 3
    assert submit(hub, gap)[1]["error"] == "invalid_submission"
    assert hub.cases() == []


def test_a_page_over_the_cap_is_413(hub: SimHub) -> None:
    big = JPEG + bytes(1024 * 1024)
    fields = submission(
        item_id="pension_qualification_check",
        materials=[{"material_id": "id_card", "outcome": "scanned", "pages": 1}],
    )
    fields["pages"][0]["sha256"] = hashlib.sha256(big).hexdigest()
    status, answer = submit(hub, fields, [big])
    assert (status, answer["error"]) == (413, "too_large")


def test_a_body_over_the_cap_is_refused_before_it_is_read(hub: SimHub) -> None:
    # The hub answers from the Content-Length alone, without waiting for 9 MiB.
    port = int(hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 9437184\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):  # the hub closes: the body it refused is unread
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == b"413"
    assert json.loads(body)["error"] == "too_large"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{}", "application/json", 415, "unsupported_media_type"),
        (b"--b--\r\n", "multipart/form-data", 400, "bad_request"),  # no boundary
        (b"preamble\r\n--b--\r\n", "multipart/form-data; boundary=b", 400, "bad_request"),
        (b"--b\r\nno headers end", "multipart/form-data; boundary=b", 400, "bad_request"),
        (b"--b\r\nContent-Disposition: form-data; name=\"submission\"\r\n\r\n{}",
         "multipart/form-data; boundary=b", 400, "bad_request"),  # no closing boundary
        (b"--b\r\nContent-Disposition: form-data; name=\"page\"\r\n\r\nx\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "bad_request"),  # no JSON part first
        (b"--b\r\nContent-Disposition: form-data; name=\"submission\"\r\n\r\n{}\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "bad_request"),  # JSON part as text/plain
        (b"--b\r\nContent-Disposition: form-data; name=\"submission\"\r\nContent-Type: "
         b"application/json\r\n\r\n{not json\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "bad_request"),
        (b"--b\r\nContent-Disposition: attachment; name=\"submission\"\r\n\r\n{}\r\n--b--\r\n",
         "multipart/form-data; boundary=b", 400, "bad_request"),
    ],
)  # fmt: skip
def test_a_form_not_framed_as_documented_is_refused_plainly(
    hub: SimHub, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer = request(hub, "POST", "/v1/cases", body, content_type)
    assert (answer[0], answer[1]["error"]) == (status, code), answer


def test_more_parts_than_pages_allowed_is_refused(hub: SimHub) -> None:
    fields = submission()
    answer = submit(hub, fields, [JPEG] * 40)
    assert answer[0] == 400
    assert "more than 33 parts" in answer[1]["message"]


# --- progress --------------------------------------------------------------------------------


def test_a_case_moves_on_with_the_hubs_clock(hub: SimHub) -> None:
    case_number = submit(hub, submission())[1]["case_number"]
    seen = [progress(hub, case_number)["status"]]
    for _ in range(6 * 24):  # six days, an hour at a time
        hub.advance(HOUR)
        status = progress(hub, case_number)["status"]
        if status != seen[-1]:
            seen.append(status)
    assert seen == ["received", "accepted", "in_review", "approved", "delivered"]
    final = progress(hub, case_number)
    # Decided by the promised day, delivered after.
    assert final["received_on"] == "2025-03-03"
    assert final["promised_by"] == "2025-03-10"
    assert dt.datetime.fromisoformat(final["updated_at"]) <= hub.now()


def test_the_pace_is_the_same_for_the_same_reference_in_another_hub(
    hub: SimHub, tmp_path: Path
) -> None:
    submit(hub, submission())
    hub.advance(20 * HOUR)
    with SimHub(db_path=tmp_path / "other.sqlite", clock=lambda: MONDAY) as other:
        submit(other, submission())
        other.advance(20 * HOUR)
        assert hub.cases()[0].updated_at == other.cases()[0].updated_at


def test_a_case_with_a_deferred_material_waits_for_it(hub: SimHub) -> None:
    deferred = {"outcome": "deferred", "pages": 0, "deferred_until": "2025-03-10"}
    case_number = submit(hub, submission(materials=materials(photo=deferred)))[1]["case_number"]
    hub.advance(HOUR)
    assert progress(hub, case_number)["status"] == "awaiting_materials"
    hub.advance(30 * 24 * HOUR)
    assert progress(hub, case_number)["status"] == "awaiting_materials"

    hub.supply_materials(case_number)
    hub.advance(5 * HOUR)
    assert progress(hub, case_number)["status"] == "in_review"
    hub.advance(5 * 24 * HOUR)
    assert progress(hub, case_number)["status"] == "delivered"


def test_a_rejected_case_ends_rejected_and_is_never_delivered(hub: SimHub) -> None:
    case_number = submit(hub, submission())[1]["case_number"]
    hub.reject_case(case_number)
    hub.advance(30 * 24 * HOUR)
    assert progress(hub, case_number)["status"] == "rejected"
    assert hub.cases()[0].status is CaseStatus.REJECTED
    with pytest.raises(KeyError):
        hub.reject_case("SB20250303999999")


def test_progress_by_reference_and_an_unknown_case(hub: SimHub) -> None:
    accepted = submit(hub, submission())[1]
    by_reference = progress(hub, "T-0001-20250303-0001")
    assert by_reference == progress(hub, accepted["case_number"])
    assert by_reference["reference"] == "T-0001-20250303-0001"
    assert request(hub, "GET", "/v1/cases/SB20250303999999") == (
        404,
        {"error": "case_unknown", "message": "no case has this number or reference"},
    )


def test_a_residents_cases_newest_first_and_nobody_elses(hub: SimHub) -> None:
    submit(hub, submission())
    hub.advance(HOUR)
    submit(hub, submission("T-0001-20250303-0002"))
    other = submission("T-0001-20250303-0003", id_number="510107199211300021")
    assert submit(hub, other)[0] == 201

    status, answer = request(
        hub, "POST", "/v1/residents/cases",
        json.dumps({"id_number": PERSON}).encode(), "application/json",
    )  # fmt: skip
    assert status == 200
    assert [c["reference"] for c in answer["cases"]] == [
        "T-0001-20250303-0002", "T-0001-20250303-0001"
    ]
    assert [c["status"] for c in answer["cases"]] == ["received", "accepted"]


def test_a_submitted_case_can_be_rated_for_its_item(hub: SimHub) -> None:
    case_number = submit(hub, submission())[1]["case_number"]
    rating = {"case_number": case_number, "errand_id": ITEM, "level": 5, "terminal_id": "T-0001",
              "rated_at": "2025-03-03T09:40:00+08:00"}  # fmt: skip
    body = json.dumps(rating).encode()
    assert request(hub, "POST", "/v1/ratings", body, "application/json")[0] == 201
    wrong = json.dumps(rating | {"errand_id": "elderly_allowance"}).encode()
    assert request(hub, "POST", "/v1/ratings", wrong, "application/json")[0] == 422


# --- addresses -------------------------------------------------------------------------------


def test_the_address_on_record_or_none(hub: SimHub) -> None:
    def address(person: str) -> tuple[int, Any]:
        body = json.dumps({"id_number": person}).encode()
        return request(hub, "POST", "/v1/residents/address", body, "application/json")

    assert address(PERSON) == (200, {"address": delivery_address(PERSON)})
    assert address(NO_ADDRESS) == (200, {"address": None})
    assert address(PERSON[:-1] + "5")[1]["error"] == "invalid_id"


# --- what the hub keeps ----------------------------------------------------------------------


def test_the_database_holds_no_id_number_and_no_phone(hub: SimHub, tmp_path: Path) -> None:
    submit(hub, submission())
    request(hub, "POST", "/v1/residents/cases",
            json.dumps({"id_number": PERSON}).encode(), "application/json")  # fmt: skip
    hub.stop()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
    assert b"SB20250303000001" in stored  # the search finds what is there
    for value in (PERSON, PERSON[:17], PHONE):
        assert value.encode() not in stored
        assert value.encode("utf-16-le") not in stored

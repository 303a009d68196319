"""docs/hub-api.yaml against the running simulated hub, by schemathesis: for every operation,
requests generated from the document (fitting it and not) get a documented status, a body of the
documented schema and type, and never a 5xx.

Bounded so the file runs in seconds: a few examples per operation, no shrinking. The hub is seeded
with a case, an appointment and a report first, so an operation's success answer is among those
checked, not only its refusals. An e-ID code is random and resolves once, so no example in the
document can reach its success answer: that operation's answers are checked once more, one of
each, with codes the hub issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from simulator.hub import CHINA_STANDARD_TIME, SimHub

REPO = Path(__file__).resolve().parents[2]
PERSON = "34052419800101001X"  # valid, listed nowhere, has an address on record
# The day the document's examples are written for: the seeded case is then its example case
# number (SB20250305000001), the seeded appointment its example id, and its example day of slots
# (2025-03-06) tomorrow, so the examples reach answers of success, not only refusals.
EXAMPLES_DAY = dt.datetime(2025, 3, 5, 9, 30, tzinfo=CHINA_STANDARD_TIME)
EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(REPO / "docs" / "hub-api.yaml")

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHub]:
    db_path = tmp_path_factory.mktemp("schema") / "hub.sqlite"
    with SimHub(db_path=db_path, clock=lambda: EXAMPLES_DAY) as hub:
        _seed(hub)
        yield hub


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure here is reproducible
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: Case[Any], hub: SimHub) -> None:
    case.call_and_validate(base_url=hub.url, checks=CHECKS, timeout=10)


def test_the_document_names_every_operation_the_hub_serves() -> None:
    labels = {result.ok().label for result in schema.get_all_operations()}  # type: ignore[union-attr]
    assert labels == {
        "GET /v1/health",
        "POST /v1/errands/{errand_id}/run",
        "GET /v1/documents/{verification_code}",
        "POST /v1/ratings",
        "POST /v1/residents/address",
        "POST /v1/cases",
        "GET /v1/cases/{case_ref}",
        "POST /v1/residents/cases",
        "GET /v1/slots",
        "POST /v1/appointments",
        "POST /v1/residents/appointments",
        "POST /v1/appointments/{appointment_id}/cancel",
        "POST /v1/reports",
        "POST /v1/identity/codes/resolve",
    }


def test_each_answer_to_resolving_an_e_id_code_is_as_documented(tmp_path: Path) -> None:
    # issued -> 200 with the person; the same again -> 409 code_used; another left past its
    # life -> 410 code_expired; one this hub never issued -> 404 code_unknown.
    operation = schema["/v1/identity/codes/resolve"]["POST"]
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: EXAMPLES_DAY) as hub:
        used = hub.issue_code(PERSON, "张三")
        expired = hub.issue_code(PERSON, "张三", ttl_s=60)
        never_issued = "EID1:" + "A" * 43
        answers = []
        for code in (used, used, expired, never_issued):
            if code == expired:
                hub.advance(61)
            case = operation.Case(
                body={"code": code, "terminal_id": "T-0001"}, media_type="application/json"
            )
            response = case.call_and_validate(base_url=hub.url, checks=CHECKS, timeout=10)
            answers.append((response.status_code, response.json().get("error")))
    assert answers == [
        (200, None), (409, "code_used"), (410, "code_expired"), (404, "code_unknown")
    ]


# --- seeding: one of each, through the API ---------------------------------------------------


def _seed(hub: SimHub) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(200) + b"\xff\xd9"
    submission = {
        "reference": "T-0001-SEED-0001",
        "item_id": "pension_qualification_check",
        "id_number": PERSON,
        "phone": "13800138000",
        "delivery": "pickup",
        "pickup_site": "ruian-tangxia",
        "materials": [{"material_id": "id_card", "outcome": "scanned", "pages": 1}],
        "pages": [
            {"material_id": "id_card", "page": 1, "sha256": hashlib.sha256(jpeg).hexdigest()}
        ],
        "terminal_id": "T-0001",
        "submitted_at": hub.now().isoformat(),
    }
    boundary = "seed-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"submission\"\r\n"
        "Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(submission).encode()
        + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"page\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + jpeg
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert _post(hub, "/v1/cases", body, f"multipart/form-data; boundary={boundary}") == 201
    report = {
        "reference": "R-SEED-0001", "problem": "printer_broken", "item_id": "", "phone": "",
        "terminal_id": "T-0001", "screen": "home.menu", "filed_at": hub.now().isoformat(),
    }  # fmt: skip
    assert _post(hub, "/v1/reports", json.dumps(report).encode()) == 201
    day = hub.now().date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    with _OPENER.open(
        f"{hub.url}/v1/slots?service_id=window&site_id=ruian-tangxia&day={day}", timeout=5
    ) as answer:
        slots: list[dict[str, Any]] = json.loads(answer.read())["slots"]
    free = next(slot for slot in slots if slot["free"])
    booking = {"id_number": PERSON, "service_id": "window", "site_id": "ruian-tangxia",
               "slot_id": free["slot_id"]}  # fmt: skip
    assert _post(hub, "/v1/appointments", json.dumps(booking).encode()) == 201


def _post(hub: SimHub, path: str, body: bytes, content_type: str = "application/json") -> int:
    request = urllib.request.Request(
        hub.url + path, data=body, method="POST", headers={"Content-Type": content_type}
    )
    with _OPENER.open(request, timeout=5) as answer:
        return int(answer.status)

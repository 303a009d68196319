"""The terminal's HTTPS + JSON adapter for the service hub port (``flows.hub.ServiceHub``).

Speaks the API of docs/hub-api.yaml. Failures come out as the port's errors, so the flows never
see urllib: no answer in time, no connection, a 5xx -> ``HubUnavailable`` (try again later); the
hub refusing the errand -> ``ErrandRefused`` with its reason; anything unreadable ->
``HubError("bad_answer")``. The ID number travels only in a request body, so it never appears
in a URL, an exception or a log line.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from flows.hub import (
    REFUSAL_REASONS,
    DocumentField,
    ErrandDocument,
    ErrandRefused,
    HubError,
    HubUnavailable,
    RatingSubmission,
)

log = logging.getLogger(__name__)

_REFUSAL_STATUSES = frozenset({404, 409, 422})
# Statuses that say "later", not "never": a gateway's timeout and rate limit, besides any 5xx.
# 401/403 come from an auth proxy or an expired credential in front of the hub: fixable, so
# "try again later", never a final refusal of what was sent.
_RETRY_LATER_STATUSES = frozenset({401, 403, 408, 429})
_MAX_ANSWER_BYTES = 256 * 1024  # a document is a few kB; more is not a hub answer
_READ_CHUNK = 16 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class _FieldAnswer(_Strict):
    label: str = Field(min_length=1, max_length=64)
    value: str = Field(max_length=512)


class _DocumentAnswer(_Strict):
    errand_id: str
    title: str = Field(min_length=1, max_length=64)
    case_number: str = Field(min_length=1, max_length=64)
    verification_code: str = Field(min_length=1, max_length=64)
    verify_url: str = Field(pattern=r"^https?://", max_length=512)
    issued_at: AwareDatetime
    fields: list[_FieldAnswer] = Field(max_length=64)


class _ErrorAnswer(_Strict):
    error: str = Field(min_length=1, max_length=64)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The hub API never redirects; following one would turn a POST into a GET elsewhere."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status, handled as bad_answer


class HttpServiceHub:
    """``ServiceHub`` over HTTP(S) with urllib.

    ``timeout_s`` bounds connecting and every wait for data, and the answer must be complete
    within ``timeout_s`` of the call, so a hub that trickles bytes is cut off too: a call gives up
    after about ``timeout_s``, twice that at the very worst. Name resolution is the resolver's
    own affair (give the hub by address, or in /etc/hosts, where the uplink's DNS is unreliable).
    ``ca_file`` pins the CA bundle that signs the hub's
    certificate; without it the system's CAs are trusted. Environment proxy settings are ignored
    on purpose: the kiosk's route to the hub is configuration, not ambient state.
    """

    def __init__(
        self, base_url: str, *, timeout_s: float = 8.0, ca_file: Path | None = None
    ) -> None:
        parts = urlsplit(base_url)
        # urllib would also open file:, ftp: and data: URLs; a hub is only ever http(s).
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("hub base URL must be http(s)://host[:port][/path]")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=tls),
            _NoRedirects(),
        )

    def __repr__(self) -> str:
        return f"HttpServiceHub({self._base_url!r}, timeout_s={self._timeout_s})"

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        """POST /v1/errands/{errand_id}/run and return the issued document."""
        path = f"/v1/errands/{quote(errand_id, safe='')}/run"
        status, body = self._exchange(path, {"id_number": id_number, "terminal_id": terminal_id})
        if status != 200:
            raise self._refusal_or_error(status, body)
        try:
            answer = _DocumentAnswer.model_validate_json(body)
        except ValidationError:
            # The validation error quotes the answer; it stays out of the message and the chain.
            raise HubError("hub sent an unreadable document", reason="bad_answer") from None
        if answer.errand_id != errand_id:
            raise HubError("hub answered for another errand", reason="bad_answer")
        issued_at = answer.issued_at
        offset = issued_at.utcoffset()
        if offset is not None:  # always, as it is aware; swap pydantic's tzinfo for the stdlib's
            issued_at = issued_at.replace(tzinfo=dt.timezone(offset))
        return ErrandDocument(
            errand_id=answer.errand_id,
            title=answer.title,
            case_number=answer.case_number,
            verification_code=answer.verification_code,
            verify_url=answer.verify_url,
            issued_at=issued_at,
            fields=tuple(DocumentField(f.label, f.value) for f in answer.fields),
        )

    def submit_rating(self, rating: RatingSubmission) -> None:
        """POST /v1/ratings; the hub keeps the first rating per case, so resending is safe."""
        if rating.rated_at.tzinfo is None:
            raise ValueError("rated_at must be timezone-aware")
        status, _body = self._exchange(
            "/v1/ratings",
            {
                "case_number": rating.case_number,
                "errand_id": rating.errand_id,
                "level": rating.level,
                "terminal_id": rating.terminal_id,
                "rated_at": rating.rated_at.isoformat(),
            },
        )
        if status in {200, 201}:
            return
        if 400 <= status < 500:
            # Final: the outbox must drop it rather than retry what will never be accepted.
            raise HubError(f"hub rejected the rating (HTTP {status})", reason="rating_rejected")
        raise HubError(f"hub answered the rating with HTTP {status}", reason="bad_answer")

    # --- the wire ------------------------------------------------------------------------------

    def _exchange(self, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        """POST JSON; return the status and body of any HTTP answer, 5xx and the like excepted."""
        request = urllib.request.Request(
            self._base_url + path,
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        deadline = time.monotonic() + self._timeout_s
        try:
            try:
                answer = self._opener.open(request, timeout=self._timeout_s)
                status = int(answer.status)
            except urllib.error.HTTPError as error_answer:
                answer = error_answer  # a non-2xx answer is still an answer, with a body to read
                status = error_answer.code
            with answer:
                if status >= 500 or status in _RETRY_LATER_STATUSES:
                    raise HubUnavailable(f"hub answered HTTP {status}")
                body = _read_capped(answer, deadline)
        except HubError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, unreachable, TLS), TimeoutError, resets, broken HTTP framing.
            # The message names the kind of failure; nothing from the request goes into it.
            raise HubUnavailable(f"hub not reachable: {_describe(exc)}") from exc
        log.debug("hub %s -> HTTP %d", path, status)  # paths carry no personal data
        return status, body

    def _refusal_or_error(self, status: int, body: bytes) -> HubError:
        if status in _REFUSAL_STATUSES:
            try:
                code = _ErrorAnswer.model_validate_json(body).error
            except ValidationError:
                code = None
            # No error code means the answer came from something else (a proxy's HTML 404
            # because the base URL is wrong), not from the hub refusing this person.
            if code is not None:
                reason = code if code in REFUSAL_REASONS else ErrandRefused.reason
                return ErrandRefused(f"hub refused the errand: {reason}", reason=reason)
        return HubError(f"hub answered HTTP {status}", reason="bad_answer")


def _read_capped(answer: Any, deadline: float) -> bytes:
    """The whole body, within the deadline and the size cap, read as it arrives."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise HubUnavailable("hub answer did not arrive in time")
        chunk: bytes = answer.read1(_READ_CHUNK)  # at most one wait of timeout_s per chunk
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > _MAX_ANSWER_BYTES:
            raise HubError("hub answer too large", reason="bad_answer")
        chunks.append(chunk)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__

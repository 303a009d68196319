"""The terminal's HTTPS + JSON adapter for the service hub port (``flows.hub.ServiceHub``).

Speaks the API of docs/hub-api.yaml with httpx. Failures come out as the port's errors, so the
flows never see httpx: no answer in time, no connection, a 5xx -> ``HubUnavailable`` (try again
later); the hub refusing the errand -> ``ErrandRefused`` with its reason; anything unreadable ->
``HubError("bad_answer")``. The ID number travels only in a request body, so it never appears
in a URL, an exception or a log line.

Every call ends within ``timeout_s`` whatever the far end does: name lookup, connect, TLS, the
status line and headers (dripped, or an endless run of ``100 Continue``) and the body all count
against one deadline. httpx's own timeouts are per phase and per read, so the exchange runs on
an asyncio event loop owned by the adapter, inside ``asyncio.timeout_at``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx
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

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from socket import _GetAddrInfoResult as _AddressInfo  # what asyncio's getaddrinfo returns

log = logging.getLogger(__name__)

T = TypeVar("T")

_REFUSAL_STATUSES = frozenset({404, 409, 422})
# Statuses that say "later", not "never": a gateway's timeout and rate limit, besides any 5xx.
# 401/403 come from an auth proxy or an expired credential in front of the hub: fixable, so
# "try again later", never a final refusal of what was sent.
_RETRY_LATER_STATUSES = frozenset({401, 403, 408, 429})
_MAX_ANSWER_BYTES = 256 * 1024  # a document is a few kB; more is not a hub answer
# The two lanes that call the hub (errands, ratings) need one connection each; a call waiting
# for a free one still waits within its own deadline.
_MAX_CONNECTIONS = 4
# Lookups left hanging by a dead resolver; beyond this a call fails at once instead of leaving
# yet another thread behind.
_MAX_PENDING_LOOKUPS = 4
# How much later than its deadline a caller stops waiting for the event loop, should the loop
# itself ever be stuck; the deadline inside the loop is what normally ends a call.
_BACKSTOP_S = 0.5
_CLOSE_WAIT_S = 1.0


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


class HttpServiceHub:
    """``ServiceHub`` over HTTP(S); safe to call from several threads at once.

    A call gives up with ``HubUnavailable`` once ``timeout_s`` has passed since it was made,
    name lookup included. The adapter owns one event loop thread (``hub-io``); ``close()`` stops
    it and cancels calls in flight. ``ca_file`` pins the CA bundle that signs the hub's
    certificate; without it the system's CAs are trusted. Environment proxy settings are ignored
    on purpose: the kiosk's route to the hub is configuration, not ambient state. Redirects are
    never followed (the hub API has none; following one would send the body elsewhere).
    """

    def __init__(
        self, base_url: str, *, timeout_s: float = 8.0, ca_file: Path | None = None
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("hub base URL must be http(s)://host[:port][/path]")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self._base_url = base_url.rstrip("/")
        try:
            httpx.URL(self._base_url)
        except httpx.InvalidURL:
            raise ValueError("hub base URL must be http(s)://host[:port][/path]") from None
        self._timeout_s = timeout_s
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        client = httpx.AsyncClient(
            verify=tls,
            trust_env=False,  # no proxies, certificates or netrc from the environment
            follow_redirects=False,
            # Per phase; the whole call is bounded by the deadline in ``_post``.
            timeout=httpx.Timeout(timeout_s),
            # No keep-alive: a connection idle for minutes behind a mobile uplink's NAT can be
            # dead without either end knowing, and would cost a resident a timed-out errand.
            limits=httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=0),
            # identity: a compressed answer could inflate far past the size cap in one read.
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
        )
        self._client = client
        self._loop = _HubLoop()
        self._thread = threading.Thread(target=self._loop.serve, name="hub-io", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False
        # Also winds down the loop of an adapter dropped without close(): tests, a rebuilt one.
        self._finalizer = weakref.finalize(self, self._loop.wind_down_soon, client)
        self._finalizer.atexit = False  # a daemon thread; exiting needs nothing from it

    def __repr__(self) -> str:
        return f"HttpServiceHub({self._base_url!r}, timeout_s={self._timeout_s})"

    def close(self) -> None:
        """Cancel calls in flight (they raise ``HubUnavailable``) and stop the loop thread."""
        with self._lock:
            self._closed = True
        self._finalizer()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=_CLOSE_WAIT_S)

    def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> ErrandDocument:
        """POST /v1/errands/{errand_id}/run and return the issued document."""
        path = f"/v1/errands/{quote(errand_id, safe='')}/run"
        status, body = self._exchange(path, {"id_number": id_number, "terminal_id": terminal_id})
        if status != 200:
            raise _refusal_or_error(status, body)
        answer = _read_document(body)
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
        deadline = time.monotonic() + self._timeout_s
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        status, answer = self._on_loop(self._post(path, body, deadline), deadline)
        log.debug("hub %s -> HTTP %d", path, status)  # paths carry no personal data
        return status, answer

    def _on_loop(self, call: Coroutine[Any, Any, T], deadline: float) -> T:
        """Run ``call`` on the adapter's loop and wait for it, at most until just past deadline."""
        with self._lock:
            if self._closed:
                call.close()
                raise HubUnavailable("hub adapter is closed")
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()) + _BACKSTOP_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("hub call outlived its deadline on the event loop")
        except concurrent.futures.CancelledError:
            pass  # cancelled by close()
        raise HubUnavailable("hub call abandoned")

    async def _post(self, path: str, body: bytes, deadline: float) -> tuple[int, bytes]:
        failure: str
        try:
            async with asyncio.timeout_at(deadline):
                return await self._post_unbounded(path, body)
        except (TimeoutError, httpx.TimeoutException):
            failure = "timed out"
        except (httpx.TransportError, OSError) as exc:
            # Refused, unreachable, TLS, resets, broken HTTP framing. Only the kind of failure is
            # kept: httpx's messages may quote the answer and its errors hold the request.
            failure = _describe(exc)
        # Raised here, outside the handlers, so that nothing of httpx is chained to it.
        raise HubUnavailable(f"hub not reachable: {failure}")

    async def _post_unbounded(self, path: str, body: bytes) -> tuple[int, bytes]:
        async with self._client.stream(
            "POST",
            self._base_url + path,
            content=body,
            headers={"Content-Type": "application/json"},
        ) as answer:
            status = answer.status_code
            if 500 <= status < 600 or status in _RETRY_LATER_STATUSES:
                raise HubUnavailable(f"hub answered HTTP {status}")
            # Not a final answer (101 Switching Protocols: what follows is not HTTP any more),
            # or no status HTTP defines.
            if not 200 <= status < 600:
                raise HubError(f"hub answered HTTP {status}", reason="bad_answer")
            return status, await _read_capped(answer)


def _read_document(body: bytes) -> _DocumentAnswer:
    try:
        return _DocumentAnswer.model_validate_json(body)
    except ValidationError:
        pass
    # Raised outside the handler: the validation error quotes the answer, which may echo the ID
    # number, so it must not hang off this error even as its suppressed context.
    raise HubError("hub sent an unreadable document", reason="bad_answer")


def _refusal_or_error(status: int, body: bytes) -> HubError:
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


async def _read_capped(answer: httpx.Response) -> bytes:
    """The whole body as sent (never decompressed), within the size cap."""
    chunks: list[bytes] = []
    size = 0
    # aclosing: a body cut off at the cap is closed now, not whenever its generator is collected.
    raw = cast("AsyncGenerator[bytes, None]", answer.aiter_raw())  # typed as an iterator, is one
    async with contextlib.aclosing(raw) as arriving:
        async for chunk in arriving:
            size += len(chunk)
            if size > _MAX_ANSWER_BYTES:
                raise HubError("hub answer too large", reason="bad_answer")
            chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:  # httpx wraps httpcore's error, which wraps the ssl or socket one
        if isinstance(seen, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        if isinstance(seen, _LookupsStuck):
            return "name lookups not answering"
        if isinstance(seen, socket.gaierror):
            return "hub name not resolved"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


class _LookupsStuck(socket.gaierror):
    """Too many earlier lookups are still waiting for the resolver to answer."""


class _HubLoop(asyncio.SelectorEventLoop):
    """An event loop whose name lookups run on daemon threads, so a hung one can be abandoned.

    asyncio resolves names in its default executor, whose threads the interpreter joins at exit
    (and ``asyncio.run`` on return): a resolver that never answers would hold every later
    lookup's worker and the terminal's shutdown for as long as the resolver's own timeout. A
    call cancelled at its deadline leaves its daemon thread behind; a few may wait at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lookups = threading.BoundedSemaphore(_MAX_PENDING_LOOKUPS)
        self._winding_down: asyncio.Task[None] | None = None  # held: tasks are weakly referenced

    def serve(self) -> None:
        """The ``hub-io`` thread: run until wound down, then close."""
        try:
            self.run_forever()
        finally:
            self.close()

    def wind_down_soon(self, client: httpx.AsyncClient) -> None:
        """Cancel the calls in flight, close ``client`` and stop; never blocks the caller.

        Safe from any thread: the garbage collector may call it on another adapter's loop.
        """
        with contextlib.suppress(RuntimeError):  # already closed
            self.call_soon_threadsafe(self._start_winding_down, client)

    def _start_winding_down(self, client: httpx.AsyncClient) -> None:
        if self._winding_down is None:
            self._winding_down = self.create_task(self._wind_down(client))

    async def _wind_down(self, client: httpx.AsyncClient) -> None:
        try:
            async with asyncio.timeout(_CLOSE_WAIT_S):
                calls = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
                await client.aclose()
                await self.shutdown_asyncgens()
        except Exception:  # a stuck close must not keep the thread running
            log.warning("hub adapter did not close its connections in time")
        finally:
            self.stop()

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> _AddressInfo:
        if not self._lookups.acquire(blocking=False):
            raise _LookupsStuck(socket.EAI_AGAIN, "earlier name lookups still unanswered")
        found: asyncio.Future[_AddressInfo] = self.create_future()

        def settle(result: _AddressInfo | None, error: Exception | None) -> None:
            if found.done():  # the call was cancelled at its deadline
                return
            if error is not None:
                found.set_exception(error)
            else:
                found.set_result(result or [])

        def resolve() -> None:
            result: _AddressInfo | None = None
            error: Exception | None = None
            try:
                result = socket.getaddrinfo(host, port, family, type, proto, flags)
            except Exception as exc:  # handed to the waiting call, which maps it
                error = exc
            finally:
                self._lookups.release()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=resolve, name="hub-dns", daemon=True).start()
        return await found

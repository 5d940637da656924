"""Vast.ai REST client: search, rent, observe, label, stop/start, destroy, logs.

Wire protocol: ``contracts/vastai-api.md``. One :class:`VastaiClient` per process
on one shared ``httpx.AsyncClient``; every request goes through
:meth:`VastaiClient._request`, the single chokepoint for time-outs, the
status-to-error table, ``Retry-After``, backoff with a total deadline,
per-attempt debug logs and metrics. The API key travels in the
``Authorization`` header only and is scrubbed from every message.

Create is never retried after an ambiguous failure (time-out, 5xx): the caller
reconciles with :meth:`VastaiClient.find_instances_by_label`.

About 500 lines on purpose: one method per endpoint of the contract the operator uses, all
through the one chokepoint; the wire models are in :mod:`.vastai_models`, the shared
listing in :mod:`.inventory`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import httpx
from pydantic import (
    BaseModel,
    SecretStr,
    ValidationError,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.wait import wait_random_exponential

from warmpool.operator import errors, metrics
from warmpool.operator.adapters.vastai_models import (
    Account,
    CreatedInstance,
    CreateInstanceRequest,
    Instance,
    Offer,
    OfferFilter,
    PortBinding,
    build_offer_query,
    lax_int,
    port_env,
)
from warmpool.operator.settings import OperatorSettings

__all__ = [
    "CreateInstanceRequest",
    "CreatedInstance",
    "Instance",
    "Offer",
    "OfferFilter",
    "PortBinding",
    "VastaiClient",
    "build_offer_query",
    "error_for",
    "parse_retry_after",
    "port_env",
]

logger = logging.getLogger(__name__)

# Route templates: the metric and log label of every call (never ids or keys).
SEARCH: Final = "POST /api/v0/bundles/"
CREATE: Final = "PUT /api/v0/asks/{id}/"
LIST_V1: Final = "GET /api/v1/instances/"
LIST_ALL: Final = "GET /api/v0/instances/"
SHOW: Final = "GET /api/v0/instances/{id}/"
LABEL: Final = "PUT /api/v0/instances/{id}/"
STATE: Final = LABEL  # the same endpoint: {"state": "stopped" | "running"} (contract §5.6)
DESTROY: Final = "DELETE /api/v0/instances/{id}/"
LOGS: Final = "PUT /api/v0/instances/request_logs/{id}/"
LOGS_RESULT: Final = "GET {result_url}"
USER: Final = "GET /api/v0/users/current/"
PAGE_SIZE: Final = 25
MAX_PAGES: Final = 1000

# ---------------------------------------------------------------- errors

_THRESHOLD = re.compile(r"threshold\s*=\s*([0-9]+(?:\.[0-9]+)?)")


def parse_retry_after(headers: Mapping[str, str], body: str, *, now: float) -> float | None:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else
    ``X-RateLimit-Reset`` (Unix time), else the ``threshold=`` number in the body."""
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw.strip()))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(raw) if raw.strip() else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    match = _THRESHOLD.search(body)
    return float(match.group(1)) if match else None


def _message(response: httpx.Response) -> str:
    """The server's explanation: ``msg``/``message``/``detail``/``error`` or plain text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(data, dict):
        for key in ("msg", "message", "detail", "error"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])[:300]
    return response.text.strip()[:300]


def error_for(
    response: httpx.Response,
    *,
    endpoint: str,
    is_create: bool = False,
    now: float = 0.0,
    scrub: Callable[[str], str] = str,
) -> errors.VastaiError:
    """The status → error table (one place)."""
    status = response.status_code
    text = scrub(_message(response))
    msg = f"{endpoint} → HTTP {status}: {text}"
    if status == 429:
        retry_after = parse_retry_after(response.headers, response.text, now=now)
        return errors.VastaiRateLimitedError(
            msg, status=status, endpoint=endpoint, retry_after=retry_after
        )
    if status >= 500:
        return errors.VastaiServerError(msg, status=status, endpoint=endpoint)
    if status in (401, 403) or (status == 404 and "invalid user key" in text.lower()):
        return errors.VastaiAuthError(msg, status=status, endpoint=endpoint)
    if is_create and status in (404, 409, 410):
        return errors.VastaiOfferUnavailableError(msg, status=status, endpoint=endpoint)
    if status in (404, 410):
        return errors.VastaiNotFoundError(msg, status=status, endpoint=endpoint)
    return errors.VastaiBadRequestError(msg, status=status, endpoint=endpoint)


# ---------------------------------------------------------------- client

Sleep = Callable[[float], Awaitable[None]]


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class VastaiClient:
    """Async Vast.ai client on an injected, shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        timeout: float = 15.0,
        deadline: float = 60.0,
        max_attempts: int = 6,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_log_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._http = http
        #: The machine writes its container log: what is read of it stops here.
        self._max_log_bytes = max_log_bytes
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._backoff = wait_random_exponential(multiplier=backoff_initial, max=backoff_max)
        self._sleep: Sleep = sleep or _asyncio_sleep
        self._clock = clock
        self._single_listing = True

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, settings: OperatorSettings) -> VastaiClient:
        return cls(
            http,
            base_url=settings.vastai_url,
            api_key=settings.vastai_api_key,
            timeout=settings.vastai_timeout,
            deadline=settings.vastai_deadline,
            max_log_bytes=settings.vastai_max_log_bytes,
        )

    # ------------------------------------------------------------ the calls

    async def search_offers(self, query: Mapping[str, Any]) -> list[Offer]:
        """Offers matching a query (see :func:`build_offer_query`), in the server's order."""
        data = await self._request(SEARCH, "/api/v0/bundles/", json_body=dict(query))
        rows = _field(data, "offers", SEARCH)
        if not isinstance(rows, list):
            raise errors.VastaiMalformedResponseError(
                f"{SEARCH}: 'offers' is not a list", endpoint=SEARCH
            )
        return [_parse(Offer, row, SEARCH) for row in rows]

    async def create_instance(
        self, offer_id: int, request: CreateInstanceRequest
    ) -> CreatedInstance:
        """Rent an offer. Never retried after a time-out or 5xx (the rental may exist:
        reconcile with :meth:`find_instances_by_label`); 429 is retried (nothing happened)."""
        data = await self._request(
            CREATE,
            f"/api/v0/asks/{int(offer_id)}/",
            json_body=request.to_body(),
            is_create=True,
        )
        contract = lax_int(data.get("new_contract")) if isinstance(data, dict) else None
        if not isinstance(contract, int):
            raise errors.VastaiMalformedResponseError(
                f"{CREATE}: no new_contract in the answer", endpoint=CREATE
            )
        key = data.get("instance_api_key")
        return CreatedInstance(
            instance_id=contract, instance_api_key=SecretStr(key) if isinstance(key, str) else None
        )

    async def list_instances(
        self, *, label: str | None = None, labels: Sequence[str] | None = None
    ) -> list[Instance]:
        """Every instance of the account (all pages of ``/api/v1/instances/``),
        optionally only those with ``label`` or one of ``labels``."""
        wanted = [*(labels or ()), *([label] if label is not None else [])]
        filters: dict[str, Any] = {"label": {"in": wanted}} if wanted else {}
        params: dict[str, str] = {
            "select_filters": json.dumps(filters),
            "order_by": json.dumps([{"col": "id", "dir": "asc"}]),
            "limit": str(PAGE_SIZE),
        }
        out: list[Instance] = []
        for _ in range(MAX_PAGES):
            data = await self._request(LIST_V1, "/api/v1/instances/", params=params)
            rows = _field(data, "instances", LIST_V1) or []
            if not isinstance(rows, list):
                raise errors.VastaiMalformedResponseError(
                    f"{LIST_V1}: 'instances' is not a list", endpoint=LIST_V1
                )
            out.extend(_parse(Instance, row, LIST_V1) for row in rows)
            token = data.get("next_token") if isinstance(data, dict) else None
            if not token:
                break
            params = {**params, "after_token": str(token)}
        else:
            raise errors.VastaiMalformedResponseError(
                f"{LIST_V1}: more than {MAX_PAGES} pages", endpoint=LIST_V1
            )
        if wanted:  # the server filters; re-check in case it ignored the filter
            out = [i for i in out if i.label in wanted]
        return out

    async def list_all_instances(self) -> list[Instance]:
        """Every instance of the account in ONE request (``GET /api/v0/instances/?owner=me``).

        The inventory lists once per refresh interval for every pool; the paginated v1
        listing would cost one request per 25 instances. The v0 listing answers all rows
        at once (it is what Vast.ai's own reaper uses). If the server refuses it (404,
        400), this client falls back to :meth:`list_instances` for good.
        """
        if self._single_listing:
            try:
                data = await self._request(LIST_ALL, "/api/v0/instances/", params={"owner": "me"})
            except (errors.VastaiNotFoundError, errors.VastaiBadRequestError):
                logger.info("%s refused; listing with the paginated v1 endpoint", LIST_ALL)
                self._single_listing = False
            else:
                rows = _field(data, "instances", LIST_ALL) or []
                if not isinstance(rows, list):
                    raise errors.VastaiMalformedResponseError(
                        f"{LIST_ALL}: 'instances' is not a list", endpoint=LIST_ALL
                    )
                return [_parse(Instance, row, LIST_ALL) for row in rows]
        return await self.list_instances()

    async def find_instances_by_label(self, label: str) -> list[Instance]:
        """The rentals carrying ``label`` (reconciliation after an ambiguous create)."""
        return await self.list_instances(label=label)

    async def show_instance(self, instance_id: int) -> Instance | None:
        """One instance, or None when it does not exist (any more)."""
        try:
            data = await self._request(
                SHOW, f"/api/v0/instances/{int(instance_id)}/", params={"owner": "me"}
            )
        except errors.VastaiNotFoundError:
            return None
        row = _field(data, "instances", SHOW)
        if isinstance(row, list):
            row = row[0] if row else None
        if row is None:
            return None
        return _parse(Instance, row, SHOW)

    async def label_instance(self, instance_id: int, label: str) -> None:
        """Set an instance's label."""
        await self._request(
            LABEL, f"/api/v0/instances/{int(instance_id)}/", json_body={"label": label}
        )

    async def stop_instance(self, instance_id: int) -> None:
        """Stop a rental: the GPU is released, the disk kept and billed (contract §5.6).
        Idempotent (stopping a stopped rental changes nothing), so retried like a read."""
        await self._request(
            STATE, f"/api/v0/instances/{int(instance_id)}/", json_body={"state": "stopped"}
        )

    async def start_instance(self, instance_id: int) -> None:
        """Start a stopped rental again. The answer comes at once; the rental then loads,
        or waits forever when its GPU was rented meanwhile (``intended_status=running``,
        ``cur_state=stopped``: contract F17). Its address and ports may change (F19)."""
        await self._request(
            STATE, f"/api/v0/instances/{int(instance_id)}/", json_body={"state": "running"}
        )

    async def destroy_instance(self, instance_id: int) -> bool:
        """Destroy a rental. True when destroyed now, False when it was already gone (404)."""
        try:
            await self._request(DESTROY, f"/api/v0/instances/{int(instance_id)}/", json_body={})
        except errors.VastaiNotFoundError:
            return False
        return True

    async def request_logs(self, instance_id: int, *, tail: int = 1000) -> str:
        """The container's last ``tail`` log lines (asks for a snapshot, then fetches
        ``result_url`` until it is ready, within the deadline)."""
        data = await self._request(
            LOGS,
            f"/api/v0/instances/request_logs/{int(instance_id)}/",
            json_body={"tail": str(tail)},
        )
        url = data.get("result_url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise errors.VastaiMalformedResponseError(f"{LOGS}: no result_url", endpoint=LOGS)
        return await self._fetch_result(url)

    async def show_user(self) -> Account:
        """The account: the credit left, for reconciling spend (``users/current``)."""
        return _parse(Account, await self._request(USER, "/api/v0/users/current/"), USER)

    # ------------------------------------------------------------ the chokepoint

    async def _request(
        self,
        endpoint: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        is_create: bool = False,
    ) -> Any:
        """Send one logical call with retries; return the decoded JSON body."""
        method = endpoint.split(" ", 1)[0]
        started = self._clock()

        def retryable(exc: BaseException) -> bool:
            if not isinstance(exc, errors.VastaiTransientError):
                return False
            if is_create:  # only a refusal (429) proves nothing was rented
                return isinstance(exc, errors.VastaiRateLimitedError)
            return True

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, errors.VastaiTransientError) and exc.retry_after is not None:
                return exc.retry_after
            return float(self._backoff(state))

        def stop(state: RetryCallState) -> bool:
            elapsed = self._clock() - started
            return (
                state.attempt_number >= self._max_attempts
                or elapsed + state.upcoming_sleep >= self._deadline
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                remaining = max(0.001, self._deadline - (self._clock() - started))
                return await self._attempt(
                    method,
                    endpoint,
                    path,
                    json_body=json_body,
                    params=params,
                    is_create=is_create,
                    request_timeout=min(self._timeout, remaining),
                    number=attempt.retry_state.attempt_number,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        endpoint: str,
        path: str,
        *,
        json_body: Any,
        params: Mapping[str, str] | None,
        is_create: bool,
        request_timeout: float,
        number: int,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}"}
        t0 = time.monotonic()
        code = "transport"
        try:
            response = await self._http.request(
                method,
                self._base + path,
                json=json_body,
                params=params,
                headers=headers,
                timeout=request_timeout,
            )
        except httpx.TimeoutException as exc:
            code = "timeout"
            raise errors.VastaiTimeoutError(
                f"{endpoint}: timed out after {request_timeout:.1f}s ({type(exc).__name__})",
                endpoint=endpoint,
            ) from None
        except httpx.TransportError as exc:
            raise errors.VastaiTimeoutError(
                self._scrub(f"{endpoint}: transport error ({type(exc).__name__})"),
                endpoint=endpoint,
            ) from None
        else:
            code = str(response.status_code)
        finally:
            elapsed = time.monotonic() - t0
            metrics.VASTAI_REQUESTS.labels(endpoint=endpoint, code=code).inc()
            metrics.VASTAI_REQUEST_SECONDS.labels(endpoint=endpoint).observe(elapsed)
            logger.debug(
                "vastai %s %s attempt %d → %s in %.3fs", method, path, number, code, elapsed
            )
        if response.status_code >= 400:
            raise error_for(
                response, endpoint=endpoint, is_create=is_create, now=time.time(), scrub=self._scrub
            )
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise errors.VastaiMalformedResponseError(
                f"{endpoint}: HTTP {response.status_code} body is not JSON",
                status=response.status_code,
                endpoint=endpoint,
            ) from None
        if isinstance(data, dict) and data.get("success") is False:
            raise errors.VastaiLogicalError(
                self._scrub(f"{endpoint}: success=false: {_message(response)}"),
                status=response.status_code,
                endpoint=endpoint,
            )
        return data

    async def _fetch_result(self, url: str) -> str:
        """Poll a logs ``result_url`` (no credentials: it is another host) until 200.

        The log is what the rented machine printed: at most ``max_log_bytes`` of it are
        read (the rest is dropped and a last line says so)."""
        started = self._clock()
        delay = 0.3
        while True:
            remaining = self._deadline - (self._clock() - started)
            t0 = time.monotonic()
            code = "transport"
            response: httpx.Response | None = None
            text: str | None = None
            try:
                request = self._http.build_request(
                    "GET", url, timeout=min(self._timeout, remaining)
                )
                response = await self._http.send(request, stream=True)
                code = str(response.status_code)
                try:
                    if response.status_code == 200:
                        text = await self._read_log(response)
                finally:
                    await response.aclose()
            except httpx.TransportError:
                pass
            finally:
                metrics.VASTAI_REQUESTS.labels(endpoint=LOGS_RESULT, code=code).inc()
                metrics.VASTAI_REQUEST_SECONDS.labels(endpoint=LOGS_RESULT).observe(
                    time.monotonic() - t0
                )
            if text is not None:
                return text
            if self._clock() - started + delay >= self._deadline:
                raise errors.VastaiTimeoutError(
                    f"{LOGS_RESULT}: logs not ready within {self._deadline:.0f}s",
                    endpoint=LOGS_RESULT,
                )
            await self._sleep(delay)
            delay = min(delay * 1.5, 5.0)

    async def _read_log(self, response: httpx.Response) -> str:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk[: self._max_log_bytes - len(body)])
            if len(body) >= self._max_log_bytes:
                body.extend(f"\n[log cut at {self._max_log_bytes} bytes]\n".encode())
                break
        return body.decode(errors="replace")

    def _scrub(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "**********") if key else text


def _field(data: Any, name: str, endpoint: str) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise errors.VastaiMalformedResponseError(
            f"{endpoint}: no '{name}' field", endpoint=endpoint
        )
    return data[name]


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], row: Any, endpoint: str) -> _M:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        raise errors.VastaiMalformedResponseError(
            f"{endpoint}: unexpected {model.__name__} shape ({exc.error_count()} errors)",
            endpoint=endpoint,
        ) from None

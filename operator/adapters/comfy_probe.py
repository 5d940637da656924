"""ComfyUI readiness probe: ``/system_stats`` answers JSON with a device, models listed.

Re-exported by :mod:`warmpool.operator.adapters.comfy` (``comfy.probe``,
``comfy.ProbeReason``, ...). It talks to the server through anything shaped like
:class:`ProbeTarget` (a ``ComfyClient``), so it does not import the client module:
``comfy.probe`` builds the client and calls :func:`probe_with`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_before_delay,
    wait_exponential_jitter,
)

from warmpool.operator import errors, metrics

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ProbeTarget(Protocol):
    """The two calls of a ``ComfyClient`` a probe makes."""

    async def system_stats(self, *, retry: bool = True) -> dict[str, Any]: ...

    async def list_models(self, folder: str, *, retry: bool = True) -> list[str]: ...


class ProbeReason(enum.StrEnum):
    """Why one probe attempt failed (the ``reason`` label of the metric)."""

    REFUSED = "refused"
    TIMED_OUT = "timed_out"
    HTTP_ERROR = "http_error"
    NOT_JSON = "not_json"
    NO_DEVICE = "no_device"
    MODEL_MISSING = "model_missing"
    AUTH = "auth"
    TOO_LARGE = "too_large"  # an answer past its byte cap: a hostile or broken machine
    INSECURE = "insecure_channel"  # plain HTTP refused, or TLS that fails the pinned certificate


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of a probe (the last attempt's when not ready)."""

    ready: bool
    reason: ProbeReason | None = None
    message: str = ""
    attempts: int = 1
    device: str | None = None
    comfyui_version: str | None = None
    missing_models: tuple[str, ...] = ()


async def probe_once(
    client: ProbeTarget, required_models: Iterable[tuple[str, str]] = ()
) -> ProbeResult:
    """One attempt: ``/system_stats`` answers JSON with a device, every model is listed."""
    try:
        stats = await client.system_stats(retry=False)
        devices = stats.get("devices")
        device = devices[0].get("name") if isinstance(devices, list) and devices else None
        version = (stats.get("system") or {}).get("comfyui_version")
        if not device:
            return ProbeResult(False, ProbeReason.NO_DEVICE, "no device reported")
        wanted: dict[str, list[str]] = {}
        for folder, name in required_models:
            wanted.setdefault(folder, []).append(name)
        missing: list[str] = []
        for folder, names in wanted.items():
            try:
                present = set(await client.list_models(folder, retry=False))
            except errors.ComfyUnavailableError:
                raise
            except errors.ComfyAuthError:
                raise
            except errors.ComfyError:
                present = set()
            missing += [f"{folder}/{n}" for n in names if n not in present]
        if missing:
            return ProbeResult(False, ProbeReason.MODEL_MISSING, "missing: " + ", ".join(missing),
                               device=device, comfyui_version=version,
                               missing_models=tuple(missing))  # fmt: skip
        return ProbeResult(True, None, "ready", device=device, comfyui_version=version)
    except errors.ComfyAuthError as exc:
        return ProbeResult(False, ProbeReason.AUTH, str(exc))
    except errors.ComfyAnswerTooLargeError as exc:
        return ProbeResult(False, ProbeReason.TOO_LARGE, str(exc))
    except errors.ComfyInsecureChannelError as exc:
        return ProbeResult(False, ProbeReason.INSECURE, str(exc))
    except errors.ComfyUnavailableError as exc:
        reason = (
            ProbeReason.REFUSED
            if isinstance(exc, errors.ComfyRefusedError)
            else ProbeReason.TIMED_OUT
            if isinstance(exc, errors.ComfyTimedOutError)
            else ProbeReason.HTTP_ERROR
        )
        return ProbeResult(False, reason, str(exc))
    except (errors.ComfyMalformedResponseError, AttributeError) as exc:
        return ProbeResult(False, ProbeReason.NOT_JSON, str(exc) or "not JSON")
    except errors.ComfyError as exc:
        return ProbeResult(False, ProbeReason.HTTP_ERROR, str(exc))


async def probe_with(
    client: ProbeTarget,
    *,
    required_models: Iterable[tuple[str, str]] = (),
    deadline: float = 60.0,
    initial_backoff: float = 0.5,
    max_backoff: float = 15.0,
    sleep: Sleep = asyncio.sleep,
) -> ProbeResult:
    """Probe ``client`` until ready or ``deadline`` seconds passed (an auth failure stops at once).

    Attempts are spaced by exponential backoff with jitter; every failed attempt
    counts in ``warmpool_comfy_probe_failures_total{reason}``.
    """
    models = tuple(required_models)

    def failed(result: ProbeResult) -> bool:
        final = (ProbeReason.AUTH, ProbeReason.TOO_LARGE, ProbeReason.INSECURE)
        return not result.ready and result.reason not in final

    def last(state: RetryCallState) -> ProbeResult:
        assert state.outcome is not None
        result: ProbeResult = state.outcome.result()
        return result

    attempts = 0

    async def attempt() -> ProbeResult:
        nonlocal attempts
        attempts += 1
        result = await probe_once(client, models)
        if result.reason is not None:
            metrics.COMFY_PROBE_FAILURES.labels(reason=result.reason.value).inc()
            logger.debug("probe attempt %d: %s (%s)", attempts, result.reason, result.message)
        return result

    retrying = AsyncRetrying(
        stop=stop_before_delay(deadline),
        wait=wait_exponential_jitter(multiplier=initial_backoff, max=max_backoff),
        retry=retry_if_result(failed),
        retry_error_callback=last,
        sleep=sleep,
    )
    result: ProbeResult = await retrying(attempt)
    return ProbeResult(result.ready, result.reason, result.message, attempts, result.device,
                       result.comfyui_version, result.missing_models)  # fmt: skip

"""Every error the operator raises, in one tree; free of Kopf (the studio imports it).

Retry meaning is carried by two mixins: a :class:`TemporaryError` is worth retrying
after ``delay`` seconds, a :class:`PermanentError` is not. The Kopf handlers turn them
into ``kopf.TemporaryError``/``kopf.PermanentError`` at their boundary
(:mod:`warmpool.operator.handlers.boundary`). Adapters translate transport errors at
the boundary (chained with ``from``) into these classes and decide nothing else.

    WarmpoolError
    ├── TemporaryError                         mixin: retry after ``delay`` seconds
    ├── PermanentError                         mixin: retrying will not help
    ├── ConfigurationError                     (permanent: bad settings)
    │   └── ModelTokenMissingError             a models[].tokenSecret Secret or key is missing
    ├── VastaiError                            (base of every Vast.ai failure)
    │   ├── VastaiAuthError                    401/403: bad or scoped key (permanent)
    │   ├── VastaiNotFoundError                404: unknown instance (destroy: "already gone")
    │   ├── VastaiOfferUnavailableError        404/409/410 on create: offer taken since search
    │   ├── VastaiBadRequestError              400: invalid arguments (permanent)
    │   ├── VastaiLogicalError                 200 with "success": false
    │   ├── VastaiMalformedResponseError       not JSON / wrong shape
    │   └── VastaiTransientError               worth retrying (temporary)
    │       ├── VastaiRateLimitedError         429, carries retry_after
    │       ├── VastaiServerError              5xx
    │       ├── VastaiTimeoutError             connect/read time-out, transport error
    │       └── VastaiAmbiguousCreateError     create failed and no rental carries the label yet
    ├── ComfyError                             (base of every ComfyUI failure)
    │   ├── ComfyAuthError                     401/403: token refused
    │   ├── ComfyUnavailableError              not reachable / not finished (temporary)
    │   │   ├── ComfyRefusedError              connection refused, transport error, no websocket
    │   │   ├── ComfyTimedOutError             one request timed out
    │   │   ├── ComfyServerError               5xx, 408, 429
    │   │   ├── ComfyDeadlineError             the prompt did not finish within its deadline
    │   │   │   └── ComfyQueueWaitError        it did not even begin: waited too long in the queue
    │   │   └── ComfyPromptLostError           the prompt is neither queued nor in the history
    │   ├── ComfyBadRequestError               400 (the body is kept for the validation error)
    │   ├── ComfyValidationError               400 from /prompt with node_errors (names node, input)
    │   ├── ComfyExecutionError                execution_error (message, node, exception type)
    │   │   └── ComfyOutOfMemoryError          execution_error caused by out-of-memory
    │   ├── ComfyInterruptedError              execution_interrupted
    │   ├── ComfyMalformedResponseError        not JSON / wrong shape
    │   ├── ComfyAnswerTooLargeError           an answer passed its byte cap (hostile machine)
    │   └── ComfyInsecureChannelError          plain HTTP, or TLS that fails verification
    ├── KubeError                              (base of every Kubernetes API failure)
    │   ├── KubeNotFoundError                  404: no such object
    │   ├── KubeConflictError                  409: stale resourceVersion or already exists
    │   ├── KubeGoneError                      410: watch resourceVersion too old (re-list)
    │   ├── KubeInvalidError                   422: refused by validation, carries causes
    │   ├── KubeForbiddenError                 401/403: credentials or RBAC (permanent)
    │   └── KubeUnavailableError               5xx, 429, connection errors (temporary)
    ├── ArtifactError                          artifact store failures
    │   ├── ArtifactNotFoundError
    │   ├── ArtifactKeyError                   key refused: traversal, charset, empty
    │   ├── ArtifactInvalidError               output empty, undecodable or one flat colour
    │   └── ArtifactUnavailableError           store unreachable or failing (temporary)
    └── JobError                               a job cannot run as written, or its result is bad
        ├── JobBuildError                      no graph: missing muse, reference image... (reason)
        └── JobOutputError                     an output is empty, undecodable or one flat colour
"""

from __future__ import annotations

from typing import Any


class WarmpoolError(Exception):
    """Base of every warmpool error."""


class TemporaryError(WarmpoolError):
    """Mixin: worth retrying after :attr:`delay` seconds (``kopf.TemporaryError``)."""

    delay: float = 5.0


class PermanentError(WarmpoolError):
    """Mixin: retrying will not help (``kopf.PermanentError``)."""


class ConfigurationError(PermanentError):
    """Settings are missing or contradictory."""


class ModelTokenMissingError(ConfigurationError):
    """A Secret (or its key) named by ``models[].tokenSecret`` is missing, empty or not text.
    The message names the Secret and the key, never a value."""


# ---------------------------------------------------------------- Vast.ai


class VastaiError(WarmpoolError):
    """Any failure talking to Vast.ai. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class VastaiAuthError(VastaiError, PermanentError):
    """The API key is missing, invalid or lacks a permission (401/403)."""


class VastaiNotFoundError(VastaiError):
    """The instance does not exist (any more)."""


class VastaiOfferUnavailableError(VastaiError):
    """The offer was taken or cannot start now (404/409/410 on create)."""


class VastaiBadRequestError(VastaiError, PermanentError):
    """Vast.ai refused the arguments (400)."""


class VastaiLogicalError(VastaiError):
    """HTTP 200 with ``"success": false``."""


class VastaiMalformedResponseError(VastaiError):
    """The answer was not JSON or not of the documented shape."""


class VastaiTransientError(VastaiError, TemporaryError):
    """A failure that is worth retrying later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.delay = retry_after or 10.0
        self.retry_after = retry_after


class VastaiRateLimitedError(VastaiTransientError):
    """429: too many requests; ``retry_after`` seconds when the server said."""


class VastaiServerError(VastaiTransientError):
    """5xx from Vast.ai or its gateway."""


class VastaiTimeoutError(VastaiTransientError):
    """Connect or read time-out, or a broken connection."""


class VastaiAmbiguousCreateError(VastaiTransientError):
    """A create call failed in a way that may have rented; no rental has the label yet."""


# ---------------------------------------------------------------- ComfyUI


class ComfyError(WarmpoolError):
    """Any failure talking to an instance's ComfyUI."""


class ComfyAuthError(ComfyError):
    """The per-instance token was refused (401/403)."""


class ComfyUnavailableError(ComfyError, TemporaryError):
    """ComfyUI is not reachable, answered 5xx, or the prompt did not finish (the
    subclasses say which; callers branch on them)."""


class ComfyRefusedError(ComfyUnavailableError):
    """Connection refused, a transport error, or no websocket to follow a prompt on."""


class ComfyTimedOutError(ComfyUnavailableError):
    """One request timed out."""


class ComfyServerError(ComfyUnavailableError):
    """5xx, 408 or 429 from ComfyUI."""


class ComfyDeadlineError(ComfyUnavailableError):
    """The prompt did not finish within its deadline."""


class ComfyQueueWaitError(ComfyDeadlineError):
    """The prompt did not begin to run within its bound on waiting in ComfyUI's queue."""


class ComfyPromptLostError(ComfyUnavailableError):
    """The prompt is neither queued, running nor in the history."""


class ComfyBadRequestError(ComfyError):
    """HTTP 400; ``body`` is the answer (``POST /prompt`` turns it into a validation error)."""

    def __init__(self, message: str, *, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = dict(body or {})


class ComfyValidationError(ComfyError):
    """``POST /prompt`` refused the graph (HTTP 400 with ``node_errors``)."""

    def __init__(
        self, message: str, *, node_id: str = "", node_type: str = "", input_name: str = ""
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.input_name = input_name


class ComfyExecutionError(ComfyError):
    """The prompt failed while executing (``execution_error``)."""

    def __init__(
        self, message: str, *, node_id: str = "", node_type: str = "", exception_type: str = ""
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type


class ComfyOutOfMemoryError(ComfyExecutionError):
    """The prompt ran out of GPU memory."""


class ComfyInterruptedError(ComfyError):
    """The prompt was interrupted (``execution_interrupted``)."""


class ComfyMalformedResponseError(ComfyError):
    """The answer was not JSON or not of the documented shape."""


class ComfyAnswerTooLargeError(ComfyError):
    """A machine answered more bytes than accepted for that kind of answer: a hostile or
    broken machine (status reason :data:`MACHINE_ANSWER_TOO_LARGE`). Reading stopped at
    the cap, so nothing past it was held in memory. Not retried on the same machine."""

    reason = "MachineAnswerTooLarge"

    def __init__(self, message: str, *, endpoint: str = "", limit: int = 0) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.limit = limit


#: The status reason of a job or instance that failed because of an oversized answer.
MACHINE_ANSWER_TOO_LARGE = ComfyAnswerTooLargeError.reason


class ComfyInsecureChannelError(ComfyError):
    """The machine's channel is not the verified TLS one expected: a plain ``http://`` URL
    where only HTTPS is allowed, or a certificate that does not verify against the pinned
    per-instance CA. Nothing (no token) was sent."""


# ---------------------------------------------------------------- Kubernetes


class KubeError(WarmpoolError):
    """Any failure talking to the Kubernetes API. ``status`` is the HTTP status when there
    was one; ``reason`` is the Status object's ``reason`` (``NotFound``, ``AlreadyExists``...)."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeNotFoundError(KubeError):
    """404: the object (or its kind) does not exist."""


class KubeConflictError(KubeError):
    """409: the resourceVersion is stale, or the object already exists."""


class KubeGoneError(KubeError):
    """410: a watch asked for a resourceVersion the server no longer has; re-list."""


class KubeInvalidError(KubeError, PermanentError):
    """422: the object was refused by validation. ``causes`` are the Status causes
    (``{"field": "spec.replicas", "reason": "FieldValueInvalid", "message": ...}``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 422,
        reason: str = "Invalid",
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.causes: list[dict[str, str]] = list(causes or [])


class KubeForbiddenError(KubeError, PermanentError):
    """401/403: the credentials were refused or RBAC does not allow the verb."""


class KubeUnavailableError(KubeError, TemporaryError):
    """5xx, 429, time-outs and connection errors: worth retrying later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.delay = retry_after or 5.0
        self.retry_after = retry_after


# ---------------------------------------------------------------- artifacts


class ArtifactError(WarmpoolError):
    """The artifact store failed."""


class ArtifactNotFoundError(ArtifactError):
    """No artifact under that key."""


class ArtifactKeyError(ArtifactError, ValueError):
    """The key is not acceptable: empty, absolute, ``..``, or characters outside the set."""


class ArtifactInvalidError(ArtifactError):
    """An output is not a real result: ``reason`` is ``empty``, ``undecodable`` or ``flat``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ArtifactUnavailableError(ArtifactError, TemporaryError):
    """The store could not be reached or failed; worth retrying later."""


# ---------------------------------------------------------------- jobs


class JobError(WarmpoolError):
    """A job cannot run as written, or what it produced is not a result."""


class JobBuildError(JobError):
    """The job cannot be turned into a graph; ``reason`` is the status reason
    (``MuseNotFound``...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JobOutputError(JobError):
    """An output is empty, not decodable, or a single flat colour."""

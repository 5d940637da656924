"""Every error the operator raises, in one tree.

Retry meaning comes from Kopf: a ``kopf.TemporaryError`` is retried after a delay,
a ``kopf.PermanentError`` is not. Adapters translate transport errors at the
boundary (chained with ``from``) into these classes and decide nothing else.

    WarmpoolError
    ├── ConfigurationError                     (permanent: bad settings)
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
    │       └── VastaiTimeoutError             connect/read time-out, transport error
    ├── ComfyError                             (base of every ComfyUI failure)
    │   ├── ComfyAuthError                     401/403: token refused
    │   ├── ComfyUnavailableError              refused / timed out / 5xx (temporary)
    │   ├── ComfyValidationError               400 from /prompt with node_errors (names node, input)
    │   ├── ComfyExecutionError                execution_error (message, node, exception type)
    │   │   └── ComfyOutOfMemoryError          execution_error caused by out-of-memory
    │   ├── ComfyInterruptedError              execution_interrupted
    │   └── ComfyMalformedResponseError        not JSON / wrong shape
    ├── KubeError                              (base of every Kubernetes API failure)
    │   ├── KubeNotFoundError                  404: no such object
    │   ├── KubeConflictError                  409: stale resourceVersion or already exists
    │   ├── KubeGoneError                      410: watch resourceVersion too old (re-list)
    │   ├── KubeInvalidError                   422: refused by validation, carries causes
    │   ├── KubeForbiddenError                 401/403: credentials or RBAC (permanent)
    │   └── KubeUnavailableError               5xx, 429, connection errors (temporary)
    └── ArtifactError                          artifact store failures
        ├── ArtifactNotFoundError
        ├── ArtifactKeyError                   key refused: traversal, charset, empty
        ├── ArtifactInvalidError               output empty, undecodable or one flat colour
        └── ArtifactUnavailableError           store unreachable or failing (temporary)
"""

from __future__ import annotations

import kopf


class WarmpoolError(Exception):
    """Base of every warmpool error."""


class ConfigurationError(WarmpoolError, kopf.PermanentError):
    """Settings are missing or contradictory."""


# ---------------------------------------------------------------- Vast.ai


class VastaiError(WarmpoolError):
    """Any failure talking to Vast.ai. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class VastaiAuthError(VastaiError, kopf.PermanentError):
    """The API key is missing, invalid or lacks a permission (401/403)."""


class VastaiNotFoundError(VastaiError):
    """The instance does not exist (any more)."""


class VastaiOfferUnavailableError(VastaiError):
    """The offer was taken or cannot start now (404/409/410 on create)."""


class VastaiBadRequestError(VastaiError, kopf.PermanentError):
    """Vast.ai refused the arguments (400)."""


class VastaiLogicalError(VastaiError):
    """HTTP 200 with ``"success": false``."""


class VastaiMalformedResponseError(VastaiError):
    """The answer was not JSON or not of the documented shape."""


class VastaiTransientError(VastaiError, kopf.TemporaryError):
    """A failure that is worth retrying later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        VastaiError.__init__(self, message, status=status, endpoint=endpoint)
        kopf.TemporaryError.__init__(self, message, delay=retry_after or 10.0)
        self.retry_after = retry_after


class VastaiRateLimitedError(VastaiTransientError):
    """429: too many requests; ``retry_after`` seconds when the server said."""


class VastaiServerError(VastaiTransientError):
    """5xx from Vast.ai or its gateway."""


class VastaiTimeoutError(VastaiTransientError):
    """Connect or read time-out, or a broken connection."""


# ---------------------------------------------------------------- ComfyUI


class ComfyError(WarmpoolError):
    """Any failure talking to an instance's ComfyUI."""


class ComfyAuthError(ComfyError):
    """The per-instance token was refused (401/403)."""


class ComfyUnavailableError(ComfyError, kopf.TemporaryError):
    """ComfyUI is not reachable or answered 5xx."""

    def __init__(self, message: str, *, reason: str = "unavailable") -> None:
        ComfyError.__init__(self, message)
        kopf.TemporaryError.__init__(self, message, delay=5.0)
        self.reason = reason


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


class KubeInvalidError(KubeError, kopf.PermanentError):
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


class KubeForbiddenError(KubeError, kopf.PermanentError):
    """401/403: the credentials were refused or RBAC does not allow the verb."""


class KubeUnavailableError(KubeError, kopf.TemporaryError):
    """5xx, 429, time-outs and connection errors: worth retrying later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        KubeError.__init__(self, message, status=status, reason=reason)
        kopf.TemporaryError.__init__(self, message, delay=retry_after or 5.0)
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


class ArtifactUnavailableError(ArtifactError, kopf.TemporaryError):
    """The store could not be reached or failed; worth retrying later."""

    def __init__(self, message: str) -> None:
        ArtifactError.__init__(self, message)
        kopf.TemporaryError.__init__(self, message, delay=5.0)

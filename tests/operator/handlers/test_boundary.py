"""The error tree is free of Kopf; the handlers' boundary gives it Kopf's retry meaning."""

from __future__ import annotations

import subprocess
import sys

import kopf
import pytest

from warmpool.operator import errors
from warmpool.operator.handlers.boundary import kopf_errors


def test_the_studio_loads_no_kopf() -> None:
    """The studio imported ``operator.errors``, which imported Kopf: the web service
    loaded the operator framework. In a fresh interpreter, it must not."""
    code = "import sys, warmpool.api.app; assert 'kopf' not in sys.modules, 'kopf loaded'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("error", "kind", "delay"),
    [
        pytest.param(errors.KubeUnavailableError("x", retry_after=7), kopf.TemporaryError, 7.0,
                     id="kube-unavailable-retry-after"),
        pytest.param(errors.VastaiServerError("x"), kopf.TemporaryError, 10.0, id="vastai-5xx"),
        pytest.param(errors.ComfyDeadlineError("x"), kopf.TemporaryError, 5.0,
                     id="comfy-deadline"),
        pytest.param(errors.ArtifactUnavailableError("x"), kopf.TemporaryError, 5.0,
                     id="store-down"),
        pytest.param(errors.VastaiAuthError("x"), kopf.PermanentError, None, id="vastai-auth"),
        pytest.param(errors.ConfigurationError("x"), kopf.PermanentError, None, id="config"),
        pytest.param(errors.KubeInvalidError("x"), kopf.PermanentError, None, id="kube-422"),
    ],
)  # fmt: skip
def test_kopf_errors_translates(
    error: errors.WarmpoolError, kind: type[Exception], delay: float | None
) -> None:
    with pytest.raises(kind) as caught, kopf_errors():
        raise error
    assert caught.value.__cause__ is error
    if delay is not None:
        assert isinstance(caught.value, kopf.TemporaryError)
        assert caught.value.delay == delay


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(errors.KubeConflictError("x"), id="kube-conflict"),
        pytest.param(errors.ComfyValidationError("x"), id="comfy-validation"),
        pytest.param(ValueError("x"), id="not-ours"),
    ],
)
def test_kopf_errors_leaves_the_rest_to_kopf_backoff(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, kopf_errors():
        raise error
    assert caught.value is error

"""The validating admission webhook: GenerationJobs, Muses and GpuPools refused before
they are stored (the minors policy on the composed prompt, the models' cross-field rules).

Registrations only: :mod:`..controllers.admission` gathers the facts and returns the
verdict. The handler ids are the webhook paths (``/<id>``) that the chart's
ValidatingWebhookConfiguration names, so each webhook runs exactly its handler. The
chart owns that configuration: Kopf never manages one (``settings.admission.managed``
stays unset, see :mod:`.startup`).
"""

from __future__ import annotations

from typing import Any

import kopf

from warmpool.operator.controllers import admission
from warmpool.operator.decisions.admission import Denial
from warmpool.operator.deps import Deps
from warmpool.operator.handlers.registry import GENERATIONJOBS, GPUPOOLS, MUSES, registry

#: The webhook ids (= URL paths) the chart registers.
JOB_WEBHOOK = "validate-generationjob"
MUSE_WEBHOOK = "validate-muse"
POOL_WEBHOOK = "validate-gpupool"


def _raise(denial: Denial | None) -> None:
    if denial is not None:
        raise kopf.AdmissionError(denial.message, code=denial.code)


@kopf.on.validate(
    *GENERATIONJOBS, registry=registry, id=JOB_WEBHOOK, operations=["CREATE", "UPDATE"]
)
async def on_validate_job(
    *, body: kopf.Body, memo: Deps, warnings: list[str], old: kopf.Body | None = None, **_: Any
) -> None:  # fmt: skip
    """A job whose composed prompt breaks the minors policy is refused."""
    _raise(await admission.review_job(memo, body, old, warnings))


@kopf.on.validate(*MUSES, registry=registry, id=MUSE_WEBHOOK, operations=["CREATE", "UPDATE"])
async def on_validate_muse(
    *, body: kopf.Body, old: kopf.Body | None = None, **_: Any
) -> None:  # fmt: skip
    """A muse whose texts or composition break the minors policy is refused."""
    _raise(admission.review_muse(body, old))


@kopf.on.validate(*GPUPOOLS, registry=registry, id=POOL_WEBHOOK, operations=["CREATE", "UPDATE"])
async def on_validate_pool(
    *, body: kopf.Body, old: kopf.Body | None = None, **_: Any
) -> None:  # fmt: skip
    """A pool breaking a cross-field rule of its model is refused."""
    _raise(admission.review_pool(body, old))

"""What the validating admission webhook refuses: pure checks of an object's body.

The webhook (:mod:`warmpool.operator.handlers.admission`) calls these for GenerationJobs,
Muses and GpuPools created or updated through the API (``kubectl`` included), so that a
refused object is never stored. Each check returns a :class:`Denial` naming the field, or
``None``; it never echoes the object's texts beyond the matched policy term.

- The models' own rules first: a body the pydantic model refuses (its cross-field
  validators, such as "frames is only for video jobs" or "the models must fit diskGb")
  is denied with the first error and its field path. The CRD's schema and CEL rules
  already refuse most of these; the validators a schema cannot express are caught here.
- The minors policy (:mod:`.minors`) on the **composed** prompt: :func:`policy_refusal`
  is the one function both the webhook and the operator's second line (the check just
  before a job is submitted to ComfyUI, :mod:`..controllers.jobs.runner`) call, so the
  two lines can never disagree. A job naming a muse is composed with that muse's
  template (:func:`.prompts.compose`); a GpuPool's template describes the machine image
  and carries no prompt text, so the pool adds nothing to the composition.
- A muse's texts one by one (for a precise field), then composed with an empty prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from warmpool.crds.generationjob import GenerationJob, GenerationJobSpec
from warmpool.crds.gpupool import GpuPool
from warmpool.crds.muse import Muse, MuseSpec
from warmpool.operator.decisions import minors, prompts

__all__ = [
    "MUSE_TEXTS",
    "POLICY_CODE",
    "Denial",
    "check_job",
    "check_muse",
    "check_pool",
    "missing_muse_warning",
    "model_denial",
    "needs_review",
    "policy_refusal",
]

#: The code of a denial by the minors policy (Forbidden), as the studio's is 422 by field.
POLICY_CODE = 403

#: The muse texts that reach prompts (spec field aliases), checked one by one.
MUSE_TEXTS = ("displayName", "style", "personality", "promptTemplate")


@dataclass(frozen=True)
class Denial:
    """Why an object is refused: the field path (``spec.prompt``), the reason, and the
    HTTP code the API server answers with (422 invalid, 403 refused by the policy)."""

    field: str
    reason: str
    code: int = 422

    @property
    def message(self) -> str:
        return f"{self.field}: {self.reason}"


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(root)"


def model_denial(model: type[BaseModel], body: Mapping[str, Any]) -> Denial | None:
    """The first error of the model on ``body`` (field path in the wire's camelCase)."""
    try:
        model.model_validate(dict(body))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        reason = str(first["msg"]).removeprefix("Value error, ")
        return Denial(_path(first["loc"]), reason)
    return None


def policy_refusal(spec: GenerationJobSpec, muse: MuseSpec | None) -> minors.Refusal | None:
    """The minors policy on the prompt a job really sends: composed with its muse."""
    composed = prompts.compose(muse, spec.prompt, spec.negative_prompt, variation=spec.variation)
    return minors.check_prompt(composed.positive, composed.negative, person=muse is not None)


def _composed_denial(refusal: minors.Refusal, positive_field: str, muse: str | None) -> Denial:
    field = "spec.negativePrompt" if refusal.where == "negative" else positive_field
    reason = refusal.message
    if muse is not None:
        reason += f" (checked on the prompt composed with muse {muse!r})"
    return Denial(field, reason, POLICY_CODE)


def check_job(
    body: Mapping[str, Any], muse: Mapping[str, Any] | None = None
) -> Denial | None:  # fmt: skip
    """A GenerationJob body; ``muse`` is the body of the Muse its ``spec.museRef`` names
    (``None`` when it names none or the muse does not exist yet: the second line checks
    again before submitting)."""
    if denial := model_denial(GenerationJob, body):
        return denial
    spec = GenerationJob.model_validate(dict(body)).spec
    muse_spec = None
    if muse is not None and spec.muse_ref:
        try:
            muse_spec = Muse.model_validate(dict(muse)).spec
        except ValidationError:
            muse_spec = None  # a muse the model refuses cannot be composed; the runner fails it
    refusal = policy_refusal(spec, muse_spec)
    if refusal is None:
        return None
    return _composed_denial(refusal, "spec.prompt", spec.muse_ref if muse_spec else None)


def check_muse(body: Mapping[str, Any]) -> Denial | None:
    """A Muse body: each text that reaches prompts, then the composition."""
    if denial := model_denial(Muse, body):
        return denial
    spec = Muse.model_validate(dict(body)).spec
    raw = spec.model_dump(by_alias=True)
    for name in MUSE_TEXTS:
        if refusal := minors.check_text(str(raw[name])):
            return Denial(f"spec.{name}", refusal.message, POLICY_CODE)
    for name, value in spec.appearance.model_dump(by_alias=True).items():
        if refusal := minors.check_text(str(value)):
            return Denial(f"spec.appearance.{name}", refusal.message, POLICY_CODE)
    for i, tag in enumerate(spec.tags):
        if refusal := minors.check_text(tag):
            return Denial(f"spec.tags[{i}]", refusal.message, POLICY_CODE)
    for variation in [None, *(v.name for v in spec.variations)]:
        composed = prompts.compose(spec, "", variation=variation)
        if refusal := minors.check_prompt(composed.positive, composed.negative, person=True):
            field = "spec.promptTemplate"
            if variation is not None:
                index = [v.name for v in spec.variations].index(variation)
                field = f"spec.variations[{index}]"
            return Denial(
                "spec.negativePrompt" if refusal.where == "negative" else field,
                refusal.message,
                POLICY_CODE,
            )
    return None


def missing_muse_warning(name: str) -> str:
    return (
        f"spec.museRef: muse {name!r} does not exist (yet); the prompt composed with it is "
        "checked again before the job runs"
    )


def needs_review(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Whether an operation is checked: a create, or an update that changes the spec of an
    object not being deleted. Metadata-only writes (finalizers, Kopf's annotations, labels)
    pass, so an object stored before a rule tightened can still be cleaned up and deleted."""
    if new is None:
        return False
    if old is None:
        return True
    if (new.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return bool(old.get("spec") != new.get("spec"))


def check_pool(body: Mapping[str, Any]) -> Denial | None:
    """A GpuPool body: the cross-field rules of its model (CEL covers the rest)."""
    return model_denial(GpuPool, body)

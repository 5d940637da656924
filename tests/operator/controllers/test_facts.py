"""What the dispatcher keeps of a job: its expected run time feeds the pool's scale-up."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.operator.controllers.jobs import facts as dispatch
from warmpool.operator.decisions import workflows


def body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "default", "uid": "u1"},
        "spec": {"pool": "p", "prompt": "a lighthouse", **spec},
    }


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"quality": "ultra", "batchSize": 4}, id="heavy"),
        pytest.param({"kind": "video", "quality": "low"}, id="video"),
    ],
)
def test_job_facts_carry_the_workflow_estimate(spec: dict[str, Any]) -> None:
    facts = dispatch.job_facts(body(**spec))
    parsed = GenerationJobSpec.model_validate(body(**spec)["spec"])
    assert facts.seconds == workflows.estimate(parsed, price_per_hour=0.0).seconds
    assert facts.seconds > 0


def test_heavier_jobs_weigh_more() -> None:
    light = dispatch.job_facts(body(quality="low")).seconds
    heavy = dispatch.job_facts(body(quality="ultra", batchSize=4)).seconds
    assert heavy > light


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"quality": "absurd"}, id="unknown-preset"),
        pytest.param({"batchSize": "many"}, id="wrong-type"),
    ],
)
def test_unreadable_spec_counts_as_a_minute(spec: dict[str, Any]) -> None:
    assert dispatch.job_facts(body(**spec)).seconds == dispatch.UNKNOWN_JOB_SECONDS


def instance(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "i", "namespace": "ns", "uid": "u2"},
        "spec": {
            "pool": "p",
            "offer": {"id": 7, "machineId": 42, "gpuName": "RTX 4090", "pricePerHour": 0.4},
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param({}, ("Pending", 42, "RTX 4090", 0.4), id="offer-until-rented"),
        pytest.param(
            {"phase": "Ready", "machineId": 43, "gpuName": "RTX 3090", "pricePerHour": 0.2},
            ("Ready", 43, "RTX 3090", 0.2),
            id="rental-once-known",
        ),
    ],
)
def test_instance_facts_come_from_the_one_model(
    status: dict[str, Any], expected: tuple[str, int, str, float]
) -> None:
    inst = dispatch.instance_facts(instance(**status))
    assert inst is not None
    assert (inst.phase, inst.machine_id, inst.gpu_name, inst.price_per_hour) == expected
    assert (inst.namespace, inst.pool, inst.deleting) == ("ns", "p", False)


def test_an_instance_the_model_refuses_is_left_out_of_the_index() -> None:
    refused = instance()
    refused["spec"]["pool"] = ""
    assert dispatch.instance_facts(refused) is None


def pool_body(**template: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"template": template}}


SCHNELL = "flux1-schnell-fp8.safetensors"
SPLIT = {"name": "flux1-dev", "architecture": "flux-dev",
         "diffusionModel": "flux1-dev.safetensors", "clipL": "clip_l.safetensors",
         "t5xxl": "t5xxl_fp8_e4m3fn.safetensors", "vae": "ae.safetensors"}  # fmt: skip


@pytest.mark.parametrize(
    ("template", "expected", "architecture"),
    [
        pytest.param({}, workflows.DEFAULT_CHECKPOINT, "sdxl", id="bare-pool"),
        pytest.param(
            {"models": [{"folder": "checkpoints", "file": SCHNELL}]},
            SCHNELL,
            "sdxl",
            id="undeclared-file",
        ),
        pytest.param(
            {
                "models": [{"folder": "checkpoints", "file": SCHNELL}],
                "checkpoints": [SPLIT, {"name": SCHNELL, "architecture": "flux-schnell"}],
            },
            "flux1-dev",
            "flux-dev",
            id="declared-split",
        ),
    ],
)
def test_a_model_less_job_runs_the_pools_default(
    template: dict[str, Any], expected: str, architecture: str
) -> None:
    pool = dispatch.pool_facts(pool_body(**template))
    job = dispatch.job_facts(body())
    assert (job.checkpoint, pool.model_of(job)) == ("", expected)
    assert pool.checkpoint(None).architecture == architecture
    named = dispatch.job_facts(body(model="other.safetensors"))
    assert pool.model_of(named) == "other.safetensors"

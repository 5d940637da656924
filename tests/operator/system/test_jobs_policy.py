"""The minors policy as the operator's second line (issue 15): a GenerationJob created
directly in the API (as kubectl would, bypassing the studio) that the policy refuses ends
Failed with ``PolicyRefused`` and its prompt never reaches ComfyUI."""

from __future__ import annotations

from pathlib import Path

import jobsys
from jobsys import API, DONE, job_body, phase, pool_body, ready, status
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

#: A template that is harmless alone, and a prompt that is harmless alone: only the
#: composed text ("12-year-old Ann") is refused.
MUSE = {
    "apiVersion": API, "kind": "Muse", "metadata": {"name": "ann", "namespace": "default"},
    "spec": {"displayName": "Ann", "age": 30, "promptTemplate": "{prompt}-year-old {name}"},
}  # fmt: skip


async def test_refused_jobs_fail_and_are_never_submitted(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, artifacts_url: str
) -> None:
    cluster.create(pool_body("guarded", replicas=1))
    cluster.create(MUSE)
    async with jobsys.operator(jobsys.settings(artifacts_url, sim.url)):
        (inst,) = await ready(cluster, 1)
        comfy = jobsys.comfy_of(sim, inst)
        before = len(comfy.prompts_seen)  # the canary's
        requests_before = dict(comfy.requests)
        cluster.create(job_body("plain", "guarded", prompt="a portrait of a schoolgirl"))
        cluster.create(job_body("composed", "guarded", prompt="12", museRef="ann"))
        cluster.create(job_body("negative", "guarded", prompt="a woman on a beach",
                                negativePrompt="adult, mature"))  # fmt: skip
        names = ["plain", "composed", "negative"]
        await eventually(lambda: all(phase(cluster, n) in DONE for n in names), timeout=60,
                         what="the refused jobs done")  # fmt: skip
        # A fine job afterwards runs on the same instance: the refusals did not harm it.
        cluster.create(job_body("fine", "guarded"))
        await eventually(lambda: phase(cluster, "fine") in DONE, timeout=60, what="fine done")
    for name in names:
        st = status(cluster, name)
        assert (st["phase"], st["reason"]) == ("Failed", "PolicyRefused"), (name, st)
        assert "content policy" in st["message"]
        for word in ("schoolgirl", "12-year-old", "adult, mature"):
            assert word not in st["message"]
    assert status(cluster, "fine")["phase"] == "Succeeded"
    # Only the fine job's prompt reached ComfyUI, and nothing else was sent for the others.
    assert len(comfy.prompts_seen) == before + 1
    prompts_posted = comfy.requests["POST /prompt"] - requests_before.get("POST /prompt", 0)
    assert prompts_posted == 1

"""Running one placed job on its instance's ComfyUI, and writing what happened.

:func:`run_job` is the task the dispatcher starts per placed job: build the graph
(muse prompt composed, reference images uploaded), write ``Scheduled`` (with the
lease and a finalizer), submit with the instance's token, write ``Running``,
follow over the websocket with throttled progress writes and a watchdog, store
the outputs, write ``Succeeded``; or ask :func:`scheduler.decide_failure` whether
to requeue or fail. The runner gets a held slot and the adapters (:class:`Deps`) and
returns an :class:`Outcome`; the job loop (:mod:`.loops`) releases the slot after it.

Writes per job: the placement with the acceptance (``Running``, one write; ``Scheduled``
first only when ComfyUI is slow to accept), progress at most once per
:data:`PROGRESS_INTERVAL` (and only when the percent moved), the outcome; the finalizer
(added and removed: two more) only for a job still running after :data:`FINALIZER_AFTER`
— two writes for a job of a second, besides its creation.

One piece past ~400 lines on purpose: the steps of an attempt (build, place, follow,
watch, succeed or fail) share its state (client, prompt id, timers, writer); the writes
themselves are in :mod:`.outcomes`, the outputs in :mod:`.outputs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from warmpool.crds.common import format_time, parse_duration, parse_optional_time
from warmpool.crds.generationjob import GenerationJobSpec, GenerationJobStatus, Progress
from warmpool.crds.gpupool import GpuPool
from warmpool.crds.muse import Muse
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import comfy, kube
from warmpool.operator.controllers.jobs import musecount, outcomes, outputs
from warmpool.operator.controllers.jobs.facts import JobFacts, PoolFacts, lease_end
from warmpool.operator.controllers.jobs.ledger import Held, InstanceKey
from warmpool.operator.decisions import (
    admission,
    conditioning,
    minors,
    prompts,
    references,
    scheduler,
    workflows,
)  # fmt: skip
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)

#: Seconds between two progress writes of one job (at most).
PROGRESS_INTERVAL = 1.0
#: Time-out of best-effort calls (interrupts, cleanup) on a possibly dead instance.
QUICK = 3.0
#: Seconds after placement without ComfyUI's acceptance before ``Scheduled`` is written
#: on its own (normally the placement is written with the acceptance, as ``Running``).
PLACEMENT_WRITE_AFTER = 1.0
#: Seconds a job runs before its finalizer is added (see :meth:`Run.guard_later`).
FINALIZER_AFTER = 2.0
#: Status reason of a job the minors policy refuses (never submitted).
POLICY_REFUSED = "PolicyRefused"


def policy_message(refusal: minors.Refusal) -> str:
    """The status message of a refused job: which text, never the text itself."""
    where = "negative prompt" if refusal.where == "negative" else "prompt"
    return (
        f"refused by the content policy: the composed {where} suggests a person under 18 "
        "or steers away from adults; only adults may be depicted; it was not submitted"
    )


@dataclass(frozen=True)
class Outcome:
    """How a runner ended: ``finished`` (terminal phase written), ``clean`` (an outcome,
    terminal or requeued, was written; otherwise the next dispatch requeues the job), and
    the job's finalizers as last known (the loop removes ours once the slot is free)."""

    finished: bool = False
    clean: bool = False
    finalizers: list[str] = field(default_factory=list)


async def run_job(
    deps: Deps,
    held: Held,
    pool: PoolFacts,
    *,
    resume: bool,
    activity: dict[InstanceKey, float],
    pool_gpus: Callable[[], set[str]],
) -> Outcome:
    """The runner of one placed job (see the module docstring).

    ``activity``: the last progress seen per instance, shared by the runners of one
    instance (a busy neighbour shows the instance is alive). ``pool_gpus``: the GPU
    models the pool has now (a job out of memory everywhere fails instead of requeueing).
    """
    run = Run(deps, held, pool, activity=activity, pool_gpus=pool_gpus)
    finished = False
    try:
        finished = await run.attempt(resume=resume)
    except asyncio.CancelledError:
        # The operator is stopping: the job keeps its lease; the next process resumes it.
        raise
    except Exception as exc:
        logger.exception("job %s/%s: runner failed", held.job.namespace, held.job.name)
        try:
            finished = await run.failed("instance_lost", f"operator error: {exc}"[:300])
        except Exception:
            metrics.ERRORS_CONTINUED.labels("runner_failure").inc()
            logger.exception("job %s/%s: recording the runner's failure failed too; the next "
                             "dispatch requeues it", held.job.namespace, held.job.name)  # fmt: skip
    return Outcome(finished, finished or run.requeued, run.writer.finalizers)


class Run:
    """One attempt of one job on one instance."""

    def __init__(
        self,
        deps: Deps,
        held: Held,
        pool: PoolFacts,
        *,
        activity: dict[InstanceKey, float],
        pool_gpus: Callable[[], set[str]],
    ) -> None:
        self.deps, self.held, self.pool = deps, held, pool
        self.activity, self.pool_gpus = activity, pool_gpus
        self.monotonic = deps.monotonic
        self.job: JobFacts = held.job
        self.inst = held.instance
        self.ns = self.job.namespace
        self.spec = GenerationJobSpec.model_validate(self.job.body.get("spec") or {})
        self.status: dict[str, Any] = dict(self.job.body.get("status") or {})
        self.prompt_id = self.job.prompt_id
        self.client_id = f"warmpool-{self.job.uid}"
        self.attempts = self.job.attempts
        self.client: comfy.ComfyClient | None = None
        self.last_activity = self.monotonic()
        self.last_percent = -1
        self.exec_started: float | None = None
        self.accepted: float | None = None
        self.flow: workflows.Workflow | None = None
        self.writer = outcomes.JobWriter(deps.kube, self.job, monotonic=self.monotonic)
        self.requeued = False
        self.placed_at: datetime | None = None
        self.placement_written = False
        self.later: asyncio.Task[None] | None = None
        self.adding_finalizer = False

    # ------------------------------------------------------------- the attempt
    async def attempt(self, *, resume: bool) -> bool:
        """Run to an outcome; True when the job reached a terminal phase."""
        self.client = self.deps.comfy.client(self.inst.comfy_url, await self.token(),
                                             timeout=self.deps.settings.comfy_timeout,
                                             pin=await self.pin())  # fmt: skip
        if resume:
            started = parse_optional_time(self.status.get("startedAt"))
            self.accepted = self.monotonic() - (
                (self.deps.now() - started).total_seconds() if started else 0.0
            )
        else:
            try:
                self.flow = await self.build()
            except (errors.JobBuildError, workflows.WorkflowError, errors.ArtifactError) as exc:
                reason = exc.reason if isinstance(exc, errors.JobBuildError) else "InvalidSpec"
                return await self.finish("Failed", reason, str(exc)[:500])
            except errors.ComfyAnswerTooLargeError as exc:
                return await self.failed("too_large", f"uploading the reference: {exc}")
            except errors.ComfyError as exc:
                return await self.failed("instance_lost", f"uploading the reference: {exc}")
            # The submission goes first (dispatch latency); the placement is written with
            # the acceptance, in one write (Running, with the lease and the attempt), or
            # as Scheduled when ComfyUI takes longer than PLACEMENT_WRITE_AFTER to accept.
            # If the job turns out to be gone, the prompt is interrupted (stopper below).
            # The websocket opens before the prompt is submitted (run_prompt), so that
            # its end cannot be announced before ComfyUI knows the socket; the runner
            # learns the prompt id, and that ComfyUI accepted it, from the first event.
            self.prompt_id = ""
            self.placed_at = self.deps.now()
            self.attempts = self.job.attempts + 1
            self.later = asyncio.create_task(self.guard_later())
            try:
                return await self.follow(self.flow.graph)
            finally:
                if self.adding_finalizer:  # never cut off: the loop must know to remove it
                    await asyncio.wait([self.later])
                else:
                    self.later.cancel()
        self.placement_written = True
        return await self.follow(None)

    async def guard_later(self) -> None:
        """Scheduled written when ComfyUI is slow to accept; the finalizer added once the
        job has run for :data:`FINALIZER_AFTER` seconds (a deletion before that is seen
        by its DELETED event: the runner interrupts the prompt all the same; the finalizer
        only matters for a job that runs long enough to be deleted unseen)."""
        await asyncio.sleep(PLACEMENT_WRITE_AFTER)
        if not self.placement_written:
            self.writer.enqueue(self.placement({}))
            self.watch_gone(self.writer.chain)
        await asyncio.sleep(max(FINALIZER_AFTER - PLACEMENT_WRITE_AFTER, 0.0))
        self.adding_finalizer = True
        try:
            if not await self.writer.add_finalizer():
                self.held.halt("gone")
        except errors.KubeError as exc:  # the job runs on; a deletion is still seen
            logger.warning("job %s/%s: could not add the finalizer: %s", self.ns,
                           self.job.name, exc)  # fmt: skip

    def watch_gone(self, write: asyncio.Task[bool] | None) -> None:
        """Halt the runner when ``write`` finds the job gone (404)."""

        def done(task: asyncio.Task[bool]) -> None:
            if not task.cancelled() and task.exception() is None and task.result() is False:
                self.held.halt("gone")

        if write is not None:
            write.add_done_callback(done)

    def placement(self, status: dict[str, Any]) -> dict[str, Any]:
        """``status`` with the placement's fields on the attempt's first write (the
        instance, lease, attempt, seed, estimates; ``Scheduled`` unless it says more)."""
        if self.placement_written:
            return status
        self.placement_written = True
        assert self.flow is not None
        now = self.deps.now()
        estimate = workflows.estimate(self.spec, price_per_hour=self.inst.price_per_hour,
                                      checkpoint=self.pool.checkpoint(self.spec.model))  # fmt: skip
        placed = outcomes.status_patch(GenerationJobStatus(
            phase="Scheduled", reason="", message="", instance=self.inst.name,
            gpu_name=self.inst.gpu_name, prompt_id="", seed=self.flow.seed,
            queued_at=self.status.get("queuedAt") or format_time(self.job.created),
            scheduled_at=format_time(self.placed_at or now), started_at=None, finished_at=None,
            lease_expires_at=format_time(lease_end(now, self.pool)), attempts=self.attempts,
            progress=Progress(value=0, max=0, percent=0), estimated_cost=estimate.dollars,
            estimated_seconds=estimate.seconds,
        ))  # fmt: skip
        return {**placed, **status}

    def accepted_now(self, prompt_id: str) -> None:
        """ComfyUI accepted the prompt: Running (written in order after Scheduled)."""
        self.prompt_id = prompt_id
        self.accepted = self.monotonic()
        now = self.deps.now()
        metrics.JOB_QUEUE_WAIT.labels(self.ns, self.pool.name).observe(
            max((now - self.job.created).total_seconds(), 0.0)
        )
        first = not self.placement_written
        self.writer.enqueue(self.placement(
            {"phase": "Running", "startedAt": format_time(now), "promptId": prompt_id}
        ))  # fmt: skip
        if first:
            self.watch_gone(self.writer.chain)

    async def follow(self, graph: dict[str, Any] | None) -> bool:
        """Submit ``graph`` and follow it (or follow the known prompt when None)."""
        assert self.client is not None
        timeout = parse_duration(self.spec.timeout).total_seconds()
        elapsed = self.monotonic() - (self.accepted or self.monotonic())
        deadline = max(timeout - elapsed, 1.0)
        follow = asyncio.create_task(
            self.client.run_prompt(graph, client_id=self.client_id, on_progress=self.on_progress,
                                   deadline=deadline, poll_interval=0.5)
            if graph is not None
            else self.client.follow_prompt(self.prompt_id, self.client_id,
                                           on_progress=self.on_progress, deadline=deadline,
                                           poll_interval=0.5)
        )  # fmt: skip
        watchdog = asyncio.create_task(self.watch())
        stopper = asyncio.create_task(self.held.stop.wait())
        tasks = {follow, watchdog, stopper}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        logger.debug(
            "job %s: follow ended (%s)",
            self.job.name,
            "follow" if follow in done else "watchdog" if watchdog in done else "stop",
        )
        if stopper in done or self.held.stop.is_set():
            return await self.stopped()
        if watchdog in done:
            kind, message = watchdog.result()
            if kind != "finished":
                return await self.failed(cast(scheduler.FailureKind, kind), message)
            again = self.client.follow_prompt(self.prompt_id, self.client_id, deadline=QUICK * 10)
            follow = asyncio.create_task(again)
            await asyncio.wait([follow])
        try:
            result = follow.result()
        except errors.ComfyValidationError as exc:
            return await self.failed("validation", str(exc))
        except errors.ComfyOutOfMemoryError as exc:
            return await self.failed("oom", _node_message(exc))
        except errors.ComfyExecutionError as exc:
            kind = scheduler.execution_failure(exc.exception_type, str(exc))
            return await self.failed(kind, _node_message(exc))
        except errors.ComfyInterruptedError as exc:
            return await self.failed("interrupted", str(exc))
        except errors.ComfyDeadlineError:
            return await self.failed("timeout", f"not finished within {self.spec.timeout}")
        except errors.ComfyAnswerTooLargeError as exc:
            return await self.failed("too_large", str(exc))
        except errors.ComfyError as exc:
            return await self.failed("instance_lost", str(exc))
        return await self.succeed(result)

    # ------------------------------------------------------------- graph
    async def build(self) -> workflows.Workflow:
        spec = self.spec
        positive = negative = None
        muse = None
        if spec.muse_ref:
            body = await self.deps.kube.get(kube.MUSES, spec.muse_ref, self.ns)
            if body is None:
                raise errors.JobBuildError("MuseNotFound", f"muse {spec.muse_ref!r} does not exist")
            muse = Muse.from_body(body).spec
        composed = prompts.compose(
            muse, spec.prompt, spec.negative_prompt, variation=spec.variation
        )
        if muse is not None:
            positive, negative = composed.positive, composed.negative
        # The minors policy, second line (the studio is the first; kubectl bypasses it):
        # on the composed texts, before anything (reference upload, prompt) reaches ComfyUI.
        # The admission webhook applies this very function before the job is stored.
        refusal = admission.policy_refusal(spec, muse)
        if refusal is not None:
            raise errors.JobBuildError(POLICY_REFUSED, policy_message(refusal))
        if muse is not None and spec.model is None and muse.preferred_model:
            spec = spec.model_copy(update={"model": muse.preferred_model})
        if spec.seed < 0 and self.status.get("seed") is not None:
            spec = spec.model_copy(update={"seed": int(self.status["seed"])})  # same on retry
        # The pool's template: its video family, or its style models for a muse's references.
        template = None
        if spec.kind == "video" or (muse is not None and muse.reference_images):
            body = await self.deps.kube.get(kube.GPUPOOLS, self.pool.name, self.pool.namespace)
            template = GpuPool.from_body(body).spec.template if body is not None else None
        plan = conditioning.plan_references(
            kind=spec.kind, checkpoint=spec.model or workflows.DEFAULT_CHECKPOINT,
            own_reference=spec.reference_image,
            muse_references=muse.reference_images if muse is not None else (),
            styles=template.style_models if template is not None else (),
            job_strength=spec.reference_strength,
            muse_strength=muse.reference_strength if muse is not None else None,
        )  # fmt: skip
        spec = spec.model_copy(update={"reference_image": plan.start})
        # Only the owner's own uploads in this namespace (kubectl bypasses the studio),
        # every one of them checked before any is read.
        for key in plan.artifact_keys():
            ref = references.check_reference(key, namespace=self.ns, owner=spec.owner)
            if ref is not None:
                raise errors.JobBuildError(ref.reason, ref.message)
        uploads: dict[str, str] = {}
        for key in plan.artifact_keys():
            assert self.client is not None
            data = await self.deps.artifacts.get_bytes(key)
            name = f"warmpool-{self.job.uid}-{key.rsplit('/', 1)[-1]}"
            uploads[key] = await self.client.upload_image(data, name)
        self.spec = spec
        family = None
        if spec.kind == "video" and template is not None:  # the pool's video family
            family = template.video_family(spec.model)
        return workflows.build_workflow(spec, namespace=self.ns, job=self.job.name,
                                        rng=random.Random(), positive=positive, negative=negative,
                                        reference_upload=uploads.get(plan.start or ""),
                                        family=family,
                                        style=conditioning.style_inputs(plan, uploads),
                                        checkpoint=self.pool.checkpoint(spec.model))  # fmt: skip

    # ------------------------------------------------------------- progress and watchdog
    async def on_progress(self, event: comfy.ProgressEvent) -> None:
        if self.accepted is None and event.prompt_id:
            self.accepted_now(event.prompt_id)
        now = self.monotonic()
        self.last_activity = now
        self.activity[(self.ns, self.inst.name)] = now
        if event.kind == "started" and self.exec_started is None:
            self.exec_started = now
        if event.kind != "progress" or event.max <= 0:
            return
        if self.exec_started is None:
            self.exec_started = now
        percent = min(99, event.value * 100 // event.max)
        lease_due = now - self.writer.last_write >= self.pool.jobs.lease_seconds / 3
        if (percent != self.last_percent and now - self.writer.last_write >= PROGRESS_INTERVAL) or (
            lease_due
        ):
            self.last_percent = percent
            self.writer.enqueue({
                "progress": {"value": event.value, "max": event.max, "percent": percent},
                "leaseExpiresAt": format_time(lease_end(self.deps.now(), self.pool)),
            })  # fmt: skip

    async def watch(self) -> tuple[str, str]:
        """A silent websocket and an unchanged ComfyUI queue for ``stallTimeout`` → stall.

        Also ``("finished", "")`` when the prompt is in the history but its end never
        came over the websocket: ComfyUI registers a socket only after the handshake,
        so a prompt ending in that instant is announced to nobody.
        """
        assert self.client is not None
        stall = parse_duration(self.pool.jobs.stall_timeout).total_seconds()
        tick = min(max(stall / 5, 0.05), 0.5)
        early = min(1.0, stall / 2)
        snapshot: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        key = (self.ns, self.inst.name)
        while True:
            await asyncio.sleep(tick)
            if self.writer.last_write and self.monotonic() - self.writer.last_write >= (
                self.pool.jobs.lease_seconds / 3
            ):
                self.writer.enqueue(
                    {"leaseExpiresAt": format_time(lease_end(self.deps.now(), self.pool))}
                )
            silent = self.monotonic() - max(self.last_activity, self.activity.get(key, 0.0))
            if not self.prompt_id:  # not accepted yet (run_prompt's own time-outs apply)
                continue
            if silent < early:
                snapshot = None
                continue
            try:
                queue = await asyncio.wait_for(self.client.queue_state(), QUICK)
            except (errors.ComfyError, TimeoutError) as exc:
                if silent >= stall:
                    return "instance_lost", f"ComfyUI stopped answering: {exc}"
                continue
            if self.prompt_id not in queue.running and self.prompt_id not in queue.pending:
                with contextlib.suppress(errors.ComfyError, TimeoutError):
                    if await asyncio.wait_for(self.client.history(self.prompt_id), QUICK):
                        return "finished", ""
                if silent >= stall:
                    return "instance_lost", "the prompt is neither queued nor running any more"
                continue
            if silent < stall / 2:
                continue
            state = (queue.running, queue.pending)
            if snapshot != state:
                if snapshot is not None:
                    self.last_activity = self.monotonic()
                snapshot = state
            elif silent >= stall:
                return "stalled", f"no progress for {self.pool.jobs.stall_timeout}"

    # ------------------------------------------------------------- outcomes
    async def succeed(self, result: comfy.PromptResult) -> bool:
        assert self.client is not None
        gpu_seconds = self.monotonic() - (self.exec_started or self.accepted or self.monotonic())
        files = [f for f in result.outputs if f.type == "output"]
        if not files:
            return await self.failed("bad_output", "the prompt produced no output")
        stored: list[outputs.Stored] = []
        for index, file in enumerate(files):
            try:
                item = await outputs.store(self.deps, self.client, file, index=index,
                                           record=self.record())  # fmt: skip
            except errors.JobOutputError as exc:
                return await self.failed("bad_output", str(exc))
            except errors.ComfyAnswerTooLargeError as exc:
                return await self.failed("too_large", f"fetching outputs: {exc}")
            except errors.ComfyError as exc:
                return await self.failed("instance_lost", f"fetching outputs: {exc}")
            except errors.ArtifactError as exc:  # the store is down: try again later
                return await self.failed("store_unavailable", f"storing outputs: {exc}")
            stored.append(item)
        cost = round(gpu_seconds * self.inst.price_per_hour / 3600.0, 6)
        pool, gpu = self.pool.name, self.inst.gpu_name or "unknown"
        metrics.JOB_RUN.labels(self.ns, pool).observe(self.monotonic() - (self.accepted or 0.0))
        for item in stored:
            metrics.OUTPUT_BYTES.labels(self.ns, pool).inc(item.output.size)
        if self.spec.kind == "video":
            fps = self.spec.fps or workflows.DEFAULT_FPS
            seconds = sum((s.output.frames or 1) for s in stored) / fps
            metrics.OUTPUT_COST.labels(self.ns, pool, gpu, "video").observe(
                cost / max(seconds, 1e-9)
            )
        else:
            per = cost / max(len(stored), 1)
            for _ in stored:
                metrics.OUTPUT_COST.labels(self.ns, pool, gpu, "image").observe(per)
        extra = {
            "outputs": [s.output.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for s in stored],
            "actualCost": cost,
            "progress": {"value": 100, "max": 100, "percent": 100},
        }  # fmt: skip
        done = await self.finish("Succeeded", "Succeeded", f"{len(stored)} output(s)", extra)
        if self.spec.muse_ref:
            with contextlib.suppress(errors.KubeError):  # counting never fails the job
                await musecount.count_job(self.deps, self.ns, self.spec.muse_ref, self.job.name)
        return done

    def record(self) -> dict[str, Any]:
        """The metadata stored next to each output (the gallery lists these)."""
        return {
            "namespace": self.ns, "job": self.job.name, "kind": self.spec.kind,
            "owner": self.spec.owner or None, "pool": self.pool.name,
            "muse": self.spec.muse_ref, "prompt": self.spec.prompt,
            "negativePrompt": self.spec.negative_prompt,
            "model": self.spec.model or workflows.DEFAULT_CHECKPOINT,
            "created": self.deps.now(), "tags": list(self.spec.tags),
        }  # fmt: skip

    async def stopped(self) -> bool:
        reason = self.held.stop_reason
        await self.interrupt()
        if reason == "gone":
            return False
        if reason == "cancelled":
            return await self.finish("Cancelled", "Deleted", "the job was deleted while placed")
        return await self.failed("instance_lost", f"instance {self.inst.name} went away")

    async def failed(self, kind: scheduler.FailureKind, message: str) -> bool:
        """Requeue or fail after this attempt; True when the job is now terminal."""
        gpus = self.pool_gpus()
        verdict = scheduler.decide_failure(
            kind, attempts=max(self.attempts, 1), max_attempts=self.pool.jobs.max_attempts,
            gpu_name=self.inst.gpu_name, pool_gpus=gpus, excluded_gpus=self.job.excluded_gpus,
        )  # fmt: skip
        metrics.JOB_FAILURES.labels(self.ns, self.pool.name, verdict.reason).inc()
        if kind in ("stalled", "timeout", "bad_output", "interrupted", "too_large"):
            await self.interrupt()
        if verdict.record_host:
            await outcomes.record_host_failure(
                self.deps.kube, self.pool, self.inst.machine_id, verdict.reason, message,
                now=self.deps.now(),
            )  # fmt: skip
        outcome = "requeued" if verdict.requeue else "failed"
        logger.info("job %s/%s on %s: %s (%s): %s", self.ns, self.job.name, self.inst.name,
                    verdict.reason, outcome, message)  # fmt: skip
        if not verdict.requeue:
            return await self.finish("Failed", verdict.reason, message[:1000])
        hosts = set(self.job.excluded_hosts)
        if verdict.exclude_host and self.inst.machine_id is not None:
            hosts.add(self.inst.machine_id)
        gpus_out = set(self.job.excluded_gpus)
        if verdict.exclude_gpu and self.inst.gpu_name:
            gpus_out.add(self.inst.gpu_name)
        await self.writer.flush()
        self.requeued = await self.writer.write(self.first_write(outcomes.requeued(
            verdict.reason, message, excluded_hosts=hosts, excluded_gpus=gpus_out
        )))  # fmt: skip
        return False

    async def finish(
        self, phase: str, reason: str, message: str, extra: dict[str, Any] | None = None
    ) -> bool:
        """Write a terminal phase (the runner drops the finalizer once the slot is free)."""
        status = {"phase": phase, "reason": reason, "message": message,
                  "finishedAt": format_time(self.deps.now()), "leaseExpiresAt": None,
                  "attempts": max(self.attempts, self.job.attempts), **(extra or {})}  # fmt: skip
        await self.writer.flush()
        await self.writer.write(self.first_write(status))
        metrics.JOBS_FINISHED.labels(self.ns, self.pool.name, phase).inc()
        return True

    def first_write(self, status: dict[str, Any]) -> dict[str, Any]:
        """An outcome written before the placement was: with the placement's fields (but
        never the lease of a job that is done with this attempt)."""
        if self.placement_written or self.flow is None:
            return status
        return {**self.placement({}), "leaseExpiresAt": None, **status}

    # ------------------------------------------------------------- I/O helpers
    async def token(self) -> str | None:
        return await self.deps.tokens.get(self.ns, self.inst.name, secret=self.inst.token_secret)

    async def pin(self) -> str | None:
        """The instance's pinned TLS certificate (None: rented without one)."""
        return await self.deps.tokens.pin(self.ns, self.inst.name, secret=self.inst.token_secret)

    async def interrupt(self) -> None:
        """Best effort: drop the prompt from the queue, interrupt it if it runs."""
        if self.client is None or not self.prompt_id:
            return
        quick = self.deps.comfy.client(self.inst.comfy_url, await self.token(), timeout=QUICK,
                                       attempts=1, pin=await self.pin())  # fmt: skip
        with contextlib.suppress(errors.ComfyError, TimeoutError):
            await asyncio.wait_for(quick.cancel(self.prompt_id), QUICK * 2)


def _node_message(exc: errors.ComfyExecutionError) -> str:
    where = f"node {exc.node_id} ({exc.node_type})" if exc.node_id else "a node"
    return f"{where}: {exc.exception_type or 'error'}: {str(exc).strip()}"[:1000]

"""Running one placed job on its instance's ComfyUI, and writing what happened.

:func:`run_job` is the task the dispatcher starts per placed job: build the graph
(:mod:`.build`), submit it on the instance's shared websocket session
(:mod:`..adapters.comfy_session`: one socket per instance, the prompt id chosen here),
follow it with throttled progress writes and a watchdog, store the outputs, write
``Succeeded``; or ask :func:`scheduler.decide_failure` whether to requeue or fail. The
runner gets a held slot and the adapters (:class:`Deps`) and returns an :class:`Outcome`;
the job loop (:mod:`.loops`) releases the slot after it.

A job may be queued ahead in ComfyUI, behind the prompt running there: it is ``Running``
from the moment its prompt begins to run (``execution_start``), not from its submission.
A queued-ahead job that is cancelled, or whose instance drains, is taken out of ComfyUI's
queue (``POST /queue {"delete": [id]}``) before it runs; a job stopped while its
``POST /prompt`` is in flight waits for ComfyUI's answer first, then takes the prompt out
(or interrupts it, when it began). ``spec.timeout`` counts from the prompt's start; the wait
in ComfyUI's queue before it has its own bound (:mod:`..decisions.deadlines`).

Writes per job: the placement with the start (``Running``, one write, once the prompt has
run for :data:`RUNNING_WRITE_AFTER`: a job done sooner writes it with its outcome, as one
write; ``Scheduled`` first only when the prompt has not begun after
:data:`PLACEMENT_WRITE_AFTER`, or :data:`QUEUED_WRITE_AFTER` while ComfyUI holds it in its
queue), progress at most once per :data:`PROGRESS_INTERVAL` (and only when the percent
moved), the outcome; the finalizer (added and removed: two more) only for a job still
running :data:`FINALIZER_AFTER` after it began — one write for a job shorter than a second,
besides its creation.

One piece past ~400 lines on purpose: the steps of an attempt (place, follow, watch,
succeed or fail) share its state (session, prompt id, timers, writer); the graph is built
in :mod:`.build`, the writes are in :mod:`.outcomes`, the outputs in :mod:`.outputs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from warmpool.crds.common import format_time, parse_duration, parse_optional_time
from warmpool.crds.generationjob import (
    GenerationJobSpec,
    GenerationJobStatus,
    Progress,
    ReferenceUse,
)
from warmpool.operator import errors, metrics
from warmpool.operator.adapters import comfy, comfy_session
from warmpool.operator.controllers.jobs import build, musecount, outcomes, outputs, watchdog
from warmpool.operator.controllers.jobs.facts import JobFacts, PoolFacts, lease_end
from warmpool.operator.controllers.jobs.ledger import Held, InstanceKey
from warmpool.operator.decisions import deadlines, scheduler, workflows
from warmpool.operator.deps import Deps

logger = logging.getLogger(__name__)

#: Seconds between two progress writes of one job (at most).
PROGRESS_INTERVAL = 1.0
#: Time-out of best-effort calls (interrupts, cleanup) on a possibly dead instance.
QUICK = 3.0
#: Seconds after placement without the prompt beginning to run (or ComfyUI accepting it)
#: before ``Scheduled`` is written on its own (normally the placement goes with ``Running``).
PLACEMENT_WRITE_AFTER = 1.0
#: The same for a prompt ComfyUI accepted into its queue (behind the running one).
QUEUED_WRITE_AFTER = 5.0
#: Seconds a prompt runs before ``Running`` is written (with the placement); a job that
#: ends sooner writes its start with its outcome.
RUNNING_WRITE_AFTER = 1.0
#: Seconds a prompt runs before the job's finalizer is added (see :meth:`Run.guard_later`).
FINALIZER_AFTER = 2.0
#: Status reason of a job the minors policy refuses (never submitted).
POLICY_REFUSED = build.POLICY_REFUSED
#: Status reason of a job taken out of a draining instance's queue before it ran.
DRAINED = "Drained"


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
        refs = self.status.get("references")  # a resumed attempt's (it is not built again)
        self.references = ReferenceUse.model_validate(refs) if refs else None
        self.prompt_id = self.job.prompt_id
        self.attempts = self.job.attempts
        self.session: comfy_session.ComfySession | None = None
        self.client: comfy.ComfyClient | None = None
        self.submitted = False  # ComfyUI accepted the prompt (it may wait in its queue)
        self.last_activity = self.monotonic()
        self.last_percent = -1
        self.exec_started: float | None = None
        self.accepted: float | None = None  # when the prompt began to run (monotonic)
        self.flow: workflows.Workflow | None = None
        self.writer = outcomes.JobWriter(deps.kube, self.job, monotonic=self.monotonic)
        self.requeued = False
        self.placed_at: datetime | None = None
        self.placement_written = False
        self.began = asyncio.Event()  # the prompt began to run
        self.running: dict[str, Any] | None = None  # the Running fields, until written
        self.resumed = False
        self.ending = False  # the prompt ended (or the runner stops): no placement write now
        self.later: asyncio.Task[None] | None = None
        self.adding_finalizer = False
        held.hand_over = self.hand_over

    # ------------------------------------------------------------- the attempt
    async def attempt(self, *, resume: bool) -> bool:
        """Run to an outcome; True when the job reached a terminal phase."""
        self.session = self.deps.comfy.session(self.inst.comfy_url, await self.token(),
                                               timeout=self.deps.settings.comfy_timeout,
                                               pin=await self.pin())  # fmt: skip
        self.client = self.session.client
        if resume:
            self.submitted = self.placement_written = self.resumed = True
            started = parse_optional_time(self.status.get("startedAt"))
            if self.job.phase == "Running":
                self.held.started = True
                self.began.set()
                self.accepted = self.monotonic() - (
                    (self.deps.now() - started).total_seconds() if started else 0.0
                )
            return await self.follow(None)
        try:
            built = await build.build(self.deps, self.job, self.pool, self.spec,
                                      status=self.status, client=self.client)  # fmt: skip
        except (errors.JobBuildError, workflows.WorkflowError, errors.ArtifactError) as exc:
            reason = exc.reason if isinstance(exc, errors.JobBuildError) else "InvalidSpec"
            return await self.finish("Failed", reason, str(exc)[:500])
        except errors.ComfyAnswerTooLargeError as exc:
            return await self.failed("too_large", f"uploading the reference: {exc}")
        except errors.ComfyError as exc:
            return await self.failed("instance_lost", f"uploading the reference: {exc}")
        self.flow, self.spec, self.references = built.flow, built.spec, built.references
        # The submission goes first (dispatch latency); the placement is written with the
        # start of the prompt, in one write (Running, with the lease and the attempt), or
        # as Scheduled when it has not begun after PLACEMENT_WRITE_AFTER (queued behind
        # another on the instance, or ComfyUI slow to answer). The prompt id is chosen
        # here: a cancellation before ComfyUI's answer still finds the prompt.
        self.prompt_id = str(uuid.uuid4())
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

    async def guard_later(self) -> None:
        """The placement's writes, later: ``Running`` once the prompt has run for
        :data:`RUNNING_WRITE_AFTER`, ``Scheduled`` before it when it has not begun soon
        (see the module docstring); the finalizer once it has run for
        :data:`FINALIZER_AFTER` (a deletion before that is seen by its DELETED event: the
        runner cancels the prompt all the same; the finalizer only matters for a job that
        runs long enough to be deleted unseen)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.began.wait(), PLACEMENT_WRITE_AFTER)
        if not self.began.is_set() and self.submitted:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.began.wait(), QUEUED_WRITE_AFTER - PLACEMENT_WRITE_AFTER
                )
        if not self.began.is_set() and not self.ended():
            self.writer.enqueue(self.placement({"promptId": self.prompt_id} if self.submitted
                                               else {}))  # fmt: skip
            self.watch_gone(self.writer.chain)
            await self.began.wait()
        await asyncio.sleep(RUNNING_WRITE_AFTER)
        if self.ended():  # the outcome carries the start
            return
        self.write_running()
        await asyncio.sleep(max(FINALIZER_AFTER - RUNNING_WRITE_AFTER, 0.0))
        if self.ended():
            return
        self.adding_finalizer = True
        try:
            if not await self.writer.add_finalizer():
                self.held.halt("gone")
        except errors.KubeError as exc:  # the job runs on; a deletion is still seen
            logger.warning("job %s/%s: could not add the finalizer: %s", self.ns,
                           self.job.name, exc)  # fmt: skip

    async def hand_over(self) -> None:
        """This replica stands down (its dispatcher stops): write what the replica taking
        over needs to resume the job instead of running it again — the placement with the
        prompt id and, once the prompt began, the Running fields (a short job writes
        nothing until its outcome otherwise) — before the runner is cancelled. Nothing
        before the prompt id is chosen, or once the prompt ended (the outcome is on its
        way)."""
        if self.ending or not self.prompt_id:
            return
        if self.running is not None:
            self.write_running()
        elif not self.placement_written:
            self.writer.enqueue(self.placement({"promptId": self.prompt_id}))
        if self.writer.chain is not None:
            await asyncio.wait([self.writer.chain])

    def ended(self) -> bool:
        """The prompt ended (or the runner stops): placement writes go with the outcome."""
        return self.ending

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
            estimated_seconds=estimate.seconds, references=self.references,
        ))  # fmt: skip
        return {**placed, **status}

    def started_now(self) -> None:
        """The prompt began to run on ComfyUI: Running, written by :meth:`guard_later`
        (or at once for a resumed job, whose placement was written before)."""
        if self.accepted is not None:
            return
        self.accepted = self.monotonic()
        self.held.started = True
        now = self.deps.now()
        metrics.JOB_QUEUE_WAIT.labels(self.ns, self.pool.name).observe(
            max((now - self.job.created).total_seconds(), 0.0)
        )
        self.running = {"phase": "Running", "startedAt": format_time(now),
                        "promptId": self.prompt_id}  # fmt: skip
        self.began.set()
        if self.resumed:
            self.write_running()

    def write_running(self) -> None:
        """Write the Running fields (with the placement's, on the attempt's first write)."""
        if self.running is None:
            return
        first = not self.placement_written
        self.writer.enqueue(self.placement(self.running))
        self.running = None
        if first:
            self.watch_gone(self.writer.chain)

    async def follow(self, graph: dict[str, Any] | None) -> bool:
        """Submit ``graph`` and follow it (or follow the known prompt when None)."""
        assert self.session is not None
        bounds = self.deadlines()
        follow = asyncio.create_task(
            self.session.run_prompt(graph, prompt_id=self.prompt_id, number=self.held.number,
                                    on_progress=self.on_progress, deadline=bounds.run,
                                    queue_wait=bounds.queue_wait, poll_interval=0.5)
            if graph is not None
            else self.session.follow_prompt(self.prompt_id, on_progress=self.on_progress,
                                            deadline=bounds.run, queue_wait=bounds.queue_wait,
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
        self.ending = not (stopper in done and self.held.stop_reason == "drained")
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
            again = self.session.follow_prompt(self.prompt_id, deadline=QUICK * 10)
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
        except errors.ComfyQueueWaitError:
            waited = self.deps.settings.queue_wait_max_seconds
            return await self.failed("queue_wait", f"did not begin within {waited:g}s in "
                                     f"{self.inst.name}'s ComfyUI queue")  # fmt: skip
        except errors.ComfyDeadlineError:
            return await self.failed("timeout", f"not finished within {self.spec.timeout}")
        except errors.ComfyAnswerTooLargeError as exc:
            return await self.failed("too_large", str(exc))
        except errors.ComfyError as exc:
            return await self.failed("instance_lost", str(exc))
        return await self.succeed(result)

    def deadlines(self) -> deadlines.PromptDeadlines:
        """``spec.timeout`` from the prompt's start, the queue wait bounded apart (a resumed
        prompt has what is left of both: the wait counts from its placement)."""
        now = self.monotonic()
        placed = self.placed_at or parse_optional_time(self.status.get("scheduledAt"))
        waited = (self.deps.now() - placed).total_seconds() if placed else 0.0
        return deadlines.plan_deadlines(
            parse_duration(self.spec.timeout).total_seconds(),
            queue_wait_max=self.deps.settings.queue_wait_max_seconds, waited=max(waited, 0.0),
            ran=None if self.accepted is None else now - self.accepted,
        )  # fmt: skip

    # ------------------------------------------------------------- progress and watchdog
    async def on_progress(self, event: comfy.ProgressEvent) -> None:
        if event.kind == "queued":
            self.submitted = True
            self.prompt_id = event.prompt_id or self.prompt_id  # an old server's own id
            return
        if self.accepted is None:
            self.started_now()
        now = self.monotonic()
        self.last_activity = now
        self.activity[(self.ns, self.inst.name)] = now
        if event.kind == "started" and self.exec_started is None:
            self.exec_started = now
        if event.kind != "progress" or event.max <= 0 or self.running is not None:
            return  # (progress waits for the Running write)
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
        """The watchdog of this attempt (:func:`watchdog.watch`)."""
        return await watchdog.watch(self)

    # ------------------------------------------------------------- outcomes
    async def succeed(self, result: comfy.PromptResult) -> bool:
        assert self.client is not None
        gpu_seconds = self.monotonic() - (self.exec_started or self.accepted or self.monotonic())
        record = outputs.record_of(self.job, self.spec, self.pool.name, now=self.deps.now(),
                                   references=self.references)  # fmt: skip
        try:
            stored = await outputs.store_all(self.deps, self.client, result.outputs, record=record)
        except outputs.Refused as exc:
            return await self.failed(exc.kind, exc.message)
        cost = round(gpu_seconds * self.inst.price_per_hour / 3600.0, 6)
        metrics.JOB_RUN.labels(self.ns, self.pool.name).observe(
            self.monotonic() - (self.accepted or 0.0)
        )
        outputs.observe(stored, self.spec, namespace=self.ns, pool=self.pool.name,
                        gpu=self.inst.gpu_name or "unknown", cost=cost)  # fmt: skip
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

    async def stopped(self) -> bool:
        reason = self.held.stop_reason
        if reason == "drained":
            if await self.unqueued():
                return await self.drained()
            self.held.go_on()  # it began meanwhile: it runs to its end there
            return await self.follow(None)
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
        if kind in ("stalled", "timeout", "bad_output", "interrupted", "too_large", "queue_wait"):
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
        started, self.running = self.running or {}, None
        if self.placement_written or self.flow is None:
            return {**started, **status}
        return {**self.placement({}), **started, "leaseExpiresAt": None, **status}

    async def unqueued(self) -> bool:
        """Take the prompt out of ComfyUI's queue; True unless it began to run (or ended)
        first. Unsure (the instance does not answer): taken as out (it is placed again)."""
        assert self.client is not None
        if self.session is not None:  # a POST still in flight: its answer first
            self.prompt_id = await self.session.settle(self.prompt_id, timeout=QUICK) or (
                self.prompt_id
            )
        try:
            await asyncio.wait_for(self.client.delete_queued([self.prompt_id]), QUICK)
            queue = await asyncio.wait_for(self.client.queue_state(), QUICK)
            if self.prompt_id in queue.running:
                return False
            return await asyncio.wait_for(self.client.history(self.prompt_id), QUICK) is None
        except (errors.ComfyError, TimeoutError) as exc:
            logger.info("job %s/%s: taking the prompt out of %s's queue: %s", self.ns,
                        self.job.name, self.inst.name, exc)  # fmt: skip
            return True

    async def drained(self) -> bool:
        """Back to the queue, the attempt not counted: the instance drained before it ran."""
        logger.info("job %s/%s: taken out of draining %s's queue before it ran", self.ns,
                    self.job.name, self.inst.name)  # fmt: skip
        await self.writer.flush()
        status = outcomes.requeued(DRAINED, f"instance {self.inst.name} drained before it ran",
                                   excluded_hosts=self.job.excluded_hosts,
                                   excluded_gpus=self.job.excluded_gpus)  # fmt: skip
        self.requeued = await self.writer.write(
            self.first_write({**status, "attempts": self.job.attempts})
        )
        return False

    # ------------------------------------------------------------- I/O helpers
    async def token(self) -> str | None:
        return await self.deps.tokens.get(self.ns, self.inst.name, secret=self.inst.token_secret)

    async def pin(self) -> str | None:
        """The instance's pinned TLS certificate (None: rented without one)."""
        return await self.deps.tokens.pin(self.ns, self.inst.name, secret=self.inst.token_secret)

    async def interrupt(self) -> None:
        """Best effort: drop the prompt from the queue, interrupt it if it runs. A
        ``POST /prompt`` still in flight is waited for first: ComfyUI queues what it
        received however the client went away, so a removal sent before its answer could
        come first and miss it (the prompt would then run for a job that is gone)."""
        if self.client is None or not self.prompt_id:
            return
        if self.session is not None:
            accepted = await self.session.settle(self.prompt_id, timeout=self.client.timeout)
            self.prompt_id = accepted or self.prompt_id  # (an old server's own id)
        quick = self.deps.comfy.client(self.inst.comfy_url, await self.token(), timeout=QUICK,
                                       attempts=1, pin=await self.pin())  # fmt: skip
        with contextlib.suppress(errors.ComfyError, TimeoutError):
            await asyncio.wait_for(quick.cancel(self.prompt_id), QUICK * 2)


def _node_message(exc: errors.ComfyExecutionError) -> str:
    where = f"node {exc.node_id} ({exc.node_type})" if exc.node_id else "a node"
    return f"{where}: {exc.exception_type or 'error'}: {str(exc).strip()}"[:1000]

"""The slot ledger: the jobs this process holds, each with its instance and runner task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from warmpool.operator.controllers.jobs.facts import InstanceFacts, JobFacts


@dataclass
class Held:
    """A job placed by this process: its instance and the runner task."""

    job: JobFacts
    instance: InstanceFacts
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""

    def halt(self, reason: str) -> None:
        """Ask the runner to stop (the first reason wins)."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

"""Demand side: arrival traces of generation jobs, generated from a seed and saved as JSON.

Three days (times in seconds after midnight UTC of 2024-05-01):

- ``diurnal``: a quiet day; Poisson arrivals whose rate follows the working day,
  about 1 job/hour at night rising to 24 jobs/hour mid-afternoon.
- ``bursty``: 6 jobs/hour from 08:00 to 22:00 plus six sudden spikes of 50 jobs
  each, all 50 submitted within one minute (a batch or a shared link).
- ``sparse``: a few jobs an hour (3/hour Poisson) around the clock.

A job's run time is :func:`warmpool.operator.decisions.workflows.estimate` of its
quality preset and batch size on the reference GPU (speed 1.0).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from warmpool.crds.generationjob import GenerationJobSpec
from warmpool.operator.decisions import workflows

DAY_S = 86_400.0
START = "2024-05-01T00:00:00Z"
QUALITIES = (("low", 0.25), ("medium", 0.45), ("high", 0.25), ("ultra", 0.05))
BATCHES = ((1, 0.5), (2, 0.2), (4, 0.3))
SEEDS = {"diurnal": 101, "bursty": 202, "sparse": 303}


@dataclass(frozen=True)
class Job:
    """One generation job of a trace."""

    id: str
    at: float
    """Arrival, seconds after the start of the trace."""
    quality: str
    images: int
    seconds: float
    """Run time on the reference GPU."""


@dataclass(frozen=True)
class Trace:
    name: str
    seed: int
    description: str
    start: str
    hours: float
    jobs: tuple[Job, ...]


def run_seconds(quality: str, images: int) -> float:
    """Seconds one job takes, from the workflow estimate of its preset."""
    spec = GenerationJobSpec(
        pool="bench", prompt="a lighthouse", quality=quality, batch_size=images
    )
    return workflows.estimate(spec, price_per_hour=0.0).seconds


def _pick(rng: random.Random, table: tuple[tuple[object, float], ...]) -> object:
    u, acc = rng.random(), 0.0
    for value, weight in table:
        acc += weight
        if u < acc:
            return value
    return table[-1][0]


def _poisson(rng: random.Random, rate: Callable[[float], float], peak: float) -> list[float]:
    """Arrival times of a non-homogeneous Poisson process (thinning), rate in jobs/hour."""
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak / 3600.0)
        if t >= DAY_S:
            return times
        if rng.random() < rate(t / 3600.0) / peak:
            times.append(t)


def diurnal_rate(hour: float) -> float:
    """Jobs/hour: 1 at night, 24 around 15:00."""
    day = max(0.0, math.sin(math.pi * (hour - 7.0) / 16.0)) if 7.0 <= hour <= 23.0 else 0.0
    return 1.0 + 23.0 * day**2


def bursty_base_rate(hour: float) -> float:
    """Jobs/hour of the bursty day's Poisson part (the spikes come on top)."""
    return 6.0 if 8.0 <= hour < 22.0 else 0.0


def sparse_rate(hour: float) -> float:
    """Jobs/hour of the sparse day."""
    return 3.0


#: The Poisson arrival rate (jobs/hour at an hour of the day) each trace is drawn from.
RATES: dict[str, Callable[[float], float]] = {
    "diurnal": diurnal_rate,
    "bursty": bursty_base_rate,
    "sparse": sparse_rate,
}


WEEK_DAYS = 7
WEEKS = tuple(f"{name}-week" for name in SEEDS)
"""Seven days of each load (each day drawn from its own seed): the learned warm-up
learns from the first days and is measured on the others."""


def generate(name: str, seed: int | None = None) -> Trace:
    """The trace ``name`` from ``seed`` (default: the committed trace's seed)."""
    if name.endswith("-week"):
        return generate_week(name.removesuffix("-week"), seed)
    seed = SEEDS[name] if seed is None else seed
    rng = random.Random(seed)
    if name == "diurnal":
        times = _poisson(rng, diurnal_rate, 24.0)
        description = "quiet diurnal day: ~1 job/h at night, up to 24 jobs/h mid-afternoon"
    elif name == "bursty":
        times = _poisson(rng, bursty_base_rate, 6.0)
        for hour in sorted(rng.uniform(9.0, 21.0) for _ in range(6)):
            start = hour * 3600.0
            times += [start + rng.uniform(0.0, 60.0) for _ in range(50)]
        description = "bursty day: 6 jobs/h 08-22h plus six spikes of 50 jobs within a minute"
    elif name == "sparse":
        times = _poisson(rng, sparse_rate, 3.0)
        description = "sparse day: 3 jobs/h around the clock"
    else:
        raise ValueError(f"unknown trace {name!r}")
    jobs = []
    for n, at in enumerate(sorted(times)):
        quality = str(_pick(rng, QUALITIES))
        images = int(str(_pick(rng, BATCHES)))
        jobs.append(
            Job(f"{name}-{n:04d}", round(at, 3), quality, images, run_seconds(quality, images))
        )
    return Trace(name, seed, description, START, 24.0, tuple(jobs))


def generate_week(name: str, seed: int | None = None, days: int = WEEK_DAYS) -> Trace:
    """``days`` days of ``name`` back to back, day ``d`` drawn from ``seed * 100 + d``."""
    seed = SEEDS[name] if seed is None else seed
    jobs: list[Job] = []
    for d in range(days):
        one = generate(name, seed * 100 + d)
        jobs += [
            Job(f"{name}-w{d}-{n:04d}", round(j.at + d * DAY_S, 3), j.quality, j.images, j.seconds)
            for n, j in enumerate(one.jobs)
        ]
    description = f"{days} days of: {generate(name, seed).description}"
    return Trace(f"{name}-week", seed, description, START, 24.0 * days, tuple(jobs))


def save(trace: Trace, path: Path) -> None:
    data = asdict(trace)
    data["jobs"] = [[j.id, j.at, j.quality, j.images, j.seconds] for j in trace.jobs]
    data["job_fields"] = ["id", "at", "quality", "images", "seconds"]
    path.write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path) -> Trace:
    data = json.loads(path.read_text())
    jobs = tuple(Job(str(i), float(a), str(q), int(n), float(s)) for i, a, q, n, s in data["jobs"])
    return Trace(
        data["name"],
        int(data["seed"]),
        data["description"],
        data["start"],
        float(data["hours"]),
        jobs,
    )


def ensure(
    directory: Path, names: tuple[str, ...] = ("diurnal", "bursty", "sparse")
) -> list[Trace]:
    """Load the committed traces, generating (and saving) any that are missing."""
    directory.mkdir(parents=True, exist_ok=True)
    traces = []
    for name in names:
        path = directory / f"{name}.json"
        if not path.exists():
            save(generate(name), path)
        traces.append(load(path))
    return traces

"""The studio's per-application state, built by the lifespan (``app.state.studio``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from warmpool.api.auth import Authenticator
from warmpool.api.blocklist import Blocklist
from warmpool.api.fanout import Fanout
from warmpool.api.hub import Hub
from warmpool.api.limits import RateLimiter
from warmpool.api.records.watch import SharedWatch
from warmpool.api.settings import StudioSettings
from warmpool.api.slots import Slots
from warmpool.api.uploads import Uploads
from warmpool.crds.gpupool import GpuPool
from warmpool.operator.adapters import kube


@dataclass
class Studio:
    """Clients and helpers shared by every request."""

    settings: StudioSettings
    kube: kube.KubeClient
    uploads: Uploads
    hub: Hub
    auth: Authenticator
    limiter: RateLimiter
    blocklist: Blocklist
    #: Admissions under the unfinished-jobs limit (shared by the replicas on PostgreSQL).
    slots: Slots
    #: The progress streams of each job, written by one task per job.
    fanout: Fanout
    #: The records' shared GpuPool watch: pool lookups read its cache (None: always GET).
    pools: SharedWatch | None = None
    #: Each pool's model as last validated, with the resourceVersion it was read at: one
    #: validation per change of the pool, not one per submission (one entry per pool).
    validated_pools: dict[str, tuple[str, GpuPool]] = field(default_factory=dict)


def studio_of(request: Request) -> Studio:
    studio: Studio = request.app.state.studio
    return studio

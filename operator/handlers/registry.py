"""The Kopf registry every handler module registers into (no global state)."""

from __future__ import annotations

import kopf

from warmpool.crds.common import GROUP, VERSION

registry = kopf.OperatorRegistry()

#: Resource selectors for the decorators: (group, version, plural).
GPUPOOLS = (GROUP, VERSION, "gpupools")
GPUINSTANCES = (GROUP, VERSION, "gpuinstances")
GENERATIONJOBS = (GROUP, VERSION, "generationjobs")
MUSES = (GROUP, VERSION, "muses")

#: The finalizer that destroys a rental before its GpuInstance goes away.
FINALIZER = "warmpool.dev/finalizer"

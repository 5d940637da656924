"""The interpreter's cyclic garbage collector, told which objects are there for good.

A full collection (CPython's oldest generation) walks every tracked object. A started
studio holds about 200,000 of them from its imports alone (functions, classes, closures,
annotations of FastAPI, pydantic, SQLAlchemy, …), the operator about 120,000 (Kopf,
aiohttp, httpx, pydantic); none of them will ever be garbage. Each full collection
walked them all anyway: 100–240 ms during which every request, stream and watch of the
process waited. A burst of new objects brings one on (500 progress streams opening: six
of them in ``bench/studio.py``'s fan-out rounds, about 1 s of the studio's CPU).

:func:`freeze` moves everything alive at start-up into the permanent generation, which
collections skip; what the process makes afterwards is collected as before.
"""

from __future__ import annotations

import gc


def freeze() -> int:
    """Collect what start-up left behind, then exempt the rest from every later
    collection. Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

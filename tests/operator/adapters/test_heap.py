"""``heap.freeze``: what start-up left alive is skipped by every later collection, what
is made afterwards is still collected. In a child interpreter: a freeze is for the life
of the process, and this test worker's heap is not the test's to freeze."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import gc, json, weakref
from warmpool.operator.adapters import heap
import warmpool.api.app  # the studio's imports: FastAPI, pydantic, SQLAlchemy, ...

class Node:
    pass

kept = Node()
kept.me = kept  # alive at start-up, and tracked
before = len(gc.get_objects())
frozen = heap.freeze()
walked = {id(o) for o in gc.get_objects()}

later = Node()
later.me = later  # a cycle made after start-up ...
gone = weakref.ref(later)
del later
gc.collect()  # ... is still collected
print(json.dumps({
    "before": before,
    "frozen": frozen,
    "count": gc.get_freeze_count(),
    "walked_after": len(walked),
    "kept_walked": id(kept) in walked,
    "collected_later": gone() is None,
}))
"""


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["frozen"] == figures["count"]
    # most of the heap: the studio's imports alone leave ~200,000 tracked objects
    assert figures["frozen"] > 50_000
    assert figures["walked_after"] < figures["before"] // 10
    assert not figures["kept_walked"]
    assert figures["collected_later"]

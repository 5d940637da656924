"""Where warmpool's errors become Kopf's: the retry meaning of :mod:`..errors`.

The error tree is free of Kopf (the studio imports it); a handler that lets an error
reach Kopf wraps its controller call in :func:`kopf_errors`, so that Kopf retries a
:class:`errors.TemporaryError` after its ``delay`` and never retries a
:class:`errors.PermanentError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import kopf

from warmpool.operator import errors


@contextmanager
def kopf_errors() -> Iterator[None]:
    """Re-raise warmpool's temporary/permanent errors as Kopf's (chained)."""
    try:
        yield
    except errors.TemporaryError as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
    except errors.PermanentError as exc:
        raise kopf.PermanentError(str(exc)) from exc

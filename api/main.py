"""``warmpool-studio --host H --port P``: the studio service under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pythonjsonlogger.json import JsonFormatter

from warmpool.api.app import create_app
from warmpool.api.settings import StudioSettings
from warmpool.operator.adapters import heap

#: The fields of a log line, the same as the operator's.
LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(settings: StudioSettings) -> None:
    """Text or JSON lines on stderr for every logger, uvicorn's included (uvicorn is started
    without its own logging config so that its records reach this one handler). The httpx
    logger stays at WARNING (it logs URLs)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(LOG_FIELDS, timestamp=True))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the root's level (uvicorn.run's log_level after)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warmpool-studio", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on this inherited listening socket instead of binding --host/--port",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)
    settings = StudioSettings()
    configure_logging(settings)
    app = create_app(settings)
    heap.freeze()  # start-up's objects are there for good: no full collection walks them
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        fd=args.fd,
        log_level=args.log_level,
        log_config=None,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

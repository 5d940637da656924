"""The studio's own metrics (route templates, never raw paths) and its JSON logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from warmpool.api.main import configure_logging
from warmpool.api.settings import StudioSettings

Studio = Any  # the conftest's ``studio`` fixture: ``await studio()`` → an httpx client


def requests_of(route: str, code: str) -> float:
    labels = {"route": route, "code": code}
    return REGISTRY.get_sample_value("warmpool_studio_requests_total", labels) or 0.0


def routes_seen() -> set[str]:
    return {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "warmpool_studio_requests"
        for sample in family.samples
        if "route" in sample.labels
    }


async def test_requests_are_counted_by_route_template_not_by_path(studio: Studio) -> None:
    http = await studio()
    template = "/api/v1/generations/{name}"
    before = requests_of(template, "404")
    for name in ("gen-a1b2c3", "gen-zz9999"):
        assert (await http.get(f"/api/v1/generations/{name}")).status_code == 404
    assert requests_of(template, "404") == before + 2
    seen = routes_seen()
    assert template in seen
    assert not any("gen-" in route for route in seen), seen
    latency = REGISTRY.get_sample_value(
        "warmpool_studio_request_seconds_count", {"route": template}
    )
    assert latency is not None and latency >= 2


async def test_the_page_is_counted_as_static(studio: Studio) -> None:
    http = await studio()
    before = requests_of("static", "200")
    assert (await http.get("/")).status_code == 200
    assert requests_of("static", "200") == before + 1
    assert not any(route.endswith(".html") or route == "/" for route in routes_seen())


async def test_metrics_has_the_studio_families_and_the_build(
    studio: Studio,
) -> None:
    http = await studio()
    await http.get("/healthz")
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert {"warmpool_studio_requests", "warmpool_studio_request_seconds"} <= set(families)
    (build,) = families["warmpool_build_info"].samples
    assert build.value == 1
    assert build.labels["version"] and build.labels["commit"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn = {n: logging.getLogger(n).handlers[:] for n in ("uvicorn", "uvicorn.access")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, kept in uvicorn.items():
        logging.getLogger(name).handlers[:] = kept


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_carry_level_logger_and_message(capfd: pytest.CaptureFixture[str]) -> None:
    settings = StudioSettings(_env_file=None, log_format="json", log_level="INFO")  # type: ignore[call-arg]
    # a uvicorn started earlier in this process (log_level warning) left its own level behind
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    configure_logging(settings)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /healthz HTTP/1.1" 200')
    logging.getLogger("warmpool.api").warning("pool %s has no price", "sdxl")
    logging.getLogger("httpx").info("GET https://example.invalid/?key=not-logged")
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert [(r["levelname"], r["name"]) for r in lines] == [
        ("INFO", "uvicorn.access"),
        ("WARNING", "warmpool.api"),
    ]
    assert lines[1]["message"] == "pool sdxl has no price"
    assert all("timestamp" in r for r in lines)


def test_the_log_format_is_validated() -> None:
    with pytest.raises(ValueError, match="log_format"):
        StudioSettings(_env_file=None, log_format="xml")  # type: ignore[call-arg]

"""The official ``vastai`` CLI, unchanged, against the simulator (``--url``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

VASTAI = Path(sys.executable).parent / "vastai"

pytestmark = pytest.mark.skipif(not VASTAI.exists(), reason="the vastai CLI is not installed")


class Cli:
    def __init__(self, url: str, key: str, home: Path) -> None:
        self.url = url
        self.key = key
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "VAST_URL": url,  # the start-up GPU-name lookup ignores --url
            "VASTAI_NO_UPDATE_CHECK": "1",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        # The CLI creates its config folder with a check-then-makedirs race: two of its
        # processes started together can crash with FileExistsError. It exists already here.
        for base in (home / ".config", home / ".cache", home / ".local" / "state"):
            (base / "vastai").mkdir(parents=True, exist_ok=True)

    async def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(VASTAI), "--url", self.url, "--api-key", self.key, *args]
        return await asyncio.to_thread(
            subprocess.run, command, env=self.env, capture_output=True, text=True, timeout=60
        )

    async def json(self, *args: str) -> Any:
        done = await self.run(*args, "--raw")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(vastai_sim: Any, vastai_sim_key: str, tmp_path: Path) -> Cli:
    return Cli(vastai_sim.url, vastai_sim_key, tmp_path)


async def test_search_offers_with_query_and_order(cli: Cli, vastai_sim: Any) -> None:
    # each CLI start costs seconds (importing vastai): independent calls run together
    offers, descending, table = await asyncio.gather(
        cli.json(
            "search", "offers", "gpu_name=RTX_4090 num_gpus=1 reliability>0.98", "-o", "dph_total"
        ),
        cli.json("search", "offers", "gpu_ram>=40", "-o", "dph-", "--limit", "5"),
        cli.run("search", "offers", "gpu_name=RTX_4090 num_gpus=1", "-o", "dph_total"),
    )
    assert offers
    assert all(o["gpu_name"] == "RTX 4090" and o["num_gpus"] == 1 for o in offers)
    assert all(o["reliability"] > 0.98 and o["verification"] == "verified" for o in offers)
    prices = [o["dph_total"] for o in offers]
    assert prices == sorted(prices)
    assert 0 < len(descending) <= 5
    assert all(o["gpu_ram"] >= 40000 for o in descending)
    assert [o["dph_total"] for o in descending] == sorted(
        [o["dph_total"] for o in descending], reverse=True
    )
    assert table.returncode == 0, table.stderr
    assert str(offers[0]["id"]) in table.stdout
    assert "RTX_4090" in table.stdout
    assert vastai_sim.state.requests["POST /api/v0/bundles/"] == 3


async def test_rent_show_label_destroy(cli: Cli, vastai_sim: Any, tmp_path: Path) -> None:
    offers = await cli.json("search", "offers", "direct_port_count>=1", "-o", "dph_total")
    offer = offers[0]
    onstart = tmp_path / "onstart.sh"
    onstart.write_text("#!/bin/bash\necho warming up\n")
    created = await cli.json(
        "create",
        "instance",
        str(offer["id"]),
        "--image",
        "ghcr.io/example/comfyui:0.3.40",
        "--disk",
        "40",
        "--env",
        "-e OPEN_BUTTON_TOKEN=cli-token -p 8188:8188",
        "--label",
        "warmpool.cli.pool.one",
        "--onstart",
        str(onstart),
    )
    assert created["success"] is True
    instance_id = created["new_contract"]
    rental = vastai_sim.state.rentals[instance_id]
    assert rental.label == "warmpool.cli.pool.one"
    assert rental.disk == 40
    assert rental.env == {"OPEN_BUTTON_TOKEN": "cli-token", "-p 8188:8188": "1"}
    assert rental.onstart == "#!/bin/bash\necho warming up\n"
    assert rental.offer.id == offer["id"]

    rows, one, table = await asyncio.gather(
        cli.json("show", "instances"),
        cli.json("show", "instance", str(instance_id)),
        cli.run("show", "instances"),
    )
    assert [r["id"] for r in rows] == [instance_id]
    assert rows[0]["label"] == "warmpool.cli.pool.one"
    assert rows[0]["extra_env"] == {"OPEN_BUTTON_TOKEN": "cli-token", "-p 8188:8188": "1"}
    assert rows[0]["machine_id"] == offer["machine_id"]
    assert one["id"] == instance_id
    assert one["label"] == "warmpool.cli.pool.one"
    assert one["actual_status"] in (None, "loading", "running")
    assert table.returncode == 0, table.stderr
    assert str(instance_id) in table.stdout
    assert "warmpool.cli.pool.one" in table.stdout

    labelled = await cli.run("label", "instance", str(instance_id), "warmpool.cli.pool.renamed")
    assert labelled.returncode == 0, labelled.stderr
    assert "renamed" in labelled.stdout
    assert rental.label == "warmpool.cli.pool.renamed"

    destroyed = await cli.run("destroy", "instance", str(instance_id), "-y")
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"destroying instance {instance_id}" in destroyed.stdout
    assert instance_id not in vastai_sim.state.rentals
    gone = await cli.run("show", "instance", str(instance_id))
    assert gone.returncode == 1
    assert "not found" in gone.stderr


async def test_wrong_key_and_unknown_offer(cli: Cli, vastai_sim: Any, tmp_path: Path) -> None:
    intruder = Cli(vastai_sim.url, "wrong", tmp_path / "intruder")
    refused, unknown = await asyncio.gather(
        intruder.run("show", "instances", "--raw"),
        cli.run("create", "instance", "1", "--image", "x:1"),
    )
    assert "401" in refused.stderr
    assert "Invalid user key" in refused.stderr
    assert "404" in unknown.stderr
    assert "no_such_ask" in unknown.stderr

"""Job outputs into an S3 bucket: the real operator against a real S3-compatible server
(moto in server mode), the emulated API and the simulators."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import jobsys
import pytest
from jobsys import job_body, phase, pool_body, ready_instances, status
from moto.server import ThreadedMotoServer
from waiting import eventually

from warmpool.sim.cluster import RunningCluster
from warmpool.sim.vastai import VastaiServer

KEY_ID, SECRET, REGION, BUCKET = "AKIAJOBSTEST", "jobs-test-secret", "eu-west-1", "warmpool-jobs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server with one bucket; the AWS_* variables point at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in (("AWS_ACCESS_KEY_ID", KEY_ID), ("AWS_SECRET_ACCESS_KEY", SECRET),
                        ("AWS_REGION", REGION)):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)  # fmt: skip
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
async def sim() -> AsyncIterator[VastaiServer]:
    server = await jobsys.start_jobs_vastai()
    try:
        yield server
    finally:
        await server.stop()


async def test_outputs_and_records_land_in_the_bucket(
    cluster: RunningCluster, kubeconfig: Path, sim: VastaiServer, s3: str
) -> None:
    cluster.create(pool_body("s3pool", replicas=2))
    names = [f"s3-{i}" for i in range(6)]
    settings = jobsys.settings(f"s3://{BUCKET}/gallery", sim.url, artifacts_s3_endpoint=s3)
    async with jobsys.operator(settings):
        await eventually(lambda: len(ready_instances(cluster)) >= 2, timeout=60, what="ready")
        for name in names:
            cluster.create(job_body(name, "s3pool", owner="ada"))
        await eventually(lambda: all(phase(cluster, n) in ("Succeeded", "Failed") for n in names),
                         timeout=60, what="jobs done")  # fmt: skip
    client = boto3.client("s3", endpoint_url=s3, region_name=REGION,
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)  # fmt: skip
    for name in names:
        st = status(cluster, name)
        assert st["phase"] == "Succeeded", st
        (out,) = st["outputs"]
        body = client.get_object(Bucket=BUCKET, Key=f"gallery/{out['key']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == out["sha256"] and len(body) == out["size"]
        record_key = f"gallery/records/{out['key'].removeprefix('outputs/')}.json"
        record = client.get_object(Bucket=BUCKET, Key=record_key)["Body"].read()
        assert b'"owner": "ada"' in record and name.encode() in record

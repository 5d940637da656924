"""The artifact store: key scheme, content sniffing and image checks, and the same
behaviour on a local directory and on a real S3-compatible server (moto in server mode)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import logging
import random
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from warmpool.operator import errors
from warmpool.operator.adapters import artifacts
from warmpool.operator.settings import OperatorSettings

AWS_KEY_ID = "AKIAWARMPOOLTEST0001"
AWS_SECRET = "wJalrXUtnFEMI-warmpool-SECRET-0123456789"
_buckets = itertools.count()


pytestmark = pytest.mark.usefixtures("close_stray_loop")


# ---------------------------------------------------------------- images


def _png(size: tuple[int, int] = (64, 48), *, flat: bool = False, fmt: str = "PNG") -> bytes:
    rng = random.Random(7)
    img = Image.new("RGB", size, (30, 60, 90))
    if not flat:
        img.putdata([(rng.randrange(256), rng.randrange(256), 0) for _ in range(size[0] * size[1])])
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def _animated(colours: list[tuple[int, int, int]], *, noisy: bool = False) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in colours]
    if noisy:
        frames[0].putpixel((3, 3), (255, 255, 255))
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    return out.getvalue()


# ---------------------------------------------------------------- keys


def test_key_scheme() -> None:
    key = artifacts.output_key("team-a", "job-1", 0, ".PNG")
    assert key == "outputs/team-a/job-1/0.png"
    assert artifacts.record_key(key) == "records/team-a/job-1/0.png.json"
    sha = hashlib.sha256(b"x").hexdigest()
    assert (
        artifacts.upload_key("alice@example.com", sha, "jpg")
        == f"uploads/alice@example.com/{sha}.jpg"
    )


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "outputs/../../etc",
        "outputs/./x",
        "outputs//x",
        "outputs/x/",
        ".hidden",
        "outputs/a b",
        "outputs/caf\u00e9",
        "outputs\\x",
        "outputs/x\x00",
        "x" * 600,
    ],
    ids=[
        "empty",
        "absolute",
        "dotdot",
        "nested-dotdot",
        "dot",
        "empty-segment",
        "trailing-slash",
        "hidden",
        "space",
        "non-ascii",
        "backslash",
        "nul",
        "too-long",
    ],
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(errors.ArtifactKeyError):
        artifacts.validate_key(key)


@pytest.mark.parametrize(
    "call",
    [
        lambda: artifacts.output_key("..", "j", 0, "png"),
        lambda: artifacts.output_key("ns", "j/../../x", 0, "png"),
        lambda: artifacts.output_key("ns", "j", -1, "png"),
        lambda: artifacts.output_key("ns", "j", 0, "p/ng"),
        lambda: artifacts.record_key("uploads/a/b.png"),
        lambda: artifacts.upload_key("alice", "not-a-digest", "png"),
        lambda: artifacts.upload_key("../bob", "0" * 64, "png"),
    ],
    ids=[
        "ns-dotdot",
        "job-traversal",
        "negative-index",
        "ext-slash",
        "record-of-upload",
        "bad-digest",
        "owner-traversal",
    ],
)
def test_key_helpers_refuse(call: object) -> None:
    assert callable(call)
    with pytest.raises(errors.ArtifactKeyError):
        call()


# ---------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_png(), "image/png"),
        (_png(fmt="JPEG"), "image/jpeg"),
        (_png(fmt="WEBP"), "image/webp"),
        (_png(fmt="GIF"), "image/gif"),
        (_png(fmt="BMP"), "image/bmp"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"hello world", None),
    ],
    ids=["png", "jpeg", "webp", "gif", "bmp-by-pillow", "mp4", "unknown"],
)
def test_sniff_content_type(data: bytes, expected: str | None) -> None:
    assert artifacts.sniff_content_type(data[:64]) == expected


def test_image_facts() -> None:
    assert artifacts.image_facts(_png((64, 48))) == artifacts.ImageFacts(64, 48, 1, False)
    assert artifacts.image_facts(_png(flat=True)).is_flat_colour
    assert artifacts.check_output(_png(fmt="JPEG")).width == 64
    video = artifacts.image_facts(_animated([(0, 0, 0), (255, 0, 0), (0, 255, 0)]))
    assert (video.frames, video.is_flat_colour) == (3, False)
    assert artifacts.image_facts(_animated([(9, 9, 9), (9, 9, 9)])).is_flat_colour
    assert not artifacts.image_facts(_animated([(9, 9, 9), (9, 9, 9)], noisy=True)).is_flat_colour


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"definitely not an image", "undecodable"),
        (_png()[:200], "undecodable"),
        (_png(flat=True), "flat"),
    ],
    ids=["empty", "garbage", "truncated", "flat"],
)
def test_check_output_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(errors.ArtifactInvalidError) as info:
        artifacts.check_output(data)
    assert info.value.reason == reason


# ---------------------------------------------------------------- stores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def _bucket(endpoint: str) -> str:
    name = f"warmpool-test-{next(_buckets)}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=AWS_SECRET,
    )
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, aws_env: None) -> artifacts.ArtifactStore:
    if request.param == "file":
        return artifacts.open_store("file://store", base_dir=tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    return artifacts.open_store(f"s3://{_bucket(endpoint)}/some/prefix", s3_endpoint=endpoint)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_stream_round_trip(store: artifacts.ArtifactStore) -> None:
    image = _png((256, 256))
    data = image + random.Random(1).randbytes(3 * 1024 * 1024)  # a PNG head, 3 MiB more
    key = artifacts.output_key("ns", "job-1", 0, "png")
    stored = await store.put_stream(key, _chunks(data, 64 * 1024))
    assert stored == artifacts.StoredObject(
        key, len(data), hashlib.sha256(data).hexdigest(), "image/png"
    )
    chunks, content_type, size = await store.get_stream(key)
    got = [chunk async for chunk in chunks]
    assert (content_type, size) == ("image/png", len(data))
    assert len(got) > 1, "the object was read in one piece"
    assert b"".join(got) == data
    info = await store.head(key)
    assert info is not None
    assert (info.key, info.size) == (key, len(data))


async def test_put_bytes_given_type_and_json(store: artifacts.ArtifactStore) -> None:
    stored = await store.put_bytes(
        "uploads/bob/x.webp", _png(fmt="WEBP"), content_type="image/webp"
    )
    assert stored.content_type == "image/webp"
    assert (await store.get_stream("uploads/bob/x.webp")).content_type == "image/webp"
    await store.put_json("misc/a.json", {"b": [1, 2], "a": "é"})
    assert await store.get_json("misc/a.json") == {"a": "é", "b": [1, 2]}
    await store.put_bytes("misc/b.json", b"{nope")
    with pytest.raises(errors.ArtifactError):
        await store.get_json("misc/b.json")


async def test_missing_list_and_delete(store: artifacts.ArtifactStore) -> None:
    for key in ["outputs/ns/j/0.png", "outputs/ns/j/1.png", "outputs/ns2/k/0.png"]:
        await store.put_bytes(key, _png())
    assert await store.list("outputs/ns") == ["outputs/ns/j/0.png", "outputs/ns/j/1.png"]
    assert len(await store.list()) == 3
    await store.delete("outputs/ns/j/0.png")
    await store.delete("outputs/ns/j/0.png")  # idempotent
    assert await store.head("outputs/ns/j/0.png") is None
    with pytest.raises(errors.ArtifactNotFoundError):
        await store.get_stream("outputs/ns/j/0.png")
    with pytest.raises(errors.ArtifactNotFoundError):
        await store.get_json("nothing/here.json")


async def test_store_refuses_traversal(store: artifacts.ArtifactStore, tmp_path: Path) -> None:
    for bad in ["../escape.png", "/abs.png", "outputs/../../escape.png"]:
        with pytest.raises(errors.ArtifactKeyError):
            await store.put_bytes(bad, b"x")
        with pytest.raises(errors.ArtifactKeyError):
            await store.get_stream(bad)
    with pytest.raises(errors.ArtifactKeyError):
        await store.list("../")
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("escape.png")))


def _record(key: str, owner: str, minutes: int) -> artifacts.OutputRecord:
    return artifacts.OutputRecord(
        key=key,
        namespace="ns",
        job=key.split("/")[2],
        owner=owner,
        pool="sdxl",
        muse="ada",
        prompt="a lighthouse at dawn",
        created=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        content_type="image/png",
        size=10,
        sha256="0" * 64,
        width=64,
        height=48,
        tags=["sea"],
    )


async def test_records_listing(
    store: artifacts.ArtifactStore, caplog: pytest.LogCaptureFixture
) -> None:
    keys = [artifacts.output_key("ns", f"job-{i}", 0, "png") for i in range(5)]
    for i, key in enumerate(keys):
        await store.put_record(_record(key, "alice" if i % 2 == 0 else "bob", minutes=i))
    await store.put_bytes("records/ns/broken/0.png.json", b"[]")
    stored = await store.get_json(artifacts.record_key(keys[0]))
    assert (stored["contentType"], stored["owner"]) == ("image/png", "alice")
    assert await store.get_record(keys[1]) == _record(keys[1], "bob", 1)
    assert await store.get_record(artifacts.output_key("ns", "nope", 0, "png")) is None
    with caplog.at_level(logging.WARNING):
        alice = await store.list_records("alice")
    assert [r.key for r in alice] == [keys[4], keys[2], keys[0]]
    assert "skipping unreadable record records/ns/broken/0.png.json" in caplog.text
    assert len(await store.list_records()) == 5
    assert [r.key for r in await store.list_records(limit=2)] == [keys[4], keys[3]]
    assert await store.list_records(prefix="records/other") == []
    with pytest.raises(errors.ArtifactKeyError):
        await store.list_records(prefix="outputs")


# ---------------------------------------------------------------- backends


def test_file_url_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = artifacts.from_settings(OperatorSettings(artifacts_url="file://.warmpool/artifacts"))
    assert rel.url == f"file://{tmp_path / '.warmpool/artifacts'}"
    assert (tmp_path / ".warmpool" / "artifacts").is_dir()
    absolute = artifacts.open_store(f"file://{tmp_path}/abs")
    assert absolute.url == f"file://{tmp_path}/abs"


async def test_file_layout_on_disk(tmp_path: Path) -> None:
    store = artifacts.open_store(f"file://{tmp_path}")
    await store.put_bytes("outputs/ns/j/0.png", _png())
    assert (tmp_path / "outputs/ns/j/0.png").read_bytes() == _png()


@pytest.mark.parametrize("url", ["ftp://x", "s3://", "/just/a/path"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        artifacts.open_store(url)


async def test_s3_objects_land_under_prefix(s3_endpoint: str, aws_env: None) -> None:
    bucket = _bucket(s3_endpoint)
    settings = OperatorSettings(
        artifacts_url=f"s3://{bucket}/gallery", artifacts_s3_endpoint=s3_endpoint
    )
    store = artifacts.from_settings(settings)
    await store.put_bytes("outputs/ns/j/0.png", _png())
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="eu-west-1",
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=AWS_SECRET,
    )
    head = client.head_object(Bucket=bucket, Key="gallery/outputs/ns/j/0.png")
    assert head["ContentType"] == "image/png"
    assert AWS_SECRET not in repr(store)


async def test_s3_unreachable_is_temporary_and_secret_free(aws_env: None) -> None:
    store = artifacts.open_store("s3://bucket", s3_endpoint=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(errors.ArtifactUnavailableError) as info:
        await store.put_bytes("outputs/ns/j/0.png", b"x")
    assert AWS_SECRET not in str(info.value)
    assert AWS_KEY_ID not in str(info.value)


async def test_records_listing_sees_rewrites_and_deletions_despite_its_cache(
    store: artifacts.ArtifactStore,
) -> None:
    """Listings re-read only new or rewritten records; a retried job rewrites its record
    (new sha256), and the gallery must show the new one, never the cached old one."""
    key = artifacts.output_key("ns", "job-r", 0, "png")
    await store.put_record(_record(key, "alice", minutes=1))
    assert [r.sha256 for r in await store.list_records("alice")] == ["0" * 64]
    rewritten = _record(key, "alice", minutes=2).model_copy(update={"sha256": "f" * 64})
    await store.put_record(rewritten)
    assert [r.sha256 for r in await store.list_records("alice")] == ["f" * 64]
    await store.delete(artifacts.record_key(key))
    assert await store.list_records("alice") == []

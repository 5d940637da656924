"""Pictures the ComfyUI simulator "generates": real PNG, animated WEBP, MP4 and WEBM files.

The content is a deterministic function of a fingerprint (seed, prompt text, model,
frame index), so two different seeds give different bytes and the same inputs give
the same pixels. Shapes are drawn on a small canvas and scaled up, which keeps a
1024×1024 image cheap to make.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw, PngImagePlugin

_CANVAS = 96


def render(fingerprint: str, width: int, height: int, *, frame: int = 0) -> Image.Image:
    """One RGB picture for ``fingerprint``; ``frame`` moves the shapes a little."""
    digest = hashlib.sha256(fingerprint.encode()).digest()
    rng = random.Random(digest)
    scale = _CANVAS / max(width, height)
    cw, ch = max(4, round(width * scale)), max(4, round(height * scale))
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    canvas = Image.new("RGB", (cw, ch))
    draw = ImageDraw.Draw(canvas)
    for y in range(ch):
        t = y / max(1, ch - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (cw, y)], fill=colour)
    for _ in range(rng.randrange(5, 12)):
        x, y = rng.randrange(cw), rng.randrange(ch)
        dx, dy = rng.uniform(-1.5, 1.5) * frame, rng.uniform(-1.5, 1.5) * frame
        r = rng.randrange(3, max(4, min(cw, ch) // 3))
        fill = tuple(rng.randrange(256) for _ in range(3))
        box = [(x + dx - r, y + dy - r), (x + dx + r, y + dy + r)]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    return canvas.resize((width, height), Image.Resampling.BILINEAR)


def flat(width: int, height: int) -> Image.Image:
    """A single flat colour (the ``flat_output`` fault: what a broken GPU may save)."""
    return Image.new("RGB", (width, height), (90, 90, 90))


def png_bytes(image: Image.Image, metadata: Mapping[str, Any]) -> bytes:
    """PNG with ComfyUI's text chunks (``prompt`` and every ``extra_pnginfo`` key)."""
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(key, json.dumps(value))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def webp_bytes(frames: Sequence[Image.Image], *, fps: float, lossless: bool, quality: int) -> bytes:
    """Animated WEBP of ``frames`` at ``fps`` frames per second."""
    buffer = io.BytesIO()
    first, *rest = frames
    first.save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=rest,
        duration=round(1000.0 / fps),
        loop=0,
        lossless=lossless,
        quality=quality,
        method=0,
    )
    return buffer.getvalue()


def apng_bytes(frames: Sequence[Image.Image], *, fps: float) -> bytes:
    """Animated PNG of ``frames``."""
    buffer = io.BytesIO()
    first, *rest = frames
    first.save(
        buffer, format="PNG", save_all=True, append_images=rest, duration=round(1000.0 / fps)
    )
    return buffer.getvalue()


def _encode(frames: Sequence[Image.Image], *, fps: int, container: str, codec: str) -> bytes:
    # MP4 with faststart (the index first, so a browser plays it while it downloads):
    # FFmpeg rewrites the file for that, which needs a real file rather than a buffer.
    with tempfile.TemporaryDirectory(prefix="comfy-sim-video-") as folder:
        path = Path(folder) / f"out.{container}"
        options = {"movflags": "+faststart"} if container == "mp4" else {}
        with av.open(str(path), mode="w", format=container, options=options) as out:
            stream = out.add_stream(codec, rate=fps)
            assert isinstance(stream, av.VideoStream)
            stream.width = frames[0].width - frames[0].width % 2
            stream.height = frames[0].height - frames[0].height % 2
            stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                stream.options = {"preset": "ultrafast", "crf": "28"}
            else:
                stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "40", "b": "0"}
            for image in frames:
                frame = av.VideoFrame.from_image(image.convert("RGB"))  # type: ignore[no-untyped-call]
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        return path.read_bytes()


def mp4_bytes(frames: Sequence[Image.Image], *, fps: float) -> bytes:
    """A playable MP4 (H.264, yuv420p) of ``frames`` at ``fps``, as SaveVideo writes it."""
    return _encode(frames, fps=max(1, round(fps)), container="mp4", codec="libx264")


def webm_bytes(frames: Sequence[Image.Image], *, fps: float) -> bytes:
    """A WEBM (VP9) of ``frames`` at ``fps``, as SaveWEBM writes it."""
    return _encode(frames, fps=max(1, round(fps)), container="webm", codec="libvpx-vp9")

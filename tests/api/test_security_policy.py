"""Issue 15, the minors policy in the studio: the composed prompt and negative prompts (T5)."""

from __future__ import annotations

from typing import Any

GOOD = {"pool": "sdxl", "prompt": "a lighthouse at dusk"}
Studio = Any


async def test_the_composed_prompt_is_checked(studio: Studio) -> None:
    """Neither the template nor the prompt alone is refused; together they say 12."""
    http = await studio(studio_auth="none")
    muse = await http.post(
        "/api/v1/muses",
        json={"displayName": "Ada", "age": 30, "promptTemplate": "{prompt}-year-old {name}"},
    )
    assert muse.status_code == 201, muse.text
    name = muse.json()["name"]
    for path in ("/api/v1/estimate", "/api/v1/generations"):
        r = await http.post(path, json={**GOOD, "prompt": "12", "museRef": name})
        assert r.status_code == 422, r.text
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body", "prompt"]
        assert detail["type"] == "content_policy"
    ok = await http.post("/api/v1/generations", json={**GOOD, "prompt": "32", "museRef": name})
    assert ok.status_code == 201, ok.text


async def test_negative_prompts_steering_away_from_adults(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    r = await http.post(
        "/api/v1/generations",
        json={**GOOD, "prompt": "portrait of a woman", "negativePrompt": "adult, mature"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "negativePrompt"]
    keeps_out = {**GOOD, "prompt": "portrait of a woman", "negativePrompt": "child, teen"}
    assert (await http.post("/api/v1/generations", json=keeps_out)).status_code == 201
    muse = await http.post(
        "/api/v1/muses", json={"displayName": "Bo", "age": 30, "negativePrompt": "adult body"}
    )
    assert muse.status_code == 422, muse.text
    assert muse.json()["detail"][0]["loc"] == ["body", "negativePrompt"]


async def test_obfuscated_and_benign_words(studio: Studio) -> None:
    http = await studio(studio_auth="none")
    for text in ("a ｃｈｉｌｄ", "a c.h.i.l.d", "a ch\u200bild", "a t33n", "twelve-year-old"):
        r = await http.post("/api/v1/estimate", json={**GOOD, "prompt": text})
        assert r.status_code == 422, text
    for text in ("between two trees", "infantry charge", "a minority report poster"):
        r = await http.post("/api/v1/estimate", json={**GOOD, "prompt": text})
        assert r.status_code == 200, (text, r.text)

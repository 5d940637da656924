"""The provisioning composer: what the create request carries for the models (T1)."""

from __future__ import annotations

import base64

import pytest

from warmpool.crds.gpupool import ModelSpec, SecretKeyRef, TemplateSpec
from warmpool.operator.decisions import provisioning

HF = {"name": "hf", "key": "token"}


def template(**kw: object) -> TemplateSpec:
    return TemplateSpec.model_validate(kw)


def decoded(env: dict[str, str]) -> str:
    chunks = [env[k] for k in sorted(env) if k.startswith(provisioning.PAYLOAD_PREFIX)]
    return base64.b64decode("".join(chunks)).decode()


def test_without_models_the_onstart_is_the_users_and_nothing_is_added() -> None:
    p = provisioning.compose_provisioning(template(onstart="echo hi"))
    assert p == provisioning.Provisioning(onstart="echo hi", env={}, token_env={})


def test_with_models_the_bootstrap_runs_first_then_the_users_onstart() -> None:
    t = template(
        onstart="echo hi",
        models=[{"folder": "checkpoints", "file": "a.safetensors", "url": "https://h/a"}],
    )
    p = provisioning.compose_provisioning(t)
    assert p.onstart == f"{provisioning.BOOTSTRAP}\necho hi"
    assert decoded(p.env) == provisioning.compose_script(t.models)


def test_payload_values_respect_vastais_limit_and_sort_in_order() -> None:
    models = [
        {"folder": "loras", "file": f"l{n}.safetensors", "url": f"https://h/{n}" + "x" * 200}
        for n in range(20)
    ]
    p = provisioning.compose_provisioning(template(models=models))
    assert len(p.env) > 10
    assert all(len(v) <= 256 for v in p.env.values())
    assert sorted(p.env) == list(p.env)  # the bootstrap concatenates them by name
    assert sum(len(k) + len(v) for k, v in p.env.items()) < 32768


def test_tokens_are_named_not_included() -> None:
    t = template(
        models=[
            {"folder": "checkpoints", "file": "a", "url": "https://hf.co/a", "tokenSecret": HF},
            {"folder": "loras", "file": "b", "url": "https://hf.co/b", "tokenSecret": HF},
            {"folder": "vae", "file": "c", "url": "https://civitai.com/c",
             "tokenSecret": {"name": "civitai", "key": "api-key"}},
        ]
    )  # fmt: skip
    p = provisioning.compose_provisioning(t)
    assert p.token_env == {
        "WARMPOOL_MODEL_TOKEN_HF_TOKEN": SecretKeyRef(name="hf", key="token"),
        "WARMPOOL_MODEL_TOKEN_CIVITAI_API_KEY": SecretKeyRef(name="civitai", key="api-key"),
    }
    assert not set(p.token_env) & set(p.env)


def test_the_longest_users_onstart_still_fits_with_the_bootstrap() -> None:
    t = template(onstart="x" * 4000, models=[{"folder": "vae", "file": "v", "url": "https://h"}])
    assert len(provisioning.compose_provisioning(t).onstart) <= provisioning.MAX_ONSTART


def test_a_payload_past_the_environment_limit_is_refused() -> None:
    models = [
        {"folder": "loras", "file": f"l{n}", "url": "https://h/" + "x" * 2000} for n in range(12)
    ]
    with pytest.raises(ValueError, match=r"template\.models: too many or too long URLs"):
        provisioning.compose_provisioning(template(models=models))


def test_names_with_shell_metacharacters_are_quoted() -> None:
    """A file name is data, never code: ``$(...)`` in it must not run."""
    m = ModelSpec(folder="loras", file="x$(touch pwned)'; rm -rf ~.safetensors", url="https://h/x")
    script = provisioning.compose_script([m])
    assert "F[0]='x$(touch pwned)'\"'\"'; rm -rf ~.safetensors'" in script


def test_settings_are_baked_in_and_overridable() -> None:
    script = provisioning.compose_script([], stall_seconds=45, parallel=4, report_seconds=3)
    assert "STALL=${WARMPOOL_STALL_SECONDS:-45}" in script
    assert "P=${WARMPOOL_PARALLEL:-4}" in script
    assert "EVERY=${WARMPOOL_REPORT_SECONDS:-3}" in script


def test_models_without_a_url_come_with_the_image_and_are_not_downloaded() -> None:
    t = template(models=[{"folder": "checkpoints", "file": "in-image.safetensors"}])
    assert provisioning.compose_provisioning(t).env == {}
    both = template(
        models=[
            {"folder": "checkpoints", "file": "in-image.safetensors"},
            {"folder": "loras", "file": "l.safetensors", "url": "https://h/l"},
        ]
    )
    script = decoded(provisioning.compose_provisioning(both).env)
    assert "l.safetensors" in script and "in-image" not in script

"""The package: the folder mapping, the wheel's contents, the console scripts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = {"crds": "warmpool/crds", "operator": "warmpool/operator", "api": "warmpool/api",
            "sim": "warmpool/sim"}  # fmt: skip


def test_stdlib_operator_is_not_shadowed() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import operator, warmpool.operator as w; "
         "print(operator.__file__); print(w.__file__)"],
        capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    stdlib, ours = out.stdout.split()
    assert "site-packages" not in stdlib
    assert stdlib.endswith("/operator.py")
    assert ours == str(ROOT / "operator" / "__init__.py")


def expected_files() -> set[str]:
    files = set()
    for folder, target in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            files.add(f"{target}/{path.relative_to(ROOT / folder)}")
    files |= {f"warmpool/crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml")}
    files |= {f"warmpool/crds/examples/{p.name}" for p in (ROOT / "crds/examples").glob("*.yaml")}
    files |= {f"warmpool/api/static/{p.name}" for p in (ROOT / "api/static").glob("*")}
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("warmpool-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_holds_every_module_and_the_crds(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    missing = sorted(expected_files() - names)
    assert not missing, f"left out of the wheel: {missing}"


def test_wheel_declares_the_console_scripts(wheel: zipfile.ZipFile) -> None:
    (entry,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry).decode()
    for script in ("warmpool-operator", "warmpool-studio", "warmpool-sim"):
        assert f"{script} = " in text


@pytest.mark.parametrize("script", ["warmpool-operator", "warmpool-studio", "warmpool-sim"])
def test_console_scripts_answer_help(script: str) -> None:
    binary = Path(sys.executable).parent / script
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    assert "not implemented" not in (out.stdout + out.stderr).lower()

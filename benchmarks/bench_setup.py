"""How long `make setup` takes when nothing changed (the issue asks for under 30 s)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.measure import Measurement, time_call

ROOT = Path(__file__).resolve().parents[1]


def _run_setup() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], check=True, capture_output=True)


def run(quick: bool) -> list[Measurement]:
    samples_ms = time_call(_run_setup, repeats=2 if quick else 5, warmup=1)
    return [
        Measurement.from_samples("setup.sh, nothing changed", "s", [ms / 1e3 for ms in samples_ms],
                                 target="< 30 s")
    ]

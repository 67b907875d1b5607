"""Timing and reporting primitives shared by every benchmark."""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Measurement:
    """One measured quantity: a sample of values summarised by median and spread."""

    name: str
    unit: str
    median: float
    p10: float
    p90: float
    minimum: float
    maximum: float
    samples: int
    target: str = ""
    notes: dict[str, float | int | str] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, name: str, unit: str, values: list[float], target: str = "",
                     **notes: float | int | str) -> Measurement:
        if not values:
            raise ValueError(f"measurement {name!r} has no samples")
        ordered = sorted(values)
        return cls(
            name=name,
            unit=unit,
            median=statistics.median(ordered),
            p10=_quantile(ordered, 0.10),
            p90=_quantile(ordered, 0.90),
            minimum=ordered[0],
            maximum=ordered[-1],
            samples=len(ordered),
            target=target,
            notes=dict(notes),
        )

    def as_dict(self) -> dict:
        return asdict(self)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    """Wall-clock milliseconds of `repeats` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def machine_description() -> dict[str, str | int]:
    """What the numbers were measured on: CPU model, cores, memory, Python, torch threads."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }

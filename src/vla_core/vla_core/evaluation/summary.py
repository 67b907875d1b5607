"""Numbers per evaluation cell: success rate with its Wilson interval, time to success, latency,
and how near the failed episodes came to the cube.

A success rate from a few dozen episodes is uncertain; the Wilson score interval says how much
(and, unlike the normal approximation, stays inside [0, 1] at 0 % and 100 %).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from vla_core.evaluation.closed_loop import EpisodeResult

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if trials <= 0:
        raise ValueError(f"a success rate needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in 0..{trials}, got {successes}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # at 0 and all successes the bound is exactly 0 or 1; rounding can leave 1e-17 on the wrong
    # side, and a chart's error bar (rate - low) must not go negative
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class CellKey:
    embodiment: str
    task: str
    wording: str
    mode: str

    @property
    def label(self) -> str:
        return f"{self.embodiment}/{self.task}/{self.wording}/{self.mode}"


@dataclass(frozen=True)
class CellSummary:
    key: CellKey
    episodes: int
    successes: int
    success_rate: float
    wilson_low: float
    wilson_high: float
    mean_time_to_success: float | None  # simulated seconds, over the successful episodes
    latency_median: float | None  # seconds per chunk (observation to joint targets)
    latency_p90: float | None
    chunks: int
    starved_ticks: int
    refused_fraction: float | None  # targets the safety filter refused, of all targets (None: no target)
    safety_counts: dict[str, int]
    mean_wall_seconds: float  # per episode, on this machine
    failed_closest_approach: float | None  # m, median over the failed episodes: reach (large) or grasp (small)?

    def to_json(self) -> dict:
        data = asdict(self)
        data["key"] = asdict(self.key)
        return data


def summarise(key: CellKey, results: list[EpisodeResult]) -> CellSummary:
    if not results:
        raise ValueError(f"cell {key.label} has no episodes")
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, len(results))
    times = [r.time_to_success for r in results if r.success]
    missed = [r.closest_approach for r in results if not r.success]
    latencies = np.array([latency for r in results for latency in r.latencies])
    targeted = sum(r.target_ticks for r in results)
    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r.safety_counts)
    return CellSummary(
        key, len(results), successes, successes / len(results), low, high,
        float(np.mean(times)) if times else None,
        float(np.median(latencies)) if len(latencies) else None,
        float(np.percentile(latencies, 90)) if len(latencies) else None,
        len(latencies), sum(r.starved_ticks for r in results),
        sum(r.refused_ticks for r in results) / targeted if targeted else None, dict(counts),
        float(np.mean([r.wall_seconds for r in results])),
        float(np.median(missed)) if missed else None)

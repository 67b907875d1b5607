"""Rolling latency statistics for PolicyStatus and ExecuteInstruction feedback."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    last: float
    mean: float
    median: float
    p95: float
    maximum: float
    count: int  # samples in the window


class LatencyWindow:
    """The last `size` latencies in seconds; summaries are computed on demand (status rate, not control rate)."""

    def __init__(self, size: int = 100) -> None:
        if size < 1:
            raise ValueError(f"latency window size must be >= 1, got {size}")
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"latency must be a non-negative number of seconds, got {seconds}")
        self._values.append(float(seconds))

    def summary(self) -> LatencySummary:
        if not self._values:
            return LatencySummary(0.0, 0.0, 0.0, 0.0, 0.0, 0)
        values = np.fromiter(self._values, dtype=np.float64)
        return LatencySummary(
            last=float(values[-1]),
            mean=float(values.mean()),
            median=float(np.median(values)),
            p95=float(np.percentile(values, 95)),
            maximum=float(values.max()),
            count=len(values),
        )

"""Feature statistics in LeRobot's meta/stats.json layout: min, max, mean, std, count and the
quantiles q01, q10, q50, q90, q99 per channel.

Vectors are exact over every frame. Images are per colour channel, in [0, 1] and shaped
(3, 1, 1) as LeRobot stores them, over every frame but on a grid of every 4th pixel in each
direction (LeRobot, too, downsamples images for statistics; counting all pixels cost more than
encoding the video). Their quantiles are exact for those pixels, from a 256-bin histogram per
channel (pixels are uint8).
"""
from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
PIXEL_STRIDE = 4


def _quantile_key(q: float) -> str:
    return f"q{round(q * 100):02d}"


def vector_stats(values: np.ndarray) -> dict[str, list]:
    """Statistics of (N, D) values over N (N >= 1)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    stats = {
        "min": values.min(axis=0), "max": values.max(axis=0),
        "mean": values.mean(axis=0), "std": values.std(axis=0),
        "count": np.array([len(values)]),
    }
    for q, row in zip(QUANTILES, np.quantile(values, QUANTILES, axis=0)):
        stats[_quantile_key(q)] = row
    return {key: value.tolist() for key, value in stats.items()}


class ImageStats:
    """Accumulates per-channel pixel histograms of (N, H, W, 3) uint8 frames."""

    def __init__(self) -> None:
        self._histogram = np.zeros((3, 256), dtype=np.int64)
        self._frames = 0

    def update(self, frames: np.ndarray, repeat: int = 1) -> None:
        """Count (N, H, W, 3) frames, each `repeat` times (a repeated camera frame is counted once per use)."""
        grid = frames[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE]
        for channel in range(3):
            self._histogram[channel] += repeat * np.bincount(grid[..., channel].ravel(), minlength=256)
        self._frames += repeat * len(frames)

    def merge(self, other: ImageStats) -> None:
        """Add the frames another accumulator counted (e.g. in a conversion worker)."""
        self._histogram += other._histogram
        self._frames += other._frames

    def result(self) -> dict[str, list]:
        if self._frames == 0:
            raise ValueError("image statistics of no frames")
        levels = np.arange(256) / 255.0
        counts = self._histogram.sum(axis=1)
        mean = (self._histogram * levels).sum(axis=1) / counts
        variance = (self._histogram * levels ** 2).sum(axis=1) / counts - mean ** 2
        present = self._histogram > 0
        stats = {
            "min": levels[present.argmax(axis=1)],
            "max": levels[255 - present[:, ::-1].argmax(axis=1)],
            "mean": mean, "std": np.sqrt(np.maximum(variance, 0.0)),
        }
        cumulative = np.cumsum(self._histogram, axis=1) / counts[:, None]
        for q in QUANTILES:
            stats[_quantile_key(q)] = levels[(cumulative < q).sum(axis=1)]
        result = {key: value.reshape(3, 1, 1).tolist() for key, value in stats.items()}
        result["count"] = [self._frames]
        return result

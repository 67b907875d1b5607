"""Streams of stamped samples onto a fixed-rate timeline (stamps and times in integer nanoseconds).

Sensors take the sample with the nearest stamp (Xiaomi-Robotics-0's observation assembly);
commands take the latest one at or before the frame, since a controller holds its last target.
Neither fills anything in: a frame whose nearest sample is farther than the allowed skew, or
that comes before the first command, is marked as a gap for the caller to report.
"""
from __future__ import annotations

import numpy as np


def frame_times(start: int, stop: int, fps: float) -> np.ndarray:
    """start, start + 1/fps, ... up to and including stop, in integer nanoseconds: epoch stamps
    as float seconds lose the sub-microsecond order of samples that share a stamp with a frame."""
    if stop < start:
        return np.zeros(0, dtype=np.int64)
    count = int(np.floor((stop - start) * fps / 1e9 + 1e-9)) + 1
    return start + np.round(np.arange(count) * 1e9 / fps).astype(np.int64)


def nearest(stamps: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest of the sorted `stamps` to each time, and its absolute skew."""
    right = np.clip(np.searchsorted(stamps, times), 1, len(stamps) - 1) if len(stamps) > 1 else np.zeros(len(times), int)
    left = np.maximum(right - 1, 0)
    pick_left = np.abs(times - stamps[left]) <= np.abs(stamps[right] - times)
    index = np.where(pick_left, left, right)
    return index, np.abs(stamps[index] - times)


def latest(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the last of the sorted `stamps` at or before each time; -1 where there is none."""
    return np.searchsorted(stamps, times, side="right") - 1


def gap_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where `mask` is True."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))

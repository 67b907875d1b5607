"""Follow a JointTrajectory the way a ros2_control joint trajectory controller does.

A new trajectory replaces the old one. It starts at its header stamp (or on arrival when the
stamp is zero) from the position commanded at that moment, and the target is linearly
interpolated between points by `time_from_start`; after the last point the target stays there.

It accepts what ros2_controllers' joint_trajectory_controller accepts: a trajectory whose last
point lies in the past (its stamp plus the last time_from_start is before now: it arrived late,
or the sender's clock is behind) is rejected and the old one goes on, as the controller does, so
a sender that stamps `now` across a slow link or a skewed clock is seen losing commands here too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class _Trajectory:
    start: float  # seconds (the follower's clock)
    times: np.ndarray  # (N + 1,) knot times, 0 first
    points: np.ndarray  # (N + 1, J) knot positions, the starting position first


class TrajectoryRejected(ValueError):
    """A trajectory the controller refuses (the message says why); the previous one goes on."""


class TrajectoryFollower:
    def __init__(self, initial: np.ndarray) -> None:
        self._hold = np.asarray(initial, dtype=np.float64).copy()
        self._trajectory: _Trajectory | None = None

    def replace(self, start: float, times_from_start: np.ndarray, points: np.ndarray, now: float) -> None:
        """A new trajectory: `points` (N, J) reached at `times_from_start` (N,) after `start`."""
        times = np.asarray(times_from_start, dtype=np.float64)
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != len(self._hold) or len(times) != len(points) or not len(points):
            raise ValueError(f"a trajectory needs N >= 1 points of {len(self._hold)} joints with one time each, "
                             f"got points {points.shape} and {len(times)} times")
        if np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError(f"time_from_start must increase strictly from >= 0, got {times.tolist()}")
        if not np.all(np.isfinite(points)):
            raise ValueError("trajectory points contain NaN or inf")
        if start + times[-1] < now:
            raise TrajectoryRejected(f"the trajectory ends in the past: it starts at {start:.3f} s and its last point "
                                     f"is {times[-1]:.3f} s later, {now - start - times[-1]:.3f} s before now "
                                     f"({now:.3f} s); stamp it zero to start on receipt")
        origin = self.target(now)
        self._trajectory = _Trajectory(start, np.concatenate([[0.0], times]), np.vstack([origin, points]))
        self._hold = points[-1].copy()

    def target(self, now: float) -> np.ndarray:
        trajectory = self._trajectory
        if trajectory is None:
            return self._hold.copy()
        elapsed = now - trajectory.start
        if elapsed >= trajectory.times[-1]:
            return trajectory.points[-1].copy()
        elapsed = max(elapsed, 0.0)
        return np.array([np.interp(elapsed, trajectory.times, column) for column in trajectory.points.T])

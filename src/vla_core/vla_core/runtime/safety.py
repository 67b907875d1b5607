"""Safety checks the executor applies to every target before it reaches the robot.

The executor never forwards what it rejected: a rejected target means "hold the last safe
position". Each intervention is counted per cause (for PolicyStatus), and the first occurrence
of each cause is reported separately so the node can log it once instead of at control rate.

Causes:
- non_finite_target: NaN or inf anywhere in the target;
- joint_position_limit: outside the URDF position limits (clamped or rejected by policy);
- joint_velocity_limit: a step larger than velocity limit x dt from the previous command
  (clamped or rejected by policy);
- max_jump: a step larger than `max_jump` in any joint (a scalar, or one value per joint with
  inf for joints exempt, such as binary grippers that open and close in one step; always
  rejected: a jump that large means a wrong chunk, not a fast motion);
- workspace: an end-effector target outside the workspace box (rejected);
- watchdog:<stream>: joint states or chunks stopped arriving for longer than the limit.

The rows after the current one that the executor sends ahead (a joint trajectory controller or
MoveIt executes them if the executor goes silent) pass the same checks (`admissible_rows`):
sent ahead are only the rows up to the first that any check would clamp or refuse.
"""
from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class LimitPolicy(str, enum.Enum):
    CLAMP = "clamp"
    REJECT = "reject"


@dataclass(frozen=True)
class JointLimits:
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray  # rad/s (or m/s), > 0

    def __post_init__(self) -> None:
        n = len(self.names)
        for label, values in (("lower", self.lower), ("upper", self.upper), ("velocity", self.velocity)):
            if np.shape(values) != (n,):
                raise ValueError(f"joint limits {label} has shape {np.shape(values)}, expected ({n},) for {self.names}")
        if np.any(self.lower > self.upper):
            bad = [name for name, lo, hi in zip(self.names, self.lower, self.upper) if lo > hi]
            raise ValueError(f"lower limit above upper limit for joints {bad}")
        if np.any(self.velocity <= 0):
            raise ValueError(f"velocity limits must be > 0, got {dict(zip(self.names, self.velocity))}")


@dataclass(frozen=True)
class WorkspaceBox:
    lower: np.ndarray  # (3,) metres in the base frame
    upper: np.ndarray

    def contains(self, points: np.ndarray) -> bool:
        points = np.atleast_2d(points)
        return bool(np.all(points >= self.lower) and np.all(points <= self.upper))


@dataclass
class SafetyVerdict:
    command: np.ndarray | None  # what to send; None = hold the last safe position
    causes: list[str] = field(default_factory=list)
    first_occurrences: list[str] = field(default_factory=list)


class SafetyFilter:
    """Checks joint targets (and optional end-effector positions) one control tick at a time."""

    def __init__(self, limits: JointLimits, dt: float, policy: LimitPolicy = LimitPolicy.CLAMP,
                 max_jump: float | np.ndarray | None = None, workspace: WorkspaceBox | None = None) -> None:
        if dt <= 0:
            raise ValueError(f"control period dt must be > 0 s, got {dt}")
        if max_jump is not None and np.any(np.asarray(max_jump) <= 0):
            raise ValueError(f"max_jump must be > 0, got {max_jump}")
        self.limits = limits
        self.dt = dt
        self.policy = LimitPolicy(policy)
        self.max_jump = max_jump
        self.workspace = workspace
        self.counts: Counter[str] = Counter()

    def record(self, cause: str, verdict: SafetyVerdict) -> None:
        if self.counts[cause] == 0:
            verdict.first_occurrences.append(cause)
        self.counts[cause] += 1
        verdict.causes.append(cause)

    def check(self, target: np.ndarray, previous: np.ndarray, eef_positions: np.ndarray | None = None) -> SafetyVerdict:
        """Filter `target` given the `previous` command (or the measured joints at start); each
        intervention is counted."""
        command, causes = self.evaluate(target, previous, eef_positions)
        verdict = SafetyVerdict(command=command)
        for cause in causes:
            self.record(cause, verdict)
        return verdict

    def evaluate(self, target: np.ndarray, previous: np.ndarray,
                 eef_positions: np.ndarray | None = None) -> tuple[np.ndarray | None, list[str]]:
        """What `check` decides, counting nothing: the command (None = hold) and the causes."""
        target = np.asarray(target, dtype=np.float64)
        if target.shape != self.limits.lower.shape:
            raise ValueError(f"target has shape {target.shape}, expected {self.limits.lower.shape} for {self.limits.names}")
        if not np.all(np.isfinite(target)) or (eef_positions is not None and not np.all(np.isfinite(eef_positions))):
            return None, ["non_finite_target"]
        if self.workspace is not None and eef_positions is not None and not self.workspace.contains(eef_positions):
            return None, ["workspace"]
        step = target - previous
        if self.max_jump is not None and np.any(np.abs(step) > self.max_jump):
            return None, ["max_jump"]
        command, causes = target, []
        outside = (command < self.limits.lower) | (command > self.limits.upper)
        if np.any(outside):
            causes.append("joint_position_limit")
            if self.policy is LimitPolicy.REJECT:
                return None, causes
            command = np.clip(command, self.limits.lower, self.limits.upper)
        max_step = self.limits.velocity * self.dt
        too_fast = np.abs(command - previous) > max_step + 1e-12
        if np.any(too_fast):
            causes.append("joint_velocity_limit")
            if self.policy is LimitPolicy.REJECT:
                return None, causes
            command = previous + np.clip(command - previous, -max_step, max_step)
        return command, causes

    def admissible_rows(self, rows: np.ndarray, command: np.ndarray,
                        eef_positions: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """The rows to send ahead after `command`: those before the first row that `check` would
        clamp or refuse (workspace box, max_jump, limits), each judged against the row before it.
        Nothing is counted: a row cut here is counted when its own tick checks it."""
        command = np.asarray(command, dtype=np.float64)
        admitted, previous = [], command
        for row in np.asarray(rows, dtype=np.float64).reshape(-1, len(command)):
            positions = (eef_positions(row) if eef_positions is not None and self.workspace is not None
                         and np.all(np.isfinite(row)) else None)
            checked, causes = self.evaluate(row, previous, positions)
            if checked is None or causes:
                break
            admitted.append(row)
            previous = row
        return np.array(admitted).reshape(-1, len(command))


class Watchdog:
    """Says which fed streams have gone quiet for longer than their limit."""

    def __init__(self, limits: dict[str, float]) -> None:
        bad = {name: limit for name, limit in limits.items() if limit <= 0}
        if bad:
            raise ValueError(f"watchdog limits must be > 0 s, got {bad}")
        self.limits = dict(limits)
        self._last: dict[str, float] = {}

    def feed(self, stream: str, now: float) -> None:
        if stream not in self.limits:
            raise KeyError(f"unknown watchdog stream {stream!r}; streams are {sorted(self.limits)}")
        self._last[stream] = now

    def expired(self, now: float) -> list[str]:
        """Streams never fed, or not fed within their limit, as `name (0.43 s > 0.20 s)`."""
        problems = []
        for stream, limit in self.limits.items():
            last = self._last.get(stream)
            if last is None:
                problems.append(f"{stream} (never received)")
            elif now - last > limit:
                problems.append(f"{stream} ({now - last:.2f} s > {limit:.2f} s)")
        return problems

"""A scripted teleoperator for the SO-101 pick task: the joint positions a leader arm would send.

The script straddles the cube with the open jaws across two opposite faces, descends straight
down, closes, and lifts straight up. A five-joint arm cannot hold an arbitrary tool pose, so
every Cartesian waypoint is solved with `RobotKinematics.inverse_pointing`: the jaw axis
across the cube's faces, the rotation about that axis (the approach tilt) left to the arm.
Of the four face pairs, the one needing the least wrist roll wins.

Demonstrations must not all be the same motion: each plan draws its speed, hover height,
pauses and a small hand tremor from the generator it is given, so a seed reproduces it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_core.kinematics import RobotKinematics

JAW_AXIS = np.array([1.0, 0.0, 0.0])  # gripper_frame_link x: from the moving jaw towards the fixed jaw


class UnreachableCube(ValueError):
    """No face pair of the cube can be grasped from above within the arm's joint limits."""


@dataclass(frozen=True)
class GraspGeometry:
    """Where the SO-101's jaws close, measured on its MJCF (see docs in the README)."""

    jaw_offset: float = 0.026  # m from the tool frame (on the fixed jaw) to the middle between the pads
    gripper_open: float = 0.5  # rad: pads about 4 cm apart and nearly parallel
    gripper_closed: float = -0.1  # rad: past closed, so the jaws squeeze what they hold
    hover: tuple[float, float] = (0.03, 0.05)  # m above the grasp, drawn per plan
    lift: float = 0.08  # m


@dataclass(frozen=True)
class TeleopTrajectory:
    """Joint positions (N, J) at times (N,) from the start, at the teleoperator's rate."""

    times: np.ndarray
    joints: np.ndarray

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def at(self, elapsed: float) -> np.ndarray:
        """The command for `elapsed` seconds after the start (the last one after the end)."""
        index = int(np.searchsorted(self.times, elapsed, side="right")) - 1
        return self.joints[int(np.clip(index, 0, len(self.joints) - 1))].copy()


def _minimum_jerk(count: int) -> np.ndarray:
    s = np.arange(1, count + 1) / count
    return 10 * s**3 - 15 * s**4 + 6 * s**5


class ScriptedPickTeleop:
    def __init__(self, kinematics: RobotKinematics, rate_hz: float = 30.0,
                 geometry: GraspGeometry = GraspGeometry(), tremor: float = 0.002) -> None:
        if kinematics.spec.is_bimanual or not kinematics.spec.has_gripper:
            raise ValueError(f"the pick script drives one arm with a gripper, not {kinematics.spec.name}")
        self.kinematics = kinematics
        self.rate_hz = rate_hz
        self.geometry = geometry
        self.tremor = tremor

    def plan(self, joints: np.ndarray, cube_position: np.ndarray, cube_yaw: float,
             rng: np.random.Generator) -> TeleopTrajectory:
        """From the current joints (arm and gripper), pick the cube at `cube_position` (base frame)."""
        g = self.geometry
        hover = rng.uniform(*g.hover)
        speed = rng.uniform(0.8, 1.25)
        grasp, jaw_direction = self._grasp(np.asarray(joints, dtype=np.float64), np.asarray(cube_position), cube_yaw)
        above = self._solve(grasp + [0, 0, hover], jaw_direction, joints)
        segments = [
            self._joint_move(joints, np.r_[above, g.gripper_open], 1.6 / speed),
            self._line(grasp, jaw_direction, hover, 0.0, g.gripper_open, above, 1.0 / speed),
        ]
        at_grasp = segments[-1][-1]
        segments.append(self._joint_move(at_grasp, np.r_[at_grasp[:-1], g.gripper_closed], 0.6 / speed))
        segments.append(self._hold(segments[-1][-1], rng.uniform(0.1, 0.4)))
        segments.append(self._line(grasp, jaw_direction, 0.0, g.lift, g.gripper_closed, at_grasp[:-1], 1.0 / speed))
        segments.append(self._hold(segments[-1][-1], rng.uniform(0.4, 0.8)))
        path = np.vstack(segments)
        path[:, :-1] += self._tremor(len(path), path.shape[1] - 1, rng)
        return TeleopTrajectory(np.arange(len(path)) / self.rate_hz, path)

    # ---- grasp choice ----------------------------------------------------------------------------
    def _grasp(self, joints: np.ndarray, cube: np.ndarray, cube_yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """Tool position and jaw direction of the reachable face pair needing the least wrist roll."""
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        reaching_down = np.r_[joints[0], 0.3, 0.3, 1.2, joints[4:]]  # a second IK seed, arm over the table
        for quarter in range(4):
            angle = cube_yaw + quarter * np.pi / 2
            direction = np.array([np.cos(angle), np.sin(angle), 0.0])
            tool = cube + self.geometry.jaw_offset * direction
            for seed in (joints, reaching_down):
                result = self.kinematics.inverse_pointing(0, tool, JAW_AXIS, direction, seed)
                if result.position_error > 1e-3 or result.orientation_error > 0.02:
                    continue
                roll = abs(float(result.joints[-1]))
                if best is None or roll < best[0]:
                    best = (roll, tool, direction)
        if best is None:
            raise UnreachableCube(f"no face of the cube at {np.round(cube, 3).tolist()} can be grasped from above")
        return best[1], best[2]

    def _solve(self, tool: np.ndarray, jaw_direction: np.ndarray, seed: np.ndarray) -> np.ndarray:
        state = np.r_[seed[: self.kinematics.spec.state_dim - 1], 0.0]
        return self.kinematics.inverse_pointing(0, tool, JAW_AXIS, jaw_direction, state).joints

    # ---- motion ----------------------------------------------------------------------------------
    def _steps(self, seconds: float) -> int:
        return max(1, round(seconds * self.rate_hz))

    def _joint_move(self, start: np.ndarray, end: np.ndarray, seconds: float) -> np.ndarray:
        s = _minimum_jerk(self._steps(seconds))[:, None]
        return np.asarray(start)[None] + (np.asarray(end) - np.asarray(start))[None] * s

    def _line(self, grasp: np.ndarray, jaw_direction: np.ndarray, height_from: float, height_to: float,
              gripper: float, arm_seed: np.ndarray, seconds: float) -> np.ndarray:
        """A vertical straight line of the tool, solved point by point (each seeded by the last)."""
        rows, arm = [], np.asarray(arm_seed, dtype=np.float64)
        for s in _minimum_jerk(self._steps(seconds)):
            arm = self._solve(grasp + [0, 0, height_from + (height_to - height_from) * s], jaw_direction, arm)
            rows.append(np.r_[arm, gripper])
        return np.array(rows)

    def _hold(self, pose: np.ndarray, seconds: float) -> np.ndarray:
        return np.repeat(pose[None], self._steps(seconds), axis=0)

    def _tremor(self, count: int, joints: int, rng: np.random.Generator) -> np.ndarray:
        """Smooth hand tremor: white noise low-passed over about a third of a second."""
        noise = rng.normal(0.0, 1.0, (count + 10, joints))
        kernel = np.ones(10) / 10
        smooth = np.stack([np.convolve(noise[:, j], kernel, mode="valid")[:count] for j in range(joints)], axis=1)
        return self.tremor * smooth / max(float(smooth.std()), 1e-9)

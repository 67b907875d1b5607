"""Scripted teleoperators: the joint positions a person on a leader arm would send.

`ScriptedTeleop` holds what every robot's script shares: the motion of a top-down pick
(joint move above the cube, straight down, close, straight up) and, for the cube_in_bin task,
the place (joint move above the bin, straight down, a still moment, open, off the cube,
straight up); the straight lines are solved point by point with the robot's IK, each point
seeded by the last. A plan can start anywhere, not only at home: that is how a recovery
demonstration (`vla_core.evaluation.recovery`) finishes from where a policy left the arm. A robot's script (`ScriptedPickTeleop` for the SO-101,
`ScriptedAlohaTeleop` for the ALOHA) says which arm acts, how its jaws straddle a cube and how
one tool position is solved.

Demonstrations must not all be the same motion: each plan draws its speed, hover height,
pauses and a small hand tremor from the generator it is given, so a seed reproduces it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from vla_core.kinematics import RobotKinematics


# m: a tool this close (horizontally) above the grasp, and no higher than the hover, goes straight down
DESCENT_COLUMN_RADIUS = 0.015


class UnreachableCube(ValueError):
    """No face pair of the cube can be grasped from above within the arm's joint limits."""


@dataclass(frozen=True)
class GraspGeometry:
    """Where a robot's jaws close around a cube, and how far the script moves. How far the jaws
    open and close is the profile's (`RobotKinematics.gripper_positions`), the positions a policy's
    binary gripper channel is decoded to, so demonstrations and policies grasp alike."""

    jaw_offset: float  # m from the end-effector frame to the middle between the pads
    hover: tuple[float, float] = (0.03, 0.05)  # m above the grasp, drawn per plan
    lift: float = 0.08  # m
    gripper_release: float | None = None  # opening when letting go in a place; None: the profile's open
    release_shift: float = 0.0  # m along the jaw direction after letting go, before rising
    release_height: float = 0.005  # m above its resting height where the cube is let go
    release_settle: tuple[float, float] = (0.0, 0.0)  # s held still at the bottom before opening, drawn per plan


@dataclass(frozen=True)
class TeleopTrajectory:
    """Joint positions (N, J) at times (N,) from the start, at the teleoperator's rate; the first
    `approach_rows` bring the open jaws to the grasp (reaching, hovering, going down), before they
    start to close on the cube."""

    times: np.ndarray
    joints: np.ndarray
    approach_rows: int

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def at(self, elapsed: float) -> np.ndarray:
        """The command for `elapsed` seconds after the start (the last one after the end)."""
        index = int(np.searchsorted(self.times, elapsed, side="right")) - 1
        return self.joints[int(np.clip(index, 0, len(self.joints) - 1))].copy()


def minimum_jerk(count: int) -> np.ndarray:
    """`count` progress values from just after 0 to 1 along a minimum-jerk profile."""
    s = np.arange(1, count + 1) / count
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def smooth_noise(count: int, width: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """(count, width) white noise low-passed by a `window`-sample moving average, scaled to unit std."""
    noise = rng.normal(0.0, 1.0, (count + window, width))
    kernel = np.ones(window) / window
    smooth = np.stack([np.convolve(noise[:, j], kernel, mode="valid")[:count] for j in range(width)], axis=1)
    return smooth / max(float(smooth.std()), 1e-9)


class ScriptedTeleop(ABC):
    """Plans picks (and places) for one embodiment; see the module docstring."""

    def __init__(self, kinematics: RobotKinematics, rate_hz: float, geometry: GraspGeometry, tremor: float,
                 consistent: bool = False) -> None:
        if not kinematics.spec.has_gripper:
            raise ValueError(f"a scripted pick needs arms with grippers; {kinematics.spec.name} has none")
        self.kinematics = kinematics
        self.rate_hz = rate_hz
        self.geometry = geometry
        self.tremor = tremor
        self.consistent = consistent
        names = kinematics.spec.joint_names
        self._arm_columns = [[names.index(j) for j in arm.joint_names] for arm in kinematics.spec.arms]
        self.arm_joint_columns = [column for columns in self._arm_columns for column in columns]  # no grippers
        self._gripper_column = [names.index(arm.gripper_joint) for arm in kinematics.spec.arms]
        # per arm: the gripper wide of the cube, and past touching it (so the jaws squeeze what they hold)
        self._jaws_open, self._jaws_closed = zip(*(kinematics.gripper_positions(arm) for arm in kinematics.spec.arms))

    # ---- what a robot's script says ----------------------------------------------------------------
    @abstractmethod
    def arm_for(self, position: np.ndarray) -> int:
        """Index of the arm that handles an object at `position` (base frame)."""

    @abstractmethod
    def grasp(self, arm: int, row: np.ndarray, cube: np.ndarray, cube_yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """Tool position and jaw direction (horizontal, across two opposite faces) for a cube at
        `cube` turned by `cube_yaw`, from the full joint state `row`; raises UnreachableCube."""

    @abstractmethod
    def solve(self, arm: int, tool: np.ndarray, jaw_direction: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The arm's joints putting the tool at `tool` with the jaws along `jaw_direction`,
        seeded from the full joint state `row`."""

    @abstractmethod
    def tool_position(self, arm: int, row: np.ndarray) -> np.ndarray:
        """Where the arm's tool is in the full joint state `row`, as `grasp` and `solve` place it."""

    @abstractmethod
    def solve_pose(self, arm: int, pose: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The arm's joints putting its end-effector frame at `pose` (4, 4, base frame), as near its
        orientation as the arm can, seeded from the full joint state `row`."""

    # ---- planning -------------------------------------------------------------------------------
    def plan(self, joints: np.ndarray, cube_position: np.ndarray, cube_yaw: float, rng: np.random.Generator,
             place_at: np.ndarray | None = None) -> TeleopTrajectory:
        """From the current joints, pick the cube at `cube_position` (base frame); with `place_at`
        (a point on the table, base frame) carry it there and let go."""
        g = self.geometry
        joints = np.asarray(joints, dtype=np.float64)
        cube_position = np.asarray(cube_position, dtype=np.float64)
        arm = self.arm_for(cube_position)
        hover = self._drawn(rng, *g.hover)
        speed = self._drawn(rng, 0.8, 1.25)
        grasp, jaw_direction = self.grasp(arm, joints, cube_position, cube_yaw)
        segments = self._approach(arm, joints, grasp, jaw_direction, hover, speed)
        approach_rows = sum(len(segment) for segment in segments)
        closing = self._with_gripper(segments[-1][-1], arm, self._jaws_closed[arm])
        segments.append(self._joint_move(segments[-1][-1], closing, 0.6 / speed))
        segments.append(self._hold(segments[-1][-1], self._drawn(rng, 0.1, 0.4)))
        segments.append(self._line(arm, grasp, grasp + [0, 0, g.lift], jaw_direction, self._jaws_closed[arm],
                                   segments[-1][-1], 1.0 / speed))
        segments.append(self._hold(segments[-1][-1], self._drawn(rng, 0.4, 0.8)))
        if place_at is not None:
            segments += self._place(arm, segments[-1][-1], cube_position, jaw_direction,
                                    np.asarray(place_at, dtype=np.float64), speed, rng)
        path = np.vstack(segments)
        moving = self.arm_joint_columns
        path[:, moving] += self._tremor(len(path), len(moving), rng)
        return TeleopTrajectory(np.arange(len(path)) / self.rate_hz, path, approach_rows)

    def _place(self, arm: int, row: np.ndarray, cube: np.ndarray, jaw_direction: np.ndarray, place_at: np.ndarray,
               speed: float, rng: np.random.Generator) -> list[np.ndarray]:
        """Carry the held cube (centre at `cube`'s height when grasped) above `place_at`, lower it
        to `release_height` above where it rests, hold still for `release_settle` (the position
        servos lag the command, so the arm is still coming down when the line ends; opening then
        drops a moving cube), open, move the jaws off it by `release_shift`, and rise by `lift`
        (clear of a tipped cube)."""
        g = self.geometry
        target = np.r_[place_at[:2], cube[2] + g.release_height]
        tool, direction = self.grasp(arm, row, target, float(np.arctan2(jaw_direction[1], jaw_direction[0])))
        lifted = tool + [0, 0, g.lift]
        above = self._with_arm(row, arm, self.solve(arm, lifted, direction, row), self._jaws_closed[arm])
        segments = [self._joint_move(row, above, 2.0 / speed),
                    self._line(arm, lifted, tool, direction, self._jaws_closed[arm], above, 1.0 / speed)]
        if max(g.release_settle) > 0:
            segments.append(self._hold(segments[-1][-1], self._drawn(rng, *g.release_settle)))
        release = self._jaws_open[arm] if g.gripper_release is None else g.gripper_release
        segments.append(self._joint_move(segments[-1][-1], self._with_gripper(segments[-1][-1], arm, release),
                                         0.8 / speed))
        segments.append(self._hold(segments[-1][-1], self._drawn(rng, 0.2, 0.4)))
        clear = tool + g.release_shift * direction
        segments.append(self._line(arm, tool, clear, direction, release, segments[-1][-1], 0.4 / speed))
        segments.append(self._line(arm, clear, clear + [0, 0, g.lift], direction, release, segments[-1][-1],
                                   0.8 / speed))
        segments.append(self._hold(segments[-1][-1], self._drawn(rng, 0.5, 0.8)))
        return segments

    # ---- motion ----------------------------------------------------------------------------------
    def _with_arm(self, row: np.ndarray, arm: int, arm_joints: np.ndarray, gripper: float) -> np.ndarray:
        row = self._with_gripper(row, arm, gripper)
        row[self._arm_columns[arm]] = arm_joints
        return row

    def _with_gripper(self, row: np.ndarray, arm: int, gripper: float) -> np.ndarray:
        row = np.array(row, dtype=np.float64)
        row[self._gripper_column[arm]] = gripper
        return row

    def _steps(self, seconds: float) -> int:
        return max(1, round(seconds * self.rate_hz))

    def _joint_move(self, start: np.ndarray, end: np.ndarray, seconds: float) -> np.ndarray:
        s = minimum_jerk(self._steps(seconds))[:, None]
        return np.asarray(start)[None] + (np.asarray(end) - np.asarray(start))[None] * s

    def _line(self, arm: int, start: np.ndarray, end: np.ndarray, jaw_direction: np.ndarray, gripper: float,
              row: np.ndarray, seconds: float) -> np.ndarray:
        """A straight line of the tool from `start` to `end`, solved point by point (each seeded by the last)."""
        rows, row = [], np.asarray(row, dtype=np.float64)
        for s in minimum_jerk(self._steps(seconds)):
            row = self._with_arm(row, arm, self.solve(arm, start + (end - start) * s, jaw_direction, row), gripper)
            rows.append(row)
        return np.array(rows)

    def _approach(self, arm: int, row: np.ndarray, grasp: np.ndarray, jaw_direction: np.ndarray, hover: float,
                  speed: float) -> list[np.ndarray]:
        """Segments that bring the open jaws to `grasp`. From the home pose (every scripted
        demonstration): a joint move to `hover` above it, then straight down. From a tool already
        in the column above the grasp (a recovery from a grasp a policy closed beside the cube):
        open and go straight there, as a person would, instead of backing off to start over,
        which would teach a policy at the cube to leave it. From anywhere else: as from home,
        first straight up when the tool is low."""
        tool = self.tool_position(arm, row)
        offset = tool - grasp
        if np.linalg.norm(offset[:2]) < DESCENT_COLUMN_RADIUS and -0.005 < offset[2] < hover + 0.01:
            seconds = max(0.3, float(np.linalg.norm(offset)) / hover) / speed
            return [self._line(arm, tool, grasp, jaw_direction, self._jaws_open[arm], row, seconds)]
        above = self._with_arm(row, arm, self.solve(arm, grasp + [0, 0, hover], jaw_direction, row),
                               self._jaws_open[arm])
        segments = self._rise_to(arm, row, above, self._jaws_open[arm], 0.6 / speed)
        return segments + [self._joint_move(segments[-1][-1] if segments else row, above, 1.6 / speed),
                           self._line(arm, grasp + [0, 0, hover], grasp, jaw_direction, self._jaws_open[arm], above,
                                      1.0 / speed)]

    def _rise_to(self, arm: int, row: np.ndarray, above: np.ndarray, gripper: float, seconds: float) -> list[np.ndarray]:
        """Straight up, jaws opening, to the height of the pose `above` when the end-effector is
        below it: a joint move from low down sweeps through whatever is on the table. A plan from
        the home pose (every scripted demonstration) starts higher and needs none; a plan from
        where a policy left the arm (a recovery demonstration) usually does."""
        start = self.kinematics.forward(row)[arm]
        height = self.kinematics.forward(above)[arm][2, 3]
        if start[2, 3] >= height:
            return []
        rows, row = [], np.asarray(row, dtype=np.float64)
        for s in minimum_jerk(self._steps(seconds)):
            pose = start.copy()
            pose[2, 3] += (height - start[2, 3]) * s
            row = self._with_arm(row, arm, self.solve_pose(arm, pose, row), gripper)
            rows.append(row)
        return [np.array(rows)]

    def _hold(self, pose: np.ndarray, seconds: float) -> np.ndarray:
        return np.repeat(pose[None], self._steps(seconds), axis=0)

    def _drawn(self, rng: np.random.Generator, low: float, high: float) -> float:
        """A per-plan draw (speed, hover height, a pause); a consistent teleoperator always takes
        the middle, so one state is always followed by the same motion (issue 32's check of
        whether a policy averaging varied demonstrations moves short)."""
        return 0.5 * (low + high) if self.consistent else float(rng.uniform(low, high))

    def _tremor(self, count: int, joints: int, rng: np.random.Generator) -> np.ndarray:
        """Smooth hand tremor: white noise low-passed over about a third of a second."""
        return self.tremor * smooth_noise(count, joints, 10, rng)

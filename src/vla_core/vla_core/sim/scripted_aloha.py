"""The scripted teleoperator of the ALOHA: the arm on the cube's side picks it from above.

The ViperX arms have six joints, so every waypoint is a full pose (`RobotKinematics.inverse`):
the gripper's x axis (from the wrist towards the finger tips) points straight down and its y
axis (the fingers' sliding axis) lies across two opposite faces of the cube. The pose is
seeded by an arm turned towards the cube with the wrist bent down, which keeps the damped
least-squares solver out of the flipped-forearm branches a seed at the home pose falls into;
of the four face pairs, the one with the least forearm roll and wrist rotation wins.
"""
from __future__ import annotations

import numpy as np

from vla_core.kinematics import RobotKinematics
from vla_core.sim.teleop import GraspGeometry, ScriptedTeleop, UnreachableCube

# measured on gym-aloha's MJCF: the finger tips are 15.4 cm along the gripper link's x axis, so
# with the cube's centre at 14.2 cm they stop 8 mm above the table; the profile opens and closes the
# jaws at the finger joint's limits: 0.057 m opens the pads 6.9 cm apart around the 4 cm cube, 0.021 m
# squeezes it
ALOHA_GRASP = GraspGeometry(jaw_offset=0.142, hover=(0.05, 0.08), lift=0.1)
REACHING_DOWN = np.array([0.0, 0.5, 0.0, 1.0])  # shoulder, elbow, forearm_roll, wrist_angle of the IK seed


class ScriptedAlohaTeleop(ScriptedTeleop):
    def __init__(self, kinematics: RobotKinematics, rate_hz: float = 50.0,
                 geometry: GraspGeometry = ALOHA_GRASP, tremor: float = 0.002,
                 consistent: bool = False) -> None:
        if not kinematics.spec.is_bimanual:
            raise ValueError(f"the ALOHA script drives two arms, {kinematics.spec.name} has one")
        super().__init__(kinematics, rate_hz, geometry, tremor, consistent)
        model = kinematics.model
        # where each arm's first joint (the waist) stands in the world and which way it faces
        self._bases = []
        for arm in kinematics.spec.arms:
            first = model.getJointId(arm.joint_names[0])
            self._bases.append(model.jointPlacements[first].homogeneous)

    def arm_for(self, position: np.ndarray) -> int:
        """The arm on the cube's side of the table: the nearer base."""
        distances = [np.linalg.norm(base[:2, 3] - position[:2]) for base in self._bases]
        return int(np.argmin(distances))

    def grasp(self, arm: int, row: np.ndarray, cube: np.ndarray, cube_yaw: float) -> tuple[np.ndarray, np.ndarray]:
        seed = np.array(row, dtype=np.float64)
        seed[self._arm_columns[arm]] = self._reaching_seed(arm, cube)
        best: tuple[float, np.ndarray] | None = None
        for quarter in range(4):
            angle = cube_yaw + quarter * np.pi / 2
            direction = np.array([np.cos(angle), np.sin(angle), 0.0])
            result = self.kinematics.inverse(arm, self._pose(cube, direction), seed)
            if result.position_error > 1e-3 or result.orientation_error > 0.01:
                continue
            twist = abs(float(result.joints[3])) + abs(float(result.joints[5]))  # forearm roll and wrist rotation
            if best is None or twist < best[0]:
                best = (twist, direction)
        if best is None:
            raise UnreachableCube(f"no face of the cube at {np.round(cube, 3).tolist()} can be grasped from above "
                                  f"by the {self.kinematics.spec.arms[arm].name} arm")
        return cube.copy(), best[1]

    def solve(self, arm: int, tool: np.ndarray, jaw_direction: np.ndarray, row: np.ndarray) -> np.ndarray:
        seed = np.array(row, dtype=np.float64)
        if np.linalg.norm(self.kinematics.forward(seed)[arm][:3, 3] - tool) > 0.15:
            seed[self._arm_columns[arm]] = self._reaching_seed(arm, tool)  # far away: start from the reaching pose
        return self.kinematics.inverse(arm, self._pose(tool, jaw_direction), seed).joints

    def tool_position(self, arm: int, row: np.ndarray) -> np.ndarray:
        """The point between the finger pads (`_pose` puts the gripper link `jaw_offset` behind it)."""
        pose = self.kinematics.forward(row)[arm]
        return pose[:3, 3] + pose[:3, :3] @ [self.geometry.jaw_offset, 0.0, 0.0]

    def solve_pose(self, arm: int, pose: np.ndarray, row: np.ndarray) -> np.ndarray:
        return self.kinematics.inverse(arm, pose, row).joints

    def _pose(self, tool: np.ndarray, jaw_direction: np.ndarray) -> np.ndarray:
        """Gripper link pose with the point between the finger pads at `tool`, pointing down."""
        down = np.array([0.0, 0.0, -1.0])
        rotation = np.column_stack([down, jaw_direction, np.cross(down, jaw_direction)])
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = tool - rotation @ [self.geometry.jaw_offset, 0.0, 0.0]
        return pose

    def _reaching_seed(self, arm: int, target: np.ndarray) -> np.ndarray:
        """Arm joints turned towards `target` with the wrist bent down."""
        local = np.linalg.inv(self._bases[arm]) @ np.r_[target, 1.0]
        return np.r_[np.arctan2(local[1], local[0]), REACHING_DOWN, 0.0]

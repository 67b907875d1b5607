"""The scripted teleoperator of the SO-101: how its jaws straddle a cube.

The script straddles the cube with the open jaws across two opposite faces, descends straight
down, closes, and lifts straight up (`vla_core.sim.teleop.ScriptedTeleop` has the motion). A
five-joint arm cannot hold an arbitrary tool pose, so every Cartesian waypoint is solved with
`RobotKinematics.inverse_pointing`: the jaw axis across the cube's faces, the rotation about
that axis (the approach tilt) left to the arm. Of the four face pairs, the one needing the
least wrist roll wins.
"""
from __future__ import annotations

import numpy as np

from vla_core.kinematics import RobotKinematics
from vla_core.sim.teleop import GraspGeometry, ScriptedTeleop, UnreachableCube

JAW_AXIS = np.array([1.0, 0.0, 0.0])  # gripper_frame_link x: from the moving jaw towards the fixed jaw
# measured on the SO-101 MJCF: 2.6 cm from the tool frame (on the fixed jaw) to the middle
# between the pads; at 0.5 rad the pads are about 4 cm apart and nearly parallel; -0.1 rad is
# past closed (the pads meet a 3 cm cube at about 0.31 rad), so the jaws squeeze what they hold.
# Placing, the cube is pressed onto the table (table friction keeps the opening jaw from flicking
# it away), the arm holds still 0.4-0.6 s first (it lags the command at the end of the descent),
# the moving jaw swings wider (0.8 rad) and the fixed jaw moves 16 mm off the cube before rising:
# a cube left leaning on the fixed jaw is dragged along and falls over when the jaw rises. Those were tuned while the
# cube was squeezed out of the pads (see pick_scene.CUBE_CONTACT_STEPS); held between the pads, it
# places 197/200 (seeds 0..199) with or without the pause and the wider shift. The misses left are
# cubes in the far corners of the placement band (x > 0.29 m, |y| > 0.1 m), where the jaws reach
# across the faces no higher than 1-2 cm above the cube's centre: the descent from the hover comes
# in sideways and a pad lands on the cube's top.
SO101_GRASP = GraspGeometry(jaw_offset=0.026, gripper_open=0.5, gripper_closed=-0.1, gripper_release=0.8,
                            release_shift=0.016, release_height=0.0, release_settle=(0.4, 0.6))


class ScriptedPickTeleop(ScriptedTeleop):
    def __init__(self, kinematics: RobotKinematics, rate_hz: float = 30.0,
                 geometry: GraspGeometry = SO101_GRASP, tremor: float = 0.002) -> None:
        if kinematics.spec.is_bimanual:
            raise ValueError(f"the SO-101 script drives one arm, not {kinematics.spec.name}")
        super().__init__(kinematics, rate_hz, geometry, tremor)

    def arm_for(self, position: np.ndarray) -> int:
        return 0

    # ---- grasp choice ----------------------------------------------------------------------------
    def grasp(self, arm: int, row: np.ndarray, cube: np.ndarray, cube_yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """The reachable face pair needing the least wrist roll."""
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        reaching_down = np.r_[row[0], 0.3, 0.3, 1.2, row[4:]]  # a second IK seed, arm over the table
        for quarter in range(4):
            angle = cube_yaw + quarter * np.pi / 2
            direction = np.array([np.cos(angle), np.sin(angle), 0.0])
            tool = cube + self.geometry.jaw_offset * direction
            for seed in (row, reaching_down):
                result = self.kinematics.inverse_pointing(0, tool, JAW_AXIS, direction, seed)
                if result.position_error > 1e-3 or result.orientation_error > 0.02:
                    continue
                roll = abs(float(result.joints[-1]))
                if best is None or roll < best[0]:
                    best = (roll, tool, direction)
        if best is None:
            raise UnreachableCube(f"no face of the cube at {np.round(cube, 3).tolist()} can be grasped from above")
        return best[1], best[2]

    def solve(self, arm: int, tool: np.ndarray, jaw_direction: np.ndarray, row: np.ndarray) -> np.ndarray:
        return self.kinematics.inverse_pointing(arm, tool, JAW_AXIS, jaw_direction, row).joints

    def tool_position(self, arm: int, row: np.ndarray) -> np.ndarray:
        return self.kinematics.forward(row)[arm][:3, 3]

    def solve_pose(self, arm: int, pose: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Keeps the jaw axis where `pose` has it (five joints cannot hold the rest of a pose)."""
        return self.kinematics.inverse_pointing(arm, pose[:3, 3], JAW_AXIS, pose[:3, :3] @ JAW_AXIS, row).joints

"""The coordinate frames a ROS user expects beside a robot driver, without ROS.

`LinkFrames` is what robot_state_publisher computes from a URDF and the joint states: one
transform per URDF joint, from its parent link to its child link. Fixed joints never change
(they go on `/tf_static` once); the others follow the joint positions (`/tf`). With the
`robot_description` the simulation publishes, RViz and Foxglove can then draw the robot.

Camera frames come from the scene (`TabletopScene.camera_pose`): the optical frame that the
images' and CameraInfo's `header.frame_id` name. `vla_sim`'s node turns both into TFMessages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pinocchio as pin

from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import load_pinocchio_model


@dataclass(frozen=True)
class FrameTransform:
    parent: str
    child: str
    matrix: np.ndarray  # (4, 4): the child frame's pose in the parent frame


def optical_frame(camera: str) -> str:
    """The frame of a camera's images and CameraInfo (z forward, x right, y down)."""
    return f"{camera}_optical_frame"


class LinkFrames:
    """Parent-link-to-child-link transforms of a URDF robot for its joint positions."""

    def __init__(self, spec: EmbodimentSpec) -> None:
        path = spec.robot_model_path()
        if path.suffix != ".urdf":
            raise ValueError(f"{spec.name}'s robot model {spec.robot_model} is not a URDF: it has no links to publish")
        self.model = load_pinocchio_model(path)
        self.data = self.model.createData()
        missing = [name for name in spec.joint_names if not self.model.existJointName(name)]
        if missing:
            raise ValueError(f"{spec.name}: joints {missing} are not in {spec.robot_model}")
        self._q_index = [self.model.idx_qs[self.model.getJointId(name)] for name in spec.joint_names]
        self._q = pin.neutral(self.model)
        frames = self.model.frames
        self._fixed: list[tuple[int, int]] = []
        self._moving: list[tuple[int, int]] = []
        for child, frame in enumerate(frames):
            if frame.type != pin.FrameType.BODY:
                continue
            parent = frame.parentFrame  # the link's joint frame, whose parent is the parent link
            while parent != 0 and frames[parent].type != pin.FrameType.BODY:
                parent = frames[parent].parentFrame
            if parent == 0:
                continue  # the root link
            moves = frames[parent].parentJoint != frame.parentJoint
            (self._moving if moves else self._fixed).append((parent, child))

    def _transforms(self, edges: list[tuple[int, int]]) -> list[FrameTransform]:
        frames, poses = self.model.frames, self.data.oMf
        return [FrameTransform(frames[parent].name, frames[child].name, poses[parent].actInv(poses[child]).homogeneous)
                for parent, child in edges]

    def fixed(self) -> list[FrameTransform]:
        """The transforms across the URDF's fixed joints (the same for every joint state)."""
        pin.framesForwardKinematics(self.model, self.data, self._q)
        return self._transforms(self._fixed)

    def moving(self, positions: np.ndarray) -> list[FrameTransform]:
        """The transforms across the moving joints for `positions` (the profile's joint order);
        joints of the URDF that the profile does not list stay at zero."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (len(self._q_index),):
            raise ValueError(f"link frames need {len(self._q_index)} joint positions, got shape {positions.shape}")
        self._q[self._q_index] = positions
        pin.framesForwardKinematics(self.model, self.data, self._q)
        return self._transforms(self._moving)

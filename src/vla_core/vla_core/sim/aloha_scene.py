"""ALOHA (two ViperX 300 arms facing each other across a table) with coloured cubes.

The model is gym-aloha's `bimanual_viperx_transfer_cube.xml`, read from the package's asset
folder without importing gym_aloha (which needs gymnasium). Its single red box and the
keyframe that places it are removed; one cube per colour (the box's contact parameters, so
the fingers hold it as in ACT's simulation) and, for the cube_in_bin task, a bin take their
place. Cameras are the model's own: `top` above the table (narrowed from 78 to 50 degrees, so
the cubes are more than a few pixels in a 224x224 frame) and one on each gripper.

Each gripper has two slide joints with their own position actuators and no coupling in the
MJCF (`left_finger` in [0.021, 0.057] m, `right_finger` the mirror image). The profile lists
only `left_finger` (config/embodiments/aloha.yaml), so the scene drives `right_finger` with
the negated target: one value per gripper, 0.057 open (6.9 cm between the pads) and 0.021
closed, as `RobotKinematics.gripper_positions` reads them from the joint limits.
"""
from __future__ import annotations

import mujoco
import numpy as np

from vla_core.embodiment import resolve_model_path
from vla_core.sim.scene import CUBE_COLOURS, Layout, TabletopScene, add_bin, add_cubes, quiet_rendering

ARMS = ("left", "right")
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
JOINTS = tuple(f"vx300s_{arm}/{joint}" for arm in ARMS for joint in (*ARM_JOINTS, "left_finger"))
GRIPPER_OPEN, GRIPPER_CLOSED = 0.057, 0.021  # m, the left_finger joint's limits
# gym-aloha's keyframe arm pose (raised, facing the table) with open grippers
HOME = np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0, GRIPPER_OPEN] * 2)
CAMERAS = ("top", "left_wrist", "right_wrist")
TOP_CAMERA_FOVY = 50.0  # degrees
CUBE_HALF_SIZE = 0.02  # m, the size of gym-aloha's box
# arms' bases at x = -0.469 (left) and +0.469 (right), y = 0.5; the table top is at z = 0
PLACEMENT_X = (-0.2, 0.2)
PLACEMENT_Y = (0.4, 0.65)
MIN_CUBE_DISTANCE = 0.08
BIN_HALF_SIZE = 0.05
BIN_X = (-0.04, 0.04)  # the bin stands in the middle, where both arms reach it


def build_model(colours: tuple[str, ...] = tuple(CUBE_COLOURS), image_size: int = 224,
                with_bin: bool = False) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(resolve_model_path("pkg://gym_aloha/assets/bimanual_viperx_transfer_cube.xml")))
    spec.delete(spec.body("box"))
    for key in list(spec.keys):
        spec.delete(key)  # its qpos includes the deleted box
    quiet_rendering(spec, image_size)
    spec.camera("top").fovy = TOP_CAMERA_FOVY
    add_cubes(spec, colours, CUBE_HALF_SIZE, 0.05, condim=4, solimp=[2, 1, 0.01, 0.5, 2], solref=[0.01, 1],
              friction=[1, 0.005, 0.0001])
    if with_bin:
        add_bin(spec, BIN_HALF_SIZE, 0.0)
    return spec.compile()


class AlohaScene(TabletopScene):
    """The ALOHA scene; `with_bin` adds the tray of the cube_in_bin task."""

    def __init__(self, image_size: int = 224, colours: tuple[str, ...] = tuple(CUBE_COLOURS),
                 with_bin: bool = False) -> None:
        layout = Layout(PLACEMENT_X, PLACEMENT_Y, MIN_CUBE_DISTANCE,
                        bin_half_size=BIN_HALF_SIZE if with_bin else 0.0, bin_clearance=0.045, bin_x=BIN_X)
        mirrored = {f"vx300s_{arm}/right_finger": (f"vx300s_{arm}/left_finger", -1.0) for arm in ARMS}
        super().__init__(build_model(colours, image_size, with_bin), JOINTS, CAMERAS, HOME, colours,
                         CUBE_HALF_SIZE, 0.0, layout, image_size, mirrored)

